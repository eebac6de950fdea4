"""Throughput through `glia port-forward` beside a direct loopback connection, same run.

A job serves N MB to each connection on a port (the host's loopback: jobs share its network
by default); the bench reads it directly from that port, then through the real `glia
port-forward` CLI (local port -> WebSocket -> server -> job's port), alternately, and prints
MB/s of each and their ratio (target: tunnel >= 0.3 of direct).

    python -m bench.tunnel [--megabytes 256] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import time

from bench.harness import GLIA, _free_port, glia_up

SERVER = """
import socket, sys
total = int(sys.argv[2]) * 1024 * 1024
block = b"x" * (1024 * 1024)
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8)
while True:
    c, _ = s.accept()
    sent = 0
    try:  # a probe (is it listening yet?) closes at once
        while sent < total:
            c.sendall(block); sent += len(block)
    except OSError:
        pass
    c.close()
"""


async def read_all(port: int) -> tuple[int, float]:
    """Bytes read from 127.0.0.1:port until EOF, and seconds taken."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1024 * 1024)
    started = time.perf_counter()
    count = 0
    while chunk := await reader.read(1024 * 1024):
        count += len(chunk)
    elapsed = time.perf_counter() - started
    writer.close()
    return count, elapsed


def wait_port(port: int, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {port}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with glia_up() as server:
        job_port, local = _free_port(), _free_port()
        out = subprocess.run(
            [GLIA, "run", "--detach", "-o", "json", "--", "python3", "-c", SERVER,
             str(job_port), str(args.megabytes)],
            env=server.cli_env, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        job_id = json.loads(out)["id"]
        wait_port(job_port)
        tunnel = subprocess.Popen(
            [GLIA, "port-forward", job_id, f"{local}:{job_port}"],
            env=server.cli_env,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_port(local)
            direct: list[float] = []
            forwarded: list[float] = []
            for _ in range(args.rounds):
                for samples, port in ((direct, job_port), (forwarded, local)):
                    count, elapsed = asyncio.run(read_all(port))
                    if count != args.megabytes * 1024 * 1024:
                        raise RuntimeError(f"read {count} bytes through port {port}")
                    samples.append(count / elapsed / 1e6)
        finally:
            tunnel.terminate()
            tunnel.wait(10)
            subprocess.run([GLIA, "kill", job_id], env=server.cli_env, capture_output=True)
    d, f = statistics.median(direct), statistics.median(forwarded)
    print(f"direct loopback : median {d:8.1f} MB/s  ({', '.join(f'{x:.0f}' for x in direct)})")
    print(f"port-forward    : median {f:8.1f} MB/s  ({', '.join(f'{x:.0f}' for x in forwarded)})")
    print(f"ratio           : {f / d:.2f} (target >= 0.3)")


if __name__ == "__main__":
    main()
