"""A cluster gateway as its own process (`glia gateway serve`), reached by `RemoteGateway`:
it survives a kill -9 (its jobs run on, their logs whole), and a gateway that stops answering
(SIGSTOP) makes calls fail fast with GatewayUnreachable, then recovers, its watch resumed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from cluster_gateway.gateway import (
    GatewayUnreachable,
    WatchExpired,
    WorkloadPhase,
    WorkloadSpec,
    WorkloadWatch,
)
from cluster_gateway.remote import RemoteGateway
from cluster_gateway.remote_storage import RemoteStorage
from cluster_gateway.trust import claim_header
from glia.clusters import Resources
from glia.errors import Unauthenticated
from glia.storage import StorageLocation
from tests.contract.harness import JOB_UID, PATH, ROOT
from tests.e2e.conftest import GLIA, GatewayProcess, free_port
from tests.polling import eventually

pytestmark = pytest.mark.e2e

CLUSTER = "remote-test"
SECRET = "remote-test-secret-of-at-least-32-bytes"
LINES = 30


@pytest.fixture
def gateway_process(tmp_path: Path) -> Iterator[GatewayProcess]:
    process = GatewayProcess(CLUSTER, SECRET, tmp_path / "gateway", free_port())
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
async def remote(gateway_process: GatewayProcess) -> AsyncIterator[RemoteGateway]:
    gateway = RemoteGateway(CLUSTER, gateway_process.url, secret=SECRET, timeout_s=2.0)
    await up(gateway)
    try:
        yield gateway
    finally:
        with contextlib.suppress(Exception):
            await stop_all(gateway)
        await gateway.close()


async def up(gateway: RemoteGateway, within: float = 20.0) -> None:
    async def answers() -> bool:
        try:
            await gateway.capacity()
        except GatewayUnreachable:
            return False
        return True

    await eventually(answers, within=within)


async def stop_all(gateway: RemoteGateway) -> None:
    for state in await gateway.active_workloads():
        await gateway.stop(state.job_id, grace_s=0)

    async def ended() -> bool:
        return not await gateway.active_workloads()

    await eventually(ended, within=10)


def spec(job_id: str, script: str) -> WorkloadSpec:
    return WorkloadSpec(
        job_id=job_id,
        command=("sh", "-c", script),
        resources=Resources(cpu=1, memory_mb=256),
        env={"PATH": PATH},
        uid=JOB_UID if ROOT else None,
        gid=JOB_UID if ROOT else None,
    )


async def until(watch: WorkloadWatch, job_id: str, phase: WorkloadPhase) -> None:
    async with asyncio.timeout(15):
        async for event in watch:
            if event.state.job_id == job_id and event.state.phase == phase:
                return
    raise AssertionError(f"the watch ended before {job_id} was {phase}")


async def test_a_job_outlives_a_killed_gateway_with_its_whole_log(
    gateway_process: GatewayProcess, remote: RemoteGateway
) -> None:
    script = f"i=1; while [ $i -le {LINES} ]; do echo line-$i; sleep 0.1; i=$((i+1)); done"
    expected = b"".join(b"line-%d\n" % i for i in range(1, LINES + 1))
    async with remote.watch() as watch:
        await remote.start(spec("job-k", script))
        await until(watch, "job-k", WorkloadPhase.RUNNING)

        async def printing() -> bool:
            return await remote.log_size("job-k") > 0

        await eventually(printing, within=10)
        gateway_process.signal(signal.SIGKILL)
        assert gateway_process.process is not None
        gateway_process.process.wait(5)
        with pytest.raises(GatewayUnreachable):
            await remote.states(["job-k"])
        gateway_process.start()
        await up(remote)
        # The watch resumed from its cursor, which is from before the restart: the watcher
        # is told to relist, as the protocol says.
        with pytest.raises(WatchExpired):
            async with asyncio.timeout(15):
                async for _ in watch:
                    pass
    state = (await remote.states(["job-k"]))[0]
    assert state.phase in (WorkloadPhase.RUNNING, WorkloadPhase.EXITED)

    async def ended() -> bool:
        return (await remote.states(["job-k"]))[0].phase == WorkloadPhase.EXITED

    await eventually(ended, within=15)
    assert (await remote.states(["job-k"]))[0].exit_code == 0
    assert b"".join([chunk async for chunk in remote.read_log("job-k")]) == expected
    lines = [line.text async for b in remote.logs("job-k", follow=True) for line in b.lines()]
    assert lines == [f"line-{i}" for i in range(1, LINES + 1)]
    # Killed again while no subscription is open: the next one opens a new connection
    # rather than failing on the dead one.
    gateway_process.signal(signal.SIGKILL)
    gateway_process.process.wait(5)
    gateway_process.start()
    await up(remote)
    async with asyncio.timeout(10):
        assert [tick async for tick in remote.telemetry("job-k")] == []  # it has ended


async def test_a_stopped_gateway_is_unreachable_then_recovers(
    gateway_process: GatewayProcess, remote: RemoteGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cluster_gateway.remote")
    ticker = "i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.1; done"
    async with remote.watch() as watch:
        await remote.start(spec("job-s", ticker))
        await until(watch, "job-s", WorkloadPhase.RUNNING)

        async def follow() -> list[str]:
            return [
                line.text async for b in remote.logs("job-s", follow=True) for line in b.lines()
            ]

        follower = asyncio.create_task(follow())

        async def ticking() -> bool:
            return await remote.log_size("job-s") > 0

        await eventually(ticking, within=10)
        gateway_process.signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        try:
            began = time.monotonic()
            with pytest.raises(GatewayUnreachable):
                await remote.active_workloads()
            with pytest.raises(GatewayUnreachable):
                async for _ in remote.read_log("job-s"):
                    pass
            # Fast failures, bounded by the client's timeout (2 s here), not hangs.
            assert time.monotonic() - began < 6
            await asyncio.sleep(max(0.0, 10 - (time.monotonic() - stopped_at)))
        finally:
            gateway_process.signal(signal.SIGCONT)
        await up(remote)
        # The same watch, resumed from its cursor on a new connection, sees what follows.
        await remote.stop("job-s", grace_s=0)
        await until(watch, "job-s", WorkloadPhase.EXITED)
    assert "dropped; resuming" in caplog.text  # it did lose its connection meanwhile
    assert "resumed" in caplog.text
    assert [s.phase for s in await remote.states(["job-s"])] == [WorkloadPhase.EXITED]
    # The live log reader resumed from its last line: every tick, once, in order, as the
    # whole log has them.
    async with asyncio.timeout(15):
        ticks = await follower
    whole = b"".join([chunk async for chunk in remote.read_log("job-s")]).decode()
    assert ticks == whole.splitlines()
    assert ticks == [f"tick-{i}" for i in range(len(ticks))] and len(ticks) > 50


def test_the_gateway_wants_its_secret(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "GLIA_GATEWAY_SECRET"}
    command = [GLIA, "gateway", "serve", "--name", CLUSTER, "--data-dir", str(tmp_path)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 65
    assert "GLIA_GATEWAY_SECRET" in result.stderr
    short = {**env, "GLIA_GATEWAY_SECRET": "short"}
    result = subprocess.run(command, env=short, capture_output=True, text=True, timeout=30)
    assert result.returncode == 65
    assert "at least 32 bytes" in result.stderr and "short" not in result.stderr.split(":", 1)[1]


async def test_two_gateways_never_share_a_data_dir(
    gateway_process: GatewayProcess, remote: RemoteGateway
) -> None:
    command = [GLIA, "gateway", "serve", "--name", CLUSTER, "--port", str(free_port())]
    command += ["--data-dir", str(gateway_process.data_dir)]
    env = {**os.environ, "GLIA_GATEWAY_SECRET": SECRET}
    result = await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 65
    assert "another gateway is serving" in result.stderr


async def test_the_gateway_serves_its_storage_behind_the_same_claims(
    gateway_process: GatewayProcess, remote: RemoteGateway
) -> None:
    """`glia gateway serve` mounts the storage routes (server/storage.py): RemoteStorage
    reaches them with the same signed claims, and a wrong secret is refused."""
    home = StorageLocation(CLUSTER, "acme", "vision")

    async def data() -> AsyncIterator[bytes]:
        yield b"hello from the control plane\n"

    storage = RemoteStorage(gateway_process.url, headers=lambda: claim_header(SECRET, CLUSTER))
    forged = RemoteStorage(gateway_process.url, headers=lambda: claim_header("x" * 40, CLUSTER))
    try:
        await storage.mkdir(home, parents=True)
        entry = await storage.write(home.child("greeting.txt"), data())
        assert entry.size == len(b"hello from the control plane\n")
        read = storage.read(home.child("greeting.txt"))
        assert b"".join([chunk async for chunk in read]) == b"hello from the control plane\n"
        with pytest.raises(Unauthenticated):
            await forged.stat(home.child("greeting.txt"))
    finally:
        await storage.aclose()
        await forged.aclose()
