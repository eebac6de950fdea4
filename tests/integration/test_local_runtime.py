from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest

from cluster_gateway.gateway import (
    ExitReason,
    LogLine,
    LogStream,
    Resources,
    WorkloadPhase,
    WorkloadSpec,
    WorkloadState,
)
from cluster_gateway.runtimes import local
from cluster_gateway.runtimes.local import LocalRuntime
from glia.errors import NotFound
from tests.factories import eventually

PATH = os.environ.get("PATH", "/usr/bin:/bin")
PY = sys.executable


def spec(job_id: str, command: Sequence[str], **kwargs: object) -> WorkloadSpec:
    resources = kwargs.pop("resources", Resources(cpu=1, memory_mb=256))
    env = kwargs.pop("env", {"PATH": PATH})
    return WorkloadSpec(job_id, list(command), resources, env=env, **kwargs)  # type: ignore[arg-type]


def python(code: str) -> list[str]:
    return [PY, "-u", "-c", code]


@pytest.fixture(params=[True, False], ids=["spawner", "posix_spawn"])
async def runtime(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[LocalRuntime]:
    runtime = LocalRuntime(
        tmp_path / "state", default_grace_s=1.0, poll_interval_s=0.2, use_spawner=request.param
    )
    await runtime.open()
    assert (runtime._spawner is not None) == request.param
    yield runtime
    for state in await runtime.list_workloads():
        if state.phase != WorkloadPhase.EXITED:
            await runtime.stop(state.job_id, grace_s=0)
    await runtime.close()


async def wait_for(
    watch: AsyncIterator[WorkloadState], job_id: str, phase: WorkloadPhase, within: float = 5
) -> WorkloadState:
    async with asyncio.timeout(within):
        async for state in watch:
            if state.job_id == job_id and state.phase == phase:
                return state
    raise AssertionError("watch ended")


async def all_lines(runtime: LocalRuntime, job_id: str, **kwargs: object) -> list[LogLine]:
    return [line async for batch in runtime.logs(job_id, **kwargs) for line in batch]  # type: ignore[arg-type]


def cgroup_dirs_left(job_dir: Path) -> list[str]:
    cgroup = json.loads((job_dir / "spec.json").read_text())["cgroup"]
    return [d for d in (cgroup["memory"], cgroup["cpu"]) if d and os.path.exists(d)]


async def test_error_exit_with_both_streams_in_order(runtime: LocalRuntime) -> None:
    watch = runtime.watch()
    code = (
        "import sys, time\n"
        "print('out 1')\n"
        "time.sleep(0.05)\n"
        "print('err 1', file=sys.stderr)\n"
        "time.sleep(0.05)\n"
        "print('out 2', end='')\n"  # no newline at the end: flushed at EOF
        "sys.exit(3)\n"
    )
    state = await runtime.start(spec("job-1", python(code)))
    assert state.phase == WorkloadPhase.PENDING
    exited = await wait_for(watch, "job-1", WorkloadPhase.EXITED)
    assert (exited.exit_code, exited.reason) == (3, ExitReason.ERROR)
    assert exited.started_at is not None and exited.finished_at is not None
    assert exited.started_at <= exited.finished_at
    lines = await all_lines(runtime, "job-1")
    assert [(line.stream, line.text) for line in lines] == [
        (LogStream.STDOUT, "out 1"),
        (LogStream.STDERR, "err 1"),
        (LogStream.STDOUT, "out 2"),
    ]
    assert lines[0].time < lines[1].time < lines[2].time


async def test_completed_passes_through_every_phase(runtime: LocalRuntime) -> None:
    watch = runtime.watch()
    await runtime.start(spec("ok", ["true"]))
    async with asyncio.timeout(5):
        phases = [(await anext(watch)).phase for _ in range(3)]
    assert phases == [WorkloadPhase.PENDING, WorkloadPhase.RUNNING, WorkloadPhase.EXITED]
    state = await runtime.state("ok")
    assert (state.exit_code, state.reason) == (0, ExitReason.COMPLETED)
    await runtime.stop("ok")  # ended: nothing to do
    await runtime.forget("ok")
    assert (await runtime.state("ok")).phase == WorkloadPhase.MISSING
    assert not (runtime._jobs_dir / "ok").exists()


async def test_stop_sends_sigterm(runtime: LocalRuntime) -> None:
    watch = runtime.watch()
    await runtime.start(spec("sleeper", ["sleep", "30"]))
    await wait_for(watch, "sleeper", WorkloadPhase.RUNNING)
    started = time.monotonic()
    await runtime.stop("sleeper", grace_s=10)
    exited = await wait_for(watch, "sleeper", WorkloadPhase.EXITED)
    assert time.monotonic() - started < 2
    assert (exited.reason, exited.exit_code) == (ExitReason.USER_REQUESTED, 128 + signal.SIGTERM)


async def test_stop_kills_after_the_grace(runtime: LocalRuntime) -> None:
    watch = runtime.watch()
    code = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready')\n"
        "time.sleep(30)\n"
    )
    await runtime.start(spec("stubborn", python(code)))
    async with asyncio.timeout(5):
        async for batch in runtime.logs("stubborn", follow=True):
            if any(line.text == "ready" for line in batch):
                break
    started = time.monotonic()
    await runtime.stop("stubborn", grace_s=0.3)
    exited = await wait_for(watch, "stubborn", WorkloadPhase.EXITED)
    assert 0.3 <= time.monotonic() - started < 2
    assert (exited.reason, exited.exit_code) == (ExitReason.USER_REQUESTED, 128 + signal.SIGKILL)


