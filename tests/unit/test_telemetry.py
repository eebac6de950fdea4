"""The sampler's readers and sources, and the hub's bounds."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest

from cluster_gateway.runtimes import telemetry
from cluster_gateway.runtimes.cgroups import JobCgroup
from glia.clock import utcnow
from glia.telemetry import TelemetrySample

AT = datetime(2026, 1, 1, tzinfo=UTC)


def test_cgroup_v2_counters(tmp_path: Path) -> None:
    (tmp_path / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\n")
    (tmp_path / "memory.current").write_text("1048576\n")
    cgroup = JobCgroup(2, str(tmp_path), str(tmp_path))
    assert telemetry.cgroup_cpu_usec(cgroup) == 2_500_000
    assert telemetry.cgroup_memory_bytes(cgroup) == 1_048_576


def test_cgroup_v1_counters_and_what_is_missing(tmp_path: Path) -> None:
    memory, cpu = tmp_path / "memory", tmp_path / "cpu"
    memory.mkdir()
    cpu.mkdir()
    (memory / "memory.usage_in_bytes").write_text("4096\n")
    cgroup = JobCgroup(1, str(memory), str(cpu))
    assert telemetry.cgroup_cpu_usec(cgroup) is None  # cpuacct elsewhere: psutil counts CPU
    (cpu / "cpuacct.usage").write_text("3000000000\n")
    assert telemetry.cgroup_cpu_usec(cgroup) == 3_000_000
    assert telemetry.cgroup_memory_bytes(cgroup) == 4096
    assert telemetry.cgroup_memory_bytes(JobCgroup(1, str(tmp_path / "gone"), None)) is None


def test_nvml_degrades_to_nothing_without_gpus() -> None:
    source = telemetry.NvmlGpus()
    assert source.sample([]) == ()
    assert source.sample(["0"]) == ()  # no library, driver or GPU on this host
    source.close()


def test_a_job_without_processes_has_no_sample() -> None:
    sampler = telemetry.Sampler(telemetry.StandInGpus())
    assert sampler.sample([telemetry.Watched("gone", None, None)], AT) == ()


def _tick(job_id: str, n: int) -> telemetry.Tick:
    return (TelemetrySample(job_id=job_id, time=AT, cpu_percent=n, memory_bytes=n),)


async def test_a_slow_subscriber_keeps_only_the_newest_ticks() -> None:
    hub = telemetry.TelemetryHub()
    everything = hub.subscribe(None)
    only_b = hub.subscribe("b")
    assert hub.wanted_jobs() is None
    for n in range(20):
        hub.publish(_tick("a", n) + _tick("b", n))
    hub.close()
    ticks = [tick async for tick in everything.ticks()]
    assert len(ticks) == telemetry.QUEUE_TICKS
    assert ticks[-1][0].cpu_percent == 19
    mine = [tick async for tick in only_b.ticks()]
    assert {s.job_id for tick in mine for s in tick} == {"b"}
    assert not hub.wanted


async def test_the_end_of_a_job_ends_its_subscribers_only() -> None:
    hub = telemetry.TelemetryHub()
    a, b = hub.subscribe("a"), hub.subscribe("b")
    hub.publish(_tick("a", 1))
    hub.end("a")
    assert [t[0].cpu_percent async for t in a.ticks()] == [1]
    waiting = asyncio.create_task(anext(b.ticks()))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    waiting.cancel()


def test_a_sampler_whose_first_process_ended_says_nothing(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "memory.current").write_text("4096\n")
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    gone = int(done.stdout)
    sampler = telemetry.JobSampler(gone, JobCgroup(2, str(tmp_path), str(tmp_path)))
    assert (
        sampler.sample(telemetry.process_children) is None
    )  # a cgroup left behind is no job's: it is looked up anew
    cgroup_only = telemetry.JobSampler(None, JobCgroup(2, str(tmp_path), str(tmp_path)))
    assert cgroup_only.sample(telemetry.process_children) == (0.0, 4096)


def test_one_read_of_the_process_table_serves_every_job_of_a_tick(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import os
    import subprocess
    import sys
    import time

    reads = 0
    real = telemetry.process_children

    def counted() -> dict[int, list[int]]:
        nonlocal reads
        reads += 1
        return real()

    monkeypatch.setattr(telemetry, "process_children", counted)
    # Three jobs without cgroups: a parent whose child burns CPU, measured through the tree.
    code = "import subprocess, sys; subprocess.run([sys.executable, '-c', 'while True: pass'])"
    jobs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(3)]
    try:
        sampler = telemetry.Sampler(gpus=telemetry.StandInGpus())
        watched = [telemetry.Watched(f"job-{i}", p.pid, None) for i, p in enumerate(jobs)]
        sampler.sample(watched, utcnow())
        time.sleep(1.0)
        tick = sampler.sample(watched, utcnow())
        assert reads == 2  # once per tick, not once per job
        assert len(tick) == 3
        assert sum(sample.cpu_percent for sample in tick) > 30  # their children count
        # A job whose cgroup counts both needs no process table at all.
        (tmp_path / "memory.current").write_text("4096\n")
        (tmp_path / "cpu.stat").write_text("usage_usec 1000\n")
        cgroup = JobCgroup(2, str(tmp_path), str(tmp_path))
        counted_only = telemetry.Sampler(gpus=telemetry.StandInGpus())
        counted_only.sample([telemetry.Watched("c", os.getpid(), cgroup)], utcnow())
        assert reads == 2
    finally:
        for job in jobs:
            for child in psutil.Process(job.pid).children(recursive=True):
                child.kill()
            job.kill()
            job.wait()
