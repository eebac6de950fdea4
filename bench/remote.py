"""A remote cluster gateway beside the embedded one, in the same run: job start latency
(``start()`` until RUNNING is seen on ``watch()``) and live log lag (a line the job prints,
stamped with the time, until a ``logs(follow=True)`` reader has it).

The remote gateway is a real `glia gateway serve` process on this machine, reached by
`RemoteGateway` over HTTP (the start), its shared WebSocket (the watch, the log lines) and
signed claims; the embedded gateway runs the same `LocalRuntime` in this process. Targets
through the remote gateway: start median ≤ 50 ms, log lag median ≤ 10 ms.

    python -m bench.remote [--runs 100] [--lines 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import summary
from cluster_gateway.embedded import EmbeddedGateway
from cluster_gateway.gateway import Gateway, GatewayUnreachable, WorkloadPhase, WorkloadSpec
from cluster_gateway.remote import RemoteGateway
from cluster_gateway.runtimes.local import LocalRuntime
from glia.clusters import Resources

GLIA = str(Path(sys.executable).parent / "glia")
CLUSTER = "bench-remote"
START_TARGET_MS = 50.0
LOG_LAG_TARGET_MS = 10.0
ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
PRINTER = (
    "import time\n"
    "time.sleep(0.5)\n"
    "for _ in range({n}):\n"
    "    print(time.time_ns(), flush=True)\n"
    "    time.sleep(0.01)\n"
)


def _spec(job_id: str, command: tuple[str, ...]) -> WorkloadSpec:
    return WorkloadSpec(
        job_id=job_id, command=command, resources=Resources(cpu=1, memory_mb=256), env=ENV
    )


async def start_latency(gateway: Gateway, n: int, prefix: str) -> list[float]:
    samples = []
    async with gateway.watch() as watch:
        events = aiter(watch)
        for i in range(n):
            job_id = f"{prefix}-{i}"
            started = time.perf_counter()
            await gateway.start(_spec(job_id, ("true",)))
            async with asyncio.timeout(10):
                while (state := (await anext(events)).state).job_id != job_id or (
                    state.phase == WorkloadPhase.PENDING
                ):
                    pass
                samples.append(time.perf_counter() - started)
                if state.phase != WorkloadPhase.RUNNING:
                    raise RuntimeError(f"{job_id} did not run: {state}")
                while state.job_id != job_id or state.phase != WorkloadPhase.EXITED:
                    state = (await anext(events)).state  # let it end before the next
            await gateway.forget(job_id)
    return samples


async def log_lag(gateway: Gateway, lines: int, job_id: str) -> list[float]:
    command = ("python3", "-c", PRINTER.format(n=lines))
    await gateway.start(_spec(job_id, command))
    samples = []
    async for batch in gateway.logs(job_id, follow=True):
        now = time.time_ns()
        for line in batch.lines():
            samples.append((now - int(line.text)) / 1e9)
    return samples


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _up(gateway: RemoteGateway) -> None:
    async with asyncio.timeout(30):
        while True:
            try:
                await gateway.capacity()
                return
            except GatewayUnreachable:
                await asyncio.sleep(0.1)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--lines", type=int, default=300)
    args = parser.parse_args()
    secret = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory(prefix="glia-bench-remote-") as root:
        port = _free_port()
        process = await asyncio.create_subprocess_exec(
            *[GLIA, "gateway", "serve", "--name", CLUSTER, "--port", str(port)],
            *["--data-dir", str(Path(root) / "remote")],
            env={**os.environ, "GLIA_GATEWAY_SECRET": secret},
            stdin=subprocess.DEVNULL,
        )
        embedded = EmbeddedGateway("bench-embedded", LocalRuntime(Path(root) / "embedded"))
        remote = RemoteGateway(CLUSTER, f"http://127.0.0.1:{port}", secret=secret)
        await embedded.open()
        try:
            await _up(remote)
            for gateway, name in ((embedded, "warm-e"), (remote, "warm-r")):
                await start_latency(gateway, 5, name)  # warm up both
            # Alternate the two so that a slowing machine weighs on both alike.
            starts: dict[str, list[float]] = {"embedded": [], "remote": []}
            for round_ in range(4):
                per = max(1, args.runs // 4)
                starts["embedded"] += await start_latency(embedded, per, f"e{round_}")
                starts["remote"] += await start_latency(remote, per, f"r{round_}")
            lags = {
                "embedded": await log_lag(embedded, args.lines, "log-e"),
                "remote": await log_lag(remote, args.lines, "log-r"),
            }
        finally:
            await remote.close()
            await embedded.close()
            process.terminate()
            await process.wait()
    print(
        "start -> RUNNING on watch()  (target through the remote gateway: median "
        f"<= {START_TARGET_MS:.0f} ms)"
    )
    for name, samples in starts.items():
        print(f"  {name:9} {summary(samples)}")
    print(f"live log lag, logs(follow=True)  (target median <= {LOG_LAG_TARGET_MS:.0f} ms)")
    for name, samples in lags.items():
        print(f"  {name:9} {summary(samples)}")
    start_ms = statistics.median(starts["remote"]) * 1000
    lag_ms = statistics.median(lags["remote"]) * 1000
    print(
        f"remote: start median {start_ms:.1f} ms "
        f"({'meets' if start_ms <= START_TARGET_MS else 'MISSES'} the target), "
        f"log lag median {lag_ms:.2f} ms "
        f"({'meets' if lag_ms <= LOG_LAG_TARGET_MS else 'MISSES'} the target)"
    )


if __name__ == "__main__":
    asyncio.run(main())