async def test_stop_while_pending(runtime: LocalRuntime) -> None:
    watch = runtime.watch()
    await runtime.start(spec("early", ["sleep", "30"]))
    await runtime.stop("early", grace_s=0.5)  # races the supervisor's start-up
    exited = await wait_for(watch, "early", WorkloadPhase.EXITED)
    assert exited.reason == ExitReason.USER_REQUESTED


async def test_life_span(runtime: LocalRuntime) -> None:
    watch = runtime.watch()
    await runtime.start(spec("short", ["sleep", "30"], life_span_s=0.3))
    exited = await wait_for(watch, "short", WorkloadPhase.EXITED)
    assert exited.reason == ExitReason.LIFE_SPAN_ENDED
    assert exited.started_at is not None and exited.finished_at is not None
    assert 0.3 <= (exited.finished_at - exited.started_at).total_seconds() < 2


async def test_memory_limit_is_an_oom_kill(runtime: LocalRuntime) -> None:
    if not runtime.cgroups_usable:
        pytest.skip("no writable memory cgroup controller under /sys/fs/cgroup (needs root)")
    watch = runtime.watch()
    job = spec(
        "hog",
        python("b = bytearray(400 * 1024 * 1024)"),
        resources=Resources(cpu=1, memory_mb=100),
    )
    await runtime.start(job)
    exited = await wait_for(watch, "hog", WorkloadPhase.EXITED, within=10)
    assert (exited.reason, exited.exit_code) == (ExitReason.OOM_KILLED, 137)
    assert not cgroup_dirs_left(runtime._jobs_dir / "hog")


async def test_limits_are_written_to_the_job_cgroup(runtime: LocalRuntime) -> None:
    if not runtime.cgroups_usable:
        pytest.skip("no writable memory cgroup controller under /sys/fs/cgroup (needs root)")
    watch = runtime.watch()
    await runtime.start(
        spec("limited", ["sleep", "30"], resources=Resources(cpu=0.5, memory_mb=300))
    )
    await wait_for(watch, "limited", WorkloadPhase.RUNNING)
    cgroup = json.loads((runtime._jobs_dir / "limited" / "spec.json").read_text())["cgroup"]
    child_pid = json.loads((runtime._jobs_dir / "limited" / "child.json").read_text())["pid"]
    memory, cpu = Path(cgroup["memory"]), Path(cgroup["cpu"]) if cgroup["cpu"] else None
    if cgroup["version"] == 1:
        assert int((memory / "memory.limit_in_bytes").read_text()) == 300 * 1024 * 1024
        if cpu is not None:
            quota = int((cpu / "cpu.cfs_quota_us").read_text())
            period = int((cpu / "cpu.cfs_period_us").read_text())
            assert quota / period == 0.5
    else:
        assert int((memory / "memory.max").read_text()) == 300 * 1024 * 1024
        if cpu is not None:
            quota, period = (cpu / "cpu.max").read_text().split()
            assert int(quota) / int(period) == 0.5
    assert str(child_pid) in (memory / "cgroup.procs").read_text().split()
    await runtime.stop("limited", grace_s=1)
    await wait_for(watch, "limited", WorkloadPhase.EXITED)
    assert not cgroup_dirs_left(runtime._jobs_dir / "limited")


