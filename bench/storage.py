"""Storage through the API against `cp` of the same data on the same disk, in the same run.

    python -m bench.storage [--size-mb 1024] [--files 10000] [--rounds 3]

- a big file (``--size-mb``, 1 GiB by default) uploaded with the SDK (``PUT
  /api/storage/…``, xxh3-128 checked) and downloaded again (``GET``), each against ``cp`` of
  the file;
- ``glia storage cp -r`` of a tree of small files (``--files``, 10,000 of 1 KiB in 100
  directories) up and down, through the real CLI (tar streams over
  ``/api/storage-archive``, each file checked and renamed on its own), against ``cp -r`` of
  the tree.

Each figure is the best of ``--rounds``, cp and the API taking turns in each round; the
ratio is cp's time over the API's (1.0: as fast as cp). Targets (issue 11): >= 0.5 for the
big file, >= 0.2 for the small files. The server, the client and cp share this machine's
cores and page cache: cp reads and writes one file where the API also hashes it and carries
it over HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.harness import GLIA, glia_up
from sdk import GliaClient

CHUNK = 16 * 1024 * 1024


def _timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


Trial = tuple[Callable[[], object], Callable[[], object]]  # (action, reset)


def _best(rounds: int, trials: dict[str, Trial]) -> dict[str, float]:
    """The best time of each trial over ``rounds``, the trials taking turns within each
    round: this disk (mounted with online discard) slows file creation for seconds after
    many deletions, and cp and the API must meet the same disk."""
    taken: dict[str, list[float]] = {name: [] for name in trials}
    for _ in range(rounds):
        for name, (action, reset) in trials.items():
            reset()
            # The dirty pages of the trial before are written back first: otherwise
            # whichever runs next is throttled by the kernel's writeback.
            os.sync()
            taken[name].append(_timed(action))
    return {name: min(times) for name, times in taken.items()}


def _make_big(path: Path, size: int) -> None:
    with path.open("wb") as file:
        block = os.urandom(CHUNK)
        written = 0
        while written < size:
            part = block[: min(CHUNK, size - written)]
            file.write(part)
            written += len(part)


def _make_tree(root: Path, files: int) -> None:
    per_dir = max(1, files // 100)
    for index in range(files):
        directory = root / f"d{index // per_dir:03}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"f{index:05}.txt").write_bytes(os.urandom(1024))


def _rm(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    size = args.size_mb * 1024 * 1024

    with glia_up() as server:
        # The same disk as the server's storage: its data dir's.
        work = Path(tempfile.mkdtemp(prefix="bench-storage-", dir=server.data_dir.parent))
        storage = server.data_dir / "clusters" / "default" / "storage" / "admin" / "admin"
        big = work / "big.bin"
        _make_big(big, size)
        tree = work / "tree"
        _make_tree(tree, args.files)
        uri = "storage://default/admin/admin/big.bin"

        async def upload() -> None:
            async with GliaClient(server.url, server.token, timeout=600) as client:
                await client.storage.upload(big, uri)

        async def download() -> None:
            async with GliaClient(server.url, server.token, timeout=600) as client:
                await client.storage.download(uri, work / "big.down")

        copy = work / "big.copy"
        # Each copy makes a new file, as cp's does (replacing one frees its blocks first).
        big_times = _best(
            args.rounds,
            {
                "cp": (
                    lambda: subprocess.run(["cp", str(big), str(copy)], check=True),
                    lambda: _rm(copy),
                ),
                "up": (lambda: asyncio.run(upload()), lambda: _rm(storage / "big.bin")),
                "down": (lambda: asyncio.run(download()), lambda: _rm(work / "big.down")),
            },
        )
        cp_big, up_big, down_big = big_times["cp"], big_times["up"], big_times["down"]
        if (work / "big.down").stat().st_size != size or (
            storage / "big.bin"
        ).stat().st_size != size:
            raise SystemExit("the copies do not have the file's size")

        env = server.cli_env
        tree_copy = work / "tree.copy"
        down = work / "tree.down"

        def glia(*argv: str) -> None:
            subprocess.run([GLIA, "storage", *argv], env=env, check=True)

        tree_times = _best(
            args.rounds,
            {
                "cp": (
                    lambda: subprocess.run(["cp", "-r", str(tree), str(tree_copy)], check=True),
                    lambda: _rm(tree_copy),
                ),
                "up": (
                    lambda: glia("cp", "-r", str(tree), "storage:tree"),
                    lambda: _rm(storage / "tree"),
                ),
                # The download's reset leaves the uploaded tree in place.
                "down": (lambda: glia("cp", "-r", "storage:tree", str(down)), lambda: _rm(down)),
            },
        )
        cp_tree, up_tree, down_tree = tree_times["cp"], tree_times["up"], tree_times["down"]
        if sum(1 for _ in down.rglob("*.txt")) != args.files:
            raise SystemExit("the downloaded tree is not whole")
        shutil.rmtree(work, ignore_errors=True)

    mib = size / 1024 / 1024
    rows = [
        (f"upload {mib:.0f} MiB", cp_big, up_big, f"{mib / up_big:.0f} MiB/s"),
        (f"download {mib:.0f} MiB", cp_big, down_big, f"{mib / down_big:.0f} MiB/s"),
        (f"cp -r {args.files} files up", cp_tree, up_tree, f"{args.files / up_tree:.0f} files/s"),
        (
            f"cp -r {args.files} files down",
            cp_tree,
            down_tree,
            f"{args.files / down_tree:.0f} files/s",
        ),
    ]
    print(f"{'':28} {'cp':>8} {'glia':>8} {'ratio':>6}  rate")
    for name, base, api, rate in rows:
        print(f"{name:28} {base:7.2f}s {api:7.2f}s {base / api:6.2f}  {rate}")


if __name__ == "__main__":
    main()
