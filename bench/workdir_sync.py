"""`glia run`'s workdir sync of an unchanged folder, against walking and stat-ing it, in one run.

    python -m bench.workdir_sync [--files 1000] [--rounds 20]

A folder of ``--files`` small files (1 KiB, 10 directories, a .gitignore) is synced once
into a real `glia up`'s storage with the SDK (``client.storage.sync``, what `glia run` calls),
then synced again ``--rounds`` times unchanged: each such sync is the local scan (ignore
files, a stat per file), one ``syncStorageDirectory`` request (the server stats its copy) and
no upload. The baseline is ``os.walk`` + ``os.stat`` of the same folder, in the same run: the
least any sync must do on the client. Target (issue 11): the unchanged sync <= 300 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.harness import glia_up
from sdk import GliaClient
from sdk.workdir import scan


def _make_folder(root: Path, files: int) -> None:
    (root / ".gitignore").write_text("*.log\n__pycache__/\n")
    for index in range(files - 1):
        directory = root / f"pkg{index % 10}"
        directory.mkdir(exist_ok=True)
        (directory / f"module_{index:04}.py").write_bytes(os.urandom(1024))


def _walk_and_stat(root: Path) -> int:
    count = 0
    for directory, _dirs, names in os.walk(root):
        for name in names:
            os.stat(os.path.join(directory, name))
            count += 1
    return count


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[max(0, int(len(ordered) * 0.9) - 1)]
    return f"median {statistics.median(ordered) * 1000:7.1f} ms  p90 {p90 * 1000:7.1f} ms"


async def _run(url: str, token: str, folder: Path, files: int, rounds: int) -> None:
    uri = "storage://default/admin/admin/.glia/workdirs/bench"
    async with GliaClient(url, token) as client:
        start = time.perf_counter()
        first = await client.storage.sync(folder, uri)
        cold = time.perf_counter() - start
        assert first.uploaded == files, first
        unchanged, scans, walks = [], [], []
        for _ in range(rounds):
            start = time.perf_counter()
            walked = _walk_and_stat(folder)
            walks.append(time.perf_counter() - start)
            assert walked == files
            start = time.perf_counter()
            scan(folder)
            scans.append(time.perf_counter() - start)
            start = time.perf_counter()
            again = await client.storage.sync(folder, uri)
            unchanged.append(time.perf_counter() - start)
            assert again.uploaded == 0 and again.removed == 0, again
    print(f"workdir sync of {files} files, {rounds} rounds (one SDK client, a real glia up)")
    print(f"  first sync (everything uploaded)     {cold * 1000:7.1f} ms")
    print(f"  unchanged sync (scan + one request)  {_ms(unchanged)}   target <= 300 ms")
    print(f"    of which the local scan            {_ms(scans)}")
    print(f"  baseline: os.walk + os.stat          {_ms(walks)}")
    ratio = statistics.median(unchanged) / statistics.median(walks)
    print(f"  unchanged sync / baseline: {ratio:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="glia-bench-workdir-") as folder:
        _make_folder(Path(folder), args.files)
        with glia_up() as server:
            asyncio.run(_run(server.url, server.token, Path(folder), args.files, args.rounds))


if __name__ == "__main__":
    main()
