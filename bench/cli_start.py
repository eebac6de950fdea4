"""How long the CLI takes to answer: `glia --help` and `glia ps` against a real `glia up`,
beside `python -c pass` (the interpreter's own start) measured in the same run.

    python -m bench.cli_start [--runs 30]

Targets (issue 7): `glia --help` <= 150 ms, `glia ps` <= 300 ms. The three are run in turn,
round after round, so a slower moment of the machine weighs on all of them alike.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from bench.harness import GLIA, glia_up, summary


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    with glia_up() as server:
        env = server.cli_env
        for _ in range(2):  # a submitted job to list, and warm caches (pyc, page cache)
            subprocess.run([GLIA, "run", "--detach", "--", "true"], env=env, check=True,
                           capture_output=True)  # fmt: skip
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "glia --help": [GLIA, "--help"],
            "glia ps": [GLIA, "ps", "-a"],
        }
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, argv in commands.items():
                samples[name].append(timed(argv, env))
    for name, taken in samples.items():
        print(f"{name:16} {summary(taken)}")


if __name__ == "__main__":
    main()