async def test_env_and_working_dir(runtime: LocalRuntime, tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    watch = runtime.watch()
    env = {"PATH": PATH, "GREETING": "hello world"}
    await runtime.start(spec("env", ["sh", "-c", "pwd; env"], env=env, working_dir=str(workdir)))
    await wait_for(watch, "env", WorkloadPhase.EXITED)
    texts = [line.text for line in await all_lines(runtime, "env")]
    assert texts[0] == str(workdir)
    shell_own = {"PWD", "SHLVL", "_", "OLDPWD"}
    assert {t for t in texts[1:] if t.split("=")[0] not in shell_own} == {
        f"PATH={PATH}",
        "GREETING=hello world",
    }


async def test_without_a_working_dir_a_job_gets_a_scratch_dir(runtime: LocalRuntime) -> None:
    watch = runtime.watch()
    await runtime.start(spec("scratch", ["sh", "-c", "pwd; ls -A"], env={"PATH": PATH}))
    await wait_for(watch, "scratch", WorkloadPhase.EXITED)
    texts = [line.text for line in await all_lines(runtime, "scratch")]
    assert texts == [str(runtime._jobs_dir / "scratch" / "work")]


async def test_logs_follow_is_live(runtime: LocalRuntime) -> None:
    code = "import time\nprint('first')\ntime.sleep(1)\nprint('second')\n"
    await runtime.start(spec("live", python(code)))
    follower = runtime.logs("live", follow=True)
    async with asyncio.timeout(5):
        first = await anext(follower)
        assert [line.text for line in first] == ["first"]
        # it arrived while the job still runs, a moment after it was printed
        assert (await runtime.state("live")).phase == WorkloadPhase.RUNNING
        rest = [line.text async for batch in follower for line in batch]
    assert rest == ["second"]


async def test_logs_since(runtime: LocalRuntime) -> None:
    watch = runtime.watch()
    code = "import time\nprint('a')\ntime.sleep(0.1)\nprint('b')\n"
    await runtime.start(spec("since", python(code)))
    await wait_for(watch, "since", WorkloadPhase.EXITED)
    lines = await all_lines(runtime, "since")
    assert [line.text for line in lines] == ["a", "b"]
    later = await all_lines(runtime, "since", since=lines[1].time)
    assert [line.text for line in later] == ["b"]


async def test_a_new_runtime_finds_running_jobs(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    first = LocalRuntime(state_dir, poll_interval_s=0.2)
    await first.open()
    watch = first.watch()
    await first.start(spec("survivor", ["sh", "-c", "sleep 1; echo done"]))
    await wait_for(watch, "survivor", WorkloadPhase.RUNNING)
    await first.close()
    assert [s async for s in watch] == []

    second = LocalRuntime(state_dir, poll_interval_s=0.2)
    await second.open()
    try:
        watch = second.watch()
        assert [s.phase for s in await second.list_workloads()] == [WorkloadPhase.RUNNING]
        exited = await wait_for(watch, "survivor", WorkloadPhase.EXITED)
        assert exited.reason == ExitReason.COMPLETED
        assert [line.text for line in await all_lines(second, "survivor")] == ["done"]
    finally:
        await second.close()


CONTROL_PLANE = """
import asyncio, os, signal, sys
from pathlib import Path
from cluster_gateway.gateway import Resources, WorkloadSpec
from cluster_gateway.runtimes import local
from cluster_gateway.runtimes.local import LocalRuntime

async def main():
    runtime = LocalRuntime(Path(sys.argv[1]))
    await runtime.open()
    spec = WorkloadSpec("job", ["sh", "-c", "sleep 0.5; echo done"], Resources(1, 64),
                        env={"PATH": os.environ["PATH"]})
    await runtime.start(spec)
    print(runtime._spawner.pid, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""


async def test_jobs_survive_a_killed_control_plane(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    process = await asyncio.create_subprocess_exec(
        PY,
        "-c",
        CONTROL_PLANE,
        str(state_dir),
        cwd=Path(__file__).parents[2],
        stdout=asyncio.subprocess.PIPE,
    )
    stdout, _ = await process.communicate()
    assert process.returncode == -signal.SIGKILL
    spawner_pid = int(stdout)
    runtime = LocalRuntime(state_dir, poll_interval_s=0.2)
    await runtime.open()
    try:
        watch = runtime.watch()
        if (await runtime.state("job")).phase != WorkloadPhase.EXITED:
            await wait_for(watch, "job", WorkloadPhase.EXITED)
        state = await runtime.state("job")
        assert state.reason == ExitReason.COMPLETED
        assert [line.text for line in await all_lines(runtime, "job")] == ["done"]
        # The old spawner saw its socket close and went; the job did not go with it.
        assert not pid_alive(spawner_pid)
    finally:
        await runtime.close()


def pid_alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def gone(pid: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return not pid_alive(pid)

    return check


def supervisor_pid(runtime: LocalRuntime, job_id: str) -> int:
    pid = json.loads((runtime._jobs_dir / job_id / "supervisor.json").read_text())["pid"]
    assert isinstance(pid, int)
    return pid


async def test_the_supervisor_is_no_child_of_the_control_plane(runtime: LocalRuntime) -> None:
    watch = runtime.watch()
    await runtime.start(spec("detached", ["sleep", "30"]))
    await wait_for(watch, "detached", WorkloadPhase.RUNNING)
    pid = supervisor_pid(runtime, "detached")
    process = psutil.Process(pid)
    assert os.getsid(pid) == pid  # a session of its own
    if runtime._spawner is not None:
        assert process.ppid() != os.getpid()
        assert process.ppid() == runtime._spawner.pid
        assert process.cmdline()[:3] == [PY, "-I", "-S"]  # a fork of the spawner
    await runtime.stop("detached", grace_s=0)
    exited = await wait_for(watch, "detached", WorkloadPhase.EXITED)
    assert exited.reason == ExitReason.USER_REQUESTED


async def test_jobs_survive_a_killed_spawner_and_new_jobs_still_start(tmp_path: Path) -> None:
    runtime = LocalRuntime(tmp_path / "state", poll_interval_s=0.1)
    await runtime.open()
    try:
        assert runtime._spawner is not None
        old_spawner = runtime._spawner.pid
        watch = runtime.watch()
        await runtime.start(spec("survivor", ["sh", "-c", "sleep 0.5; echo done"]))
        await wait_for(watch, "survivor", WorkloadPhase.RUNNING)
        survivor = supervisor_pid(runtime, "survivor")
        os.kill(old_spawner, signal.SIGKILL)
        await eventually(gone(old_spawner))

        # At once: the dead spawner is noticed, and the job starts with posix_spawn.
        await runtime.start(spec("after", ["sh", "-c", "echo after"]))
        assert supervisor_pid(runtime, "after") in runtime._supervisors  # posix_spawn's
        exited = await wait_for(watch, "after", WorkloadPhase.EXITED)
        assert exited.reason == ExitReason.COMPLETED
        assert [line.text for line in await all_lines(runtime, "after")] == ["after"]

        exited = await wait_for(watch, "survivor", WorkloadPhase.EXITED)
        assert exited.reason == ExitReason.COMPLETED
        assert [line.text for line in await all_lines(runtime, "survivor")] == ["done"]
        assert psutil.Process(survivor).ppid() != old_spawner or not pid_alive(survivor)

        # A while later a new spawner is there, and starts the jobs again.
        async def spawner_ready() -> bool:
            return runtime._spawner is not None and runtime._spawner.poll_ready()

        await eventually(spawner_ready)
        assert runtime._spawner is not None
        new_spawner = runtime._spawner.pid
        assert new_spawner != old_spawner
        await runtime.start(spec("respawned", ["sleep", "30"]))
        await wait_for(watch, "respawned", WorkloadPhase.RUNNING)
        assert psutil.Process(supervisor_pid(runtime, "respawned")).ppid() == new_spawner
        await runtime.stop("respawned", grace_s=0)
        exited = await wait_for(watch, "respawned", WorkloadPhase.EXITED)
        assert exited.reason == ExitReason.USER_REQUESTED
    finally:
        await runtime.close()


async def test_the_spawner_gets_only_its_socket(tmp_path: Path) -> None:
    # A listening socket this process would leak if fds were not closed: inheritable.
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.set_inheritable(True)
        runtime = LocalRuntime(tmp_path / "state")
        await runtime.open()
        try:
            assert runtime._spawner is not None
            pid = runtime._spawner.pid
            fd_dir = f"/proc/{pid}/fd"
            fds = {int(fd): os.readlink(f"{fd_dir}/{fd}") for fd in os.listdir(fd_dir)}
            inode = os.fstat(listener.fileno()).st_ino
            assert f"socket:[{inode}]" not in fds.values()
            assert fds[0] == fds[1] == "/dev/null"
            assert fds[2] == str(tmp_path / "state" / "spawner.log")
            assert len(fds) == 4 and all(
                target.startswith("socket:") for fd, target in fds.items() if fd > 2
            )
        finally:
            await runtime.close()
        assert not pid_alive(pid)  # it ends with the runtime


async def test_killed_supervisor_is_lost_and_its_job_killed(runtime: LocalRuntime) -> None:
    watch = runtime.watch()
    await runtime.start(spec("orphan", ["sleep", "30"]))
    await wait_for(watch, "orphan", WorkloadPhase.RUNNING)
    job_dir = runtime._jobs_dir / "orphan"
    supervisor = json.loads((job_dir / "supervisor.json").read_text())
    child = json.loads((job_dir / "child.json").read_text())
    os.kill(supervisor["pid"], signal.SIGKILL)
    exited = await wait_for(watch, "orphan", WorkloadPhase.EXITED)
    assert exited.reason == ExitReason.LOST
    await asyncio.sleep(0.1)
    try:
        assert psutil.Process(child["pid"]).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        pass


async def test_start_is_idempotent(runtime: LocalRuntime) -> None:
    watch = runtime.watch()
    job = spec("once", ["sh", "-c", "echo run"])
    await runtime.start(job)
    again = await runtime.start(job)
    assert again.phase in (WorkloadPhase.PENDING, WorkloadPhase.RUNNING)
    await wait_for(watch, "once", WorkloadPhase.EXITED)
    assert (await runtime.start(job)).phase == WorkloadPhase.EXITED
    assert [line.text for line in await all_lines(runtime, "once")] == ["run"]


async def test_unknown_job(runtime: LocalRuntime) -> None:
    assert (await runtime.state("ghost")).phase == WorkloadPhase.MISSING
    with pytest.raises(NotFound):
        await all_lines(runtime, "ghost")
    with pytest.raises(NotFound):
        await runtime.stop("ghost")


async def test_command_not_found(runtime: LocalRuntime) -> None:
    watch = runtime.watch()
    await runtime.start(spec("typo", ["no-such-command-glia"]))
    exited = await wait_for(watch, "typo", WorkloadPhase.EXITED)
    assert (exited.reason, exited.exit_code) == (ExitReason.START_FAILED, 127)
    assert exited.description is not None and "no-such-command-glia" in exited.description
    assert exited.started_at is None


async def test_capacity(runtime: LocalRuntime) -> None:
    capacity = await runtime.capacity()
    assert capacity.cpu >= 1 and capacity.memory_mb > 0


async def test_a_stuck_spawner_is_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local, "SPAWNER_REPLY_S", 0.2)
    runtime = LocalRuntime(tmp_path / "state", poll_interval_s=0.1)
    await runtime.open()
    try:
        assert runtime._spawner is not None
        stuck = runtime._spawner.pid
        os.kill(stuck, signal.SIGSTOP)
        watch = runtime.watch()
        await runtime.start(spec("patient", ["sh", "-c", "echo started"]))
        assert supervisor_pid(runtime, "patient") in runtime._supervisors  # posix_spawn's
        exited = await wait_for(watch, "patient", WorkloadPhase.EXITED)
        assert exited.reason == ExitReason.COMPLETED
        assert [line.text for line in await all_lines(runtime, "patient")] == ["started"]
        await eventually(gone(stuck))  # killed, not left behind
    finally:
        await runtime.close()
