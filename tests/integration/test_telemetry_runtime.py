"""Telemetry through the real LocalRuntime: a busy job's process tree, sampled from its cgroup
(where this host gives one) or with psutil, and GPUs through a stand-in for NVML."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from cluster_gateway.gateway import WorkloadPhase, WorkloadSpec
from cluster_gateway.runtimes.gpus import Gpu
from cluster_gateway.runtimes.local import LocalRuntime
from cluster_gateway.runtimes.telemetry import StandInGpus
from glia.clusters import Resources
from glia.telemetry import TelemetrySample
from tests.integration.test_local_runtime import PATH, stop_all

# A busy loop that first touches 64 MiB, in a child process: the whole tree is measured.
BUSY = (
    "import subprocess, sys; "
    "subprocess.run([sys.executable, '-c', "
    "'b = bytearray(64 * 1024 * 1024)\\nfor i in range(0, len(b), 4096): b[i] = 1\\n"
    "while True: pass'])"
)
MIB = 1024 * 1024


def spec(job_id: str, command: Sequence[str], gpu: int = 0) -> WorkloadSpec:
    return WorkloadSpec(
        job_id=job_id,
        command=tuple(command),
        resources=Resources(cpu=1, memory_mb=512, gpu=gpu),
        env={"PATH": PATH},
    )


async def running_runtime(tmp_path: Path, **options: object) -> LocalRuntime:
    runtime = LocalRuntime(
        tmp_path / "state",
        default_grace_s=0.5,
        poll_interval_s=0.2,
        **options,  # type: ignore[arg-type]
    )
    await runtime.open()
    return runtime


@pytest.fixture(params=["cgroups", "psutil"])
async def runtime(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LocalRuntime]:
    runtime = await running_runtime(tmp_path, use_cgroups=request.param == "cgroups")
    try:
        yield runtime
        await stop_all(runtime)
    finally:
        await runtime.close()


async def samples_of(runtime: LocalRuntime, job_id: str, count: int) -> list[TelemetrySample]:
    found: list[TelemetrySample] = []
    async with asyncio.timeout(20):
        async for tick in runtime.telemetry(job_id):
            found.extend(tick)
            if len(found) >= count:
                return found
    raise AssertionError(f"telemetry ended after {found}")


async def test_a_busy_job_shows_over_half_a_core(runtime: LocalRuntime) -> None:
    await runtime.start(spec("busy", [sys.executable, "-c", BUSY]))
    samples: list[TelemetrySample] = []
    async with asyncio.timeout(30):
        async for tick in runtime.telemetry("busy"):
            samples.extend(tick)
            # The first covers the start-up too; a host busy with other work gets a few more.
            settling = samples[1:]
            if len(samples) >= 10 or (settling and max(s.cpu_percent for s in settling) > 50):
                break
    settled = samples[1:]
    assert {s.job_id for s in samples} == {"busy"}
    assert settled and max(s.cpu_percent for s in settled) > 50, samples
    assert max(s.memory_bytes for s in settled) >= 60 * MIB, samples
    assert all(s.gpus == () for s in samples)  # no GPUs here
    times = [s.time for s in samples]
    assert all((b - a).total_seconds() >= 0.9 for a, b in zip(times, times[1:], strict=False))


async def test_an_idle_job_shows_little_cpu(runtime: LocalRuntime) -> None:
    await runtime.start(spec("idle", [sys.executable, "-c", "import time; time.sleep(60)"]))
    samples = await samples_of(runtime, "idle", 3)
    assert samples[-1].cpu_percent < 20, samples
    assert 0 < samples[-1].memory_bytes < 256 * MIB


async def test_all_running_jobs_in_one_tick_and_a_follower_ends_with_its_job(
    tmp_path: Path,
) -> None:
    runtime = await running_runtime(tmp_path)
    try:
        sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
        await runtime.start(spec("a", sleep))
        await runtime.start(spec("b", sleep))
        async with asyncio.timeout(20):
            async for tick in runtime.telemetry():
                if {s.job_id for s in tick} == {"a", "b"}:
                    break
        followed = asyncio.create_task(samples_of(runtime, "a", 1000))
        await asyncio.sleep(1.5)
        await runtime.stop("a", grace_s=0)
        with pytest.raises(AssertionError, match="telemetry ended"):
            await followed
        (state,) = await runtime.states(["a"])
        assert state.phase == WorkloadPhase.EXITED
        await stop_all(runtime)
    finally:
        await runtime.close()


async def test_gpus_come_from_the_gpu_source(tmp_path: Path) -> None:
    stand_in = StandInGpus({"0": (10.0, 1 * MIB), "1": (87.5, 3 * 1024 * MIB)})
    runtime = await running_runtime(
        tmp_path, gpu_inventory=(Gpu("0", "A100"), Gpu("1", "A100")), gpu_telemetry=stand_in
    )
    try:
        sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
        await runtime.start(spec("first", sleep, gpu=1))  # GPU 0
        await runtime.start(spec("second", sleep, gpu=1))  # GPU 1
        (sample,) = (await samples_of(runtime, "second", 1))[:1]
        assert [(g.device, g.utilization_percent, g.memory_bytes) for g in sample.gpus] == [
            ("1", 87.5, 3 * 1024 * MIB)
        ]
        await stop_all(runtime)
    finally:
        await runtime.close()


def test_telemetry_is_sampled_at_most_once_a_second(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least"):
        LocalRuntime(tmp_path / "state", telemetry_interval_s=0.1)
