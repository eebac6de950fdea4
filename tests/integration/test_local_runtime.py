"""What only LocalRuntime does: processes, cgroups, the spawner, supervisors that outlive the
control plane, retention, the log files, the sandbox's plumbing. What every runtime does is in
tests/contract/; what a job can and cannot reach (attacks) is in tests/security/."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import pytest

from cluster_gateway.gateway import (
    JobIsolation,
    WorkloadPhase,
    WorkloadSpec,
    WorkloadState,
    WorkloadWatch,
)
from cluster_gateway.runtimes import logfile, supervisor
from cluster_gateway.runtimes.local import LocalRuntime
from glia.clusters import Resources
from glia.errors import BadInput
from glia.jobs import JobReason
from glia.monitoring import LogLine, LogStream
from tests.polling import eventually

PATH = os.environ.get("PATH", "/usr/bin:/bin")
PY = sys.executable
WITHIN = 10.0


def spec(job_id: str, command: Sequence[str], **fields: Any) -> WorkloadSpec:
    fields.setdefault("resources", Resources(cpu=1, memory_mb=256))
    fields.setdefault("env", {"PATH": PATH})
    return WorkloadSpec(job_id=job_id, command=tuple(command), **fields)


# A uid as the control plane allocates them: no user of this host has it.
JOB_UID = 3_400_001


def python(code: str) -> list[str]:
    return [PY, "-u", "-c", code]


async def stop_all(runtime: LocalRuntime) -> None:
    """Stop what still runs and wait for it: no job process outlives a test."""
    for state in await runtime.active_workloads():
        await runtime.stop(state.job_id, grace_s=0)

    async def none_active() -> bool:
        return not await runtime.active_workloads()

    await eventually(none_active, within=WITHIN)


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[LocalRuntime]:
    runtime = LocalRuntime(tmp_path / "state", default_grace_s=1.0, poll_interval_s=0.2)
    await runtime.open()
    try:
        yield runtime
        await stop_all(runtime)
    finally:
        await runtime.close()


async def until(
    watch: WorkloadWatch, job_id: str, phase: WorkloadPhase, within: float = WITHIN
) -> WorkloadState:
    async with asyncio.timeout(within):
        async for event in watch:
            if event.state.job_id == job_id and event.state.phase == phase:
                return event.state
    raise AssertionError("the watch ended")


async def run_to_end(
    runtime: LocalRuntime, job: WorkloadSpec, within: float = WITHIN
) -> WorkloadState:
    async with runtime.watch() as watch:
        await runtime.start(job)
        return await until(watch, job.job_id, WorkloadPhase.EXITED, within)


async def start_running(runtime: LocalRuntime, job: WorkloadSpec) -> WorkloadState:
    async with runtime.watch() as watch:
        await runtime.start(job)
        return await until(watch, job.job_id, WorkloadPhase.RUNNING)


async def all_lines(runtime: LocalRuntime, job_id: str) -> list[LogLine]:
    async with asyncio.timeout(WITHIN):
        return [line async for batch in runtime.logs(job_id) for line in batch.lines()]


def read_json(path: Path) -> dict[str, Any]:
    value = json.loads(path.read_text())
    assert isinstance(value, dict)
    return value


def supervisor_pid(runtime: LocalRuntime, job_id: str) -> int:
    pid = read_json(runtime.job_dir(job_id) / "supervisor.json")["pid"]
    assert isinstance(pid, int)
    return pid


def cgroup_dirs_left(runtime: LocalRuntime, job_id: str) -> list[str]:
    cgroup = read_json(runtime.job_dir(job_id) / "spec.json")["cgroup"]
    dirs = (cgroup["memory"], cgroup["cpu"], cgroup["pids"])
    return [d for d in dirs if d and os.path.exists(d)]


def pid_alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def gone(pid: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return not pid_alive(pid)

    return check


def test_the_supervisor_speaks_job_reasons() -> None:
    spelled = {
        supervisor.COMPLETED,
        supervisor.ERROR,
        supervisor.OOM_KILLED,
        supervisor.KILLED,
        supervisor.USER_REQUESTED,
        supervisor.LIFE_SPAN_ENDED,
        supervisor.LOST,
        supervisor.START_FAILED,
    }
    assert spelled <= {reason.value for reason in JobReason}


# --- processes --------------------------------------------------------------------------------


async def test_stop_kills_after_the_grace(runtime: LocalRuntime) -> None:
    code = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready')\n"
        "time.sleep(30)\n"
    )
    await runtime.start(spec("stubborn", python(code)))
    async with asyncio.timeout(WITHIN):
        async for batch in runtime.logs("stubborn", follow=True):
            if any(line.text == "ready" for line in batch.lines()):
                break
    async with runtime.watch() as watch:
        started = time.monotonic()
        await runtime.stop("stubborn", grace_s=0.3)
        exited = await until(watch, "stubborn", WorkloadPhase.EXITED)
    assert 0.3 <= time.monotonic() - started < 5
    assert (exited.reason, exited.exit_code) == (JobReason.USER_REQUESTED, 128 + signal.SIGKILL)


async def test_a_killed_job_is_killed(runtime: LocalRuntime) -> None:
    exited = await run_to_end(runtime, spec("suicide", ["sh", "-c", "kill -USR1 $$; sleep 5"]))
    assert (exited.reason, exited.exit_code) == (JobReason.KILLED, 128 + signal.SIGUSR1)


async def test_command_not_found(runtime: LocalRuntime) -> None:
    exited = await run_to_end(runtime, spec("typo", ["no-such-command-glia"]))
    assert (exited.reason, exited.exit_code) == (JobReason.START_FAILED, 127)
    assert exited.description is not None and "no-such-command-glia" in exited.description
    assert exited.started_at is None


async def test_a_missing_working_dir_is_a_start_failure(runtime: LocalRuntime) -> None:
    exited = await run_to_end(runtime, spec("lost-dir", ["true"], working_dir="/no/such/dir"))
    assert (exited.reason, exited.exit_code) == (JobReason.START_FAILED, 127)
    assert exited.description is not None and "/no/such/dir" in exited.description


async def test_env_and_working_dir(runtime: LocalRuntime) -> None:
    # A directory of the host is shown to a job under its user's uid, which must enter it.
    workdir = Path(tempfile.mkdtemp(prefix="glia-test-work-"))
    os.chmod(workdir, 0o755)
    env = {"PATH": PATH, "GREETING": "hello world", "HOME": "/root"}
    job = spec(
        "env", ["sh", "-c", "pwd; env"], env=env, working_dir=str(workdir), uid=JOB_UID, gid=JOB_UID
    )
    await run_to_end(runtime, job)
    texts = [line.text for line in await all_lines(runtime, "env")]
    shutil.rmtree(workdir)
    assert texts[0] == str(workdir)
    shell_own = {"PWD", "SHLVL", "_", "OLDPWD"}
    # In a sandbox HOME is the job's own, whatever the spec says.
    home = "/job/home" if runtime.sandboxed else "/root"
    assert {t for t in texts[1:] if t.split("=")[0] not in shell_own} == {
        f"PATH={PATH}",
        "GREETING=hello world",
        f"HOME={home}",
    }


async def test_without_a_working_dir_a_job_gets_a_scratch_dir(runtime: LocalRuntime) -> None:
    await run_to_end(runtime, spec("scratch", ["sh", "-c", "pwd; ls -A; touch made"]))
    texts = [line.text for line in await all_lines(runtime, "scratch")]
    # In a sandbox it is shown at /job/work; it is the job dir's ``work`` on the host.
    assert texts == ["/job/work" if runtime.sandboxed else str(runtime.job_dir("scratch") / "work")]
    assert (runtime.job_dir("scratch") / "work" / "made").exists()


# --- limits -----------------------------------------------------------------------------------


async def test_memory_limit_is_an_oom_kill(runtime: LocalRuntime) -> None:
    if not runtime.cgroups_usable:
        pytest.skip("no writable memory cgroup controller under /sys/fs/cgroup (needs root)")
    job = spec(
        "hog",
        python("b = bytearray(400 * 1024 * 1024)"),
        resources=Resources(cpu=1, memory_mb=100),
    )
    exited = await run_to_end(runtime, job, within=20)
    assert (exited.reason, exited.exit_code) == (JobReason.OOM_KILLED, 137)
    assert not cgroup_dirs_left(runtime, "hog")


async def test_limits_are_written_to_the_job_cgroup(runtime: LocalRuntime) -> None:
    if not runtime.cgroups_usable:
        pytest.skip("no writable memory cgroup controller under /sys/fs/cgroup (needs root)")
    job = spec("limited", ["sleep", "30"], resources=Resources(cpu=0.5, memory_mb=300))
    await start_running(runtime, job)
    job_dir = runtime.job_dir("limited")
    cgroup = read_json(job_dir / "spec.json")["cgroup"]
    child_pid = read_json(job_dir / "child.json")["pid"]
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
            quota_text, period_text = (cpu / "cpu.max").read_text().split()
            assert int(quota_text) / int(period_text) == 0.5
    assert str(child_pid) in (memory / "cgroup.procs").read_text().split()
    if cgroup["pids"] is not None:
        assert (Path(cgroup["pids"]) / "pids.max").read_text().strip() == "1024"
        assert str(child_pid) in (Path(cgroup["pids"]) / "cgroup.procs").read_text().split()
    async with runtime.watch() as watch:
        await runtime.stop("limited", grace_s=1)
        await until(watch, "limited", WorkloadPhase.EXITED)
    assert not cgroup_dirs_left(runtime, "limited")


async def test_without_cgroups_memory_is_limited_by_rlimit(tmp_path: Path) -> None:
    runtime = LocalRuntime(tmp_path / "state", use_cgroups=False)
    await runtime.open()
    try:
        assert not runtime.cgroups_usable
        code = (
            "import resource\n"
            "print(resource.getrlimit(resource.RLIMIT_AS)[0] // 2**20)\n"
            "b = bytearray(400 * 2**20)\n"
        )
        job = spec("capped", python(code), resources=Resources(cpu=1, memory_mb=100))
        exited = await run_to_end(runtime, job)
        assert (exited.reason, exited.exit_code) == (JobReason.ERROR, 1)  # a MemoryError
        assert [line.text for line in await all_lines(runtime, "capped")][0] == "100"
    finally:
        await runtime.close()


# --- supervisors and the spawner --------------------------------------------------------------


async def test_the_supervisor_is_a_fork_of_the_spawner(runtime: LocalRuntime) -> None:
    await start_running(runtime, spec("detached", ["sleep", "30"]))
    pid = supervisor_pid(runtime, "detached")
    process = psutil.Process(pid)
    assert os.getsid(pid) == pid  # a session of its own
    assert process.ppid() == runtime.spawner_pid != os.getpid()
    assert process.cmdline()[:3] == [PY, "-I", "-S"]
    # What the spawner imported is in every supervisor: none of the runtime's heavy packages.
    modules = (
        "import sys; sys.path.append(sys.argv[1]);"
        "import cluster_gateway.runtimes.spawner;"
        "print(' '.join(sorted(sys.modules)))"
    )
    root = str(Path(logfile.__file__).parents[2])
    process = await asyncio.create_subprocess_exec(
        PY, "-I", "-S", "-c", modules, root, stdout=asyncio.subprocess.PIPE
    )
    imported = (await process.communicate())[0].decode().split()
    assert "cluster_gateway.runtimes.supervisor" in imported
    assert not {"pydantic", "psutil", "glia", "asyncio"} & set(imported)


async def test_jobs_survive_a_killed_spawner_and_the_next_start_launches_another(
    runtime: LocalRuntime,
) -> None:
    old_spawner = runtime.spawner_pid
    assert old_spawner is not None
    await start_running(runtime, spec("survivor", ["sh", "-c", "sleep 1; echo done"]))
    os.kill(old_spawner, signal.SIGKILL)
    await eventually(gone(old_spawner))

    exited = await run_to_end(runtime, spec("after", ["sh", "-c", "echo after"]))
    assert exited.reason == JobReason.COMPLETED
    new_spawner = runtime.spawner_pid
    assert new_spawner is not None and new_spawner != old_spawner
    assert [line.text for line in await all_lines(runtime, "after")] == ["after"]

    async with runtime.watch() as watch:
        if (await runtime.states(["survivor"]))[0].phase != WorkloadPhase.EXITED:
            await until(watch, "survivor", WorkloadPhase.EXITED)
    assert (await runtime.states(["survivor"]))[0].reason == JobReason.COMPLETED
    assert [line.text for line in await all_lines(runtime, "survivor")] == ["done"]


async def test_a_dead_spawner_is_replaced_before_a_job_needs_it(runtime: LocalRuntime) -> None:
    old_spawner = runtime.spawner_pid
    assert old_spawner is not None
    os.kill(old_spawner, signal.SIGKILL)

    async def replaced() -> bool:
        return runtime.spawner_pid not in (None, old_spawner)

    await eventually(replaced, within=WITHIN)


async def test_a_stuck_spawner_is_replaced(tmp_path: Path) -> None:
    runtime = LocalRuntime(tmp_path / "state", poll_interval_s=0.2, spawner_reply_s=0.3)
    await runtime.open()
    try:
        stuck = runtime.spawner_pid
        assert stuck is not None
        os.kill(stuck, signal.SIGSTOP)
        exited = await run_to_end(runtime, spec("patient", ["sh", "-c", "echo started"]))
        assert exited.reason == JobReason.COMPLETED
        assert [line.text for line in await all_lines(runtime, "patient")] == ["started"]
        assert runtime.spawner_pid not in (None, stuck)
        await eventually(gone(stuck))  # killed, not left behind
    finally:
        await runtime.close()


async def test_without_a_spawner_a_job_fails_to_start(tmp_path: Path) -> None:
    runtime = LocalRuntime(tmp_path / "state", python=str(tmp_path / "no-python"))
    await runtime.open()
    try:
        assert runtime.spawner_pid is None
        exited = await run_to_end(runtime, spec("orphan", ["true"]))
        assert (exited.reason, exited.exit_code) == (JobReason.START_FAILED, None)
        assert exited.description is not None
        assert "spawner" in exited.description and "no-python" in exited.description
        # Not a launch for every job: the next one fails at once, saying when it tries again.
        again = await run_to_end(runtime, spec("orphan-2", ["true"]))
        assert again.reason == JobReason.START_FAILED
        assert again.description is not None and "started again in" in again.description
    finally:
        await runtime.close()


async def test_the_spawner_gets_only_its_socket(tmp_path: Path) -> None:
    # A listening socket this process would leak if fds were not closed: inheritable.
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.set_inheritable(True)
        runtime = LocalRuntime(tmp_path / "state")
        await runtime.open()
        try:
            pid = runtime.spawner_pid
            assert pid is not None
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
        await eventually(gone(pid))  # it ends with the runtime


async def test_a_job_being_started_is_never_judged_lost(tmp_path: Path) -> None:
    runtime = LocalRuntime(tmp_path / "state", poll_interval_s=0.01)
    await runtime.open()
    try:
        job_ids = [f"busy-{i}" for i in range(20)]
        ends: dict[str, WorkloadState] = {}
        async with runtime.watch() as watch:
            await asyncio.gather(
                *(runtime.start(spec(job_id, ["sleep", "0.2"])) for job_id in job_ids)
            )
            async with asyncio.timeout(WITHIN):
                async for event in watch:
                    if event.state.phase == WorkloadPhase.EXITED:
                        ends[event.state.job_id] = event.state
                        if len(ends) == len(job_ids):
                            break
        assert {end.reason for end in ends.values()} == {JobReason.COMPLETED}
    finally:
        await runtime.close()


async def test_killed_supervisor_is_lost_and_its_job_killed(runtime: LocalRuntime) -> None:
    await start_running(runtime, spec("orphan", ["sleep", "30"]))
    child = read_json(runtime.job_dir("orphan") / "child.json")["pid"]
    async with runtime.watch() as watch:
        os.kill(supervisor_pid(runtime, "orphan"), signal.SIGKILL)
        exited = await until(watch, "orphan", WorkloadPhase.EXITED)
    assert exited.reason == JobReason.LOST
    await eventually(gone(child))


CONTROL_PLANE = """
import asyncio, os, signal, sys
from pathlib import Path
from cluster_gateway.gateway import WorkloadSpec
from cluster_gateway.runtimes.local import LocalRuntime
from glia.clusters import Resources

async def main():
    runtime = LocalRuntime(Path(sys.argv[1]))
    await runtime.open()
    spec = WorkloadSpec(
        job_id="job",
        command=("sh", "-c", "sleep 0.5; echo done"),
        resources=Resources(cpu=1, memory_mb=64),
        env={"PATH": os.environ["PATH"]},
    )
    await runtime.start(spec)
    print(runtime.spawner_pid, flush=True)
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
        async with runtime.watch() as watch:
            if (await runtime.states(["job"]))[0].phase != WorkloadPhase.EXITED:
                await until(watch, "job", WorkloadPhase.EXITED)
        assert (await runtime.states(["job"]))[0].reason == JobReason.COMPLETED
        assert [line.text for line in await all_lines(runtime, "job")] == ["done"]
        # The old spawner saw its socket close and went; the job did not go with it.
        await eventually(gone(spawner_pid))
    finally:
        await runtime.close()


# --- retention and the log files ----------------------------------------------------------------


async def test_ended_workloads_are_removed_after_the_retention(tmp_path: Path) -> None:
    runtime = LocalRuntime(tmp_path / "state", retention_s=0.5, retention_check_s=0.1)
    await runtime.open()
    try:
        await start_running(runtime, spec("long", ["sleep", "30"]))
        await run_to_end(runtime, spec("short", ["true"]))
        assert runtime.job_dir("short").is_dir()

        async def removed() -> bool:
            (state,) = await runtime.states(["short"])
            return state.phase == WorkloadPhase.MISSING

        await eventually(removed, within=WITHIN)
        assert not runtime.job_dir("short").exists()
        assert runtime.job_dir("long").is_dir()  # running: kept whatever its age
        await stop_all(runtime)
    finally:
        await runtime.close()


async def test_the_log_is_plain_bytes_with_an_index(runtime: LocalRuntime) -> None:
    code = (
        "import sys\n"
        f"print('y' * {2 * logfile.MAX_LINE + 10})\n"
        "print('err', file=sys.stderr, flush=True)\n"
        "sys.stdout.write('partial')\n"
    )
    assert (await run_to_end(runtime, spec("logged", python(code)))).reason == JobReason.COMPLETED
    job_dir = runtime.job_dir("logged")
    data = (job_dir / logfile.log_name(0)).read_bytes()
    pieces = [b"y" * logfile.MAX_LINE, b"y" * logfile.MAX_LINE, b"y" * 10]
    assert set(data.split(b"\n")) == {*pieces, b"err", b"partial", b""}
    assert data.endswith(b"partial\n")
    index = (job_dir / logfile.index_name(0)).read_bytes()
    records = list(logfile.RECORD.iter_unpack(index))
    # The records cover the file, in order, end to end.
    assert [offset for offset, _, _, _ in records] == [
        sum(length for _, _, length, _ in records[:i]) for i in range(len(records))
    ]
    assert sum(length for _, _, length, _ in records) == len(data)
    times = [time_us for _, time_us, _, _ in records]
    assert times == sorted(times)
    lines = await all_lines(runtime, "logged")
    assert [len(line.text) for line in lines[:3]] == [len(piece) for piece in pieces]
    assert b"".join(line.text.encode() + b"\n" for line in lines) == data


async def test_a_follower_is_woken_by_the_supervisor(runtime: LocalRuntime) -> None:
    code = "import time\ntime.sleep(0.5)\nprint(time.time(), flush=True)\ntime.sleep(30)\n"
    await runtime.start(spec("live", python(code)))
    async with asyncio.timeout(WITHIN):
        async for batch in runtime.logs("live", follow=True):
            delay = time.time() - float(batch.lines()[0].text)
            break
    # Far below the follower's fallback re-read (FOLLOW_RECHECK_S, 1 s): the datagram woke it.
    assert delay < 0.5


def test_a_log_reader_waits_for_the_bytes_of_a_record(tmp_path: Path) -> None:
    writer = logfile.LogWriter(str(tmp_path), limit=1024**2)
    writer.write(logfile.STDOUT, [b"one", b"two"], 1000.0)
    writer.close()
    # A record whose bytes are not written yet, as a reader may meet it mid-write.
    size = (tmp_path / logfile.log_name(0)).stat().st_size
    with open(tmp_path / logfile.index_name(0), "ab") as index:
        index.write(logfile.RECORD.pack(size, 2_000_000_000, len(b"three\n"), logfile.STDERR))
    reader = logfile.LogReader(str(tmp_path))
    one, two, three = b"one\n", b"two\n", b"three\n"
    assert reader.read(max_lines=1, max_bytes=1024) == [(1_000_000_000, logfile.STDOUT, one)]
    assert reader.read(max_lines=10, max_bytes=1024) == [(1_000_000_000, logfile.STDOUT, two)]
    assert reader.read(max_lines=10, max_bytes=1024) == []
    with open(tmp_path / logfile.log_name(0), "ab") as log:
        log.write(three)
    assert reader.read(max_lines=10, max_bytes=1024) == [(2_000_000_000, logfile.STDERR, three)]
    since = logfile.LogReader(str(tmp_path), since_us=1_500_000_000)
    assert since.read(max_lines=10, max_bytes=1024) == [(2_000_000_000, logfile.STDERR, three)]
    # A run is cut at the bounds, between lines: at the lines', or at the bytes' (6 + 3 > 8).
    whole = logfile.LogReader(str(tmp_path))
    assert whole.read(max_lines=10, max_bytes=8) == [(1_000_000_000, logfile.STDOUT, one + two)]
    assert whole.read(max_lines=10, max_bytes=1) == [(2_000_000_000, logfile.STDERR, three)]


def test_the_log_is_kept_in_segments_and_the_oldest_are_dropped(tmp_path: Path) -> None:
    limit = 64 * 1024  # segments of MIN_SEGMENT (16 KiB)
    writer = logfile.LogWriter(str(tmp_path), limit=limit)
    line = b"z" * 999
    for second in range(50):  # 50 kB in runs of one 1000-byte line: nothing dropped yet
        writer.write(logfile.STDOUT, [line], 1000.0 + second)
    follower = logfile.LogReader(str(tmp_path))
    assert follower.read(max_lines=10, max_bytes=10**6) == [
        ((1000 + n) * 10**6, 0, line + b"\n") for n in range(10)
    ]
    for second in range(50, 300):  # the follower falls behind what is dropped
        writer.write(logfile.STDOUT, [line], 1000.0 + second)
    writer.close()
    segments = logfile.segments(str(tmp_path))
    assert segments is not None and segments[0] > 0
    kept = sum((tmp_path / logfile.log_name(k)).stat().st_size for k in segments)
    assert limit - 16 * 1024 < kept <= limit
    # A reader from the start, and the follower, each get a marker for what they missed.
    for reader, missed in [(logfile.LogReader(str(tmp_path)), 0), (follower, 10 * 1000)]:
        lines = reader.read(max_lines=1000, max_bytes=10**6)
        (time_us, stream, text), rest = lines[0], lines[1:]
        assert stream == logfile.SYSTEM
        assert text == logfile.dropped_line(300 * 1000 - kept - missed) + b"\n"
        assert time_us == rest[0][0]
        assert [run for _, _, run in rest] == [line + b"\n"] * (kept // 1000)
    with logfile.Snapshot(str(tmp_path)) as snapshot:
        data = snapshot.read(0, snapshot.size)
    assert data == logfile.dropped_line(300 * 1000 - kept) + b"\n" + (line + b"\n") * (kept // 1000)
    assert logfile.log_size(str(tmp_path)) == len(data)


def test_a_log_reader_since_a_time_after_what_was_dropped(tmp_path: Path) -> None:
    writer = logfile.LogWriter(str(tmp_path), limit=64 * 1024)
    for second in range(200):
        writer.write(logfile.STDOUT, [b"%03d" % second + b"." * 996], 1000.0 + second)
    writer.close()
    since = logfile.LogReader(str(tmp_path), since_us=1_190_000_000)
    lines = since.read(max_lines=1000, max_bytes=10**6)
    assert [text[:3] for _, _, text in lines] == [b"%03d" % n for n in range(190, 200)]
    early = logfile.LogReader(str(tmp_path), since_us=0)
    assert early.read(max_lines=1, max_bytes=10**6)[0][1] == logfile.SYSTEM


def test_a_log_reader_resumes_at_any_runs_end(tmp_path: Path) -> None:
    """Every end a reader reports is a place to resume: reading on from each gives exactly
    the rest, across records cut by the bounds and across segments."""
    writer = logfile.LogWriter(str(tmp_path), limit=1024**2)
    expected = b""
    for second in range(40):
        lines = [b"%02d-%d" % (second, n) + b"x" * (second * 37 % 500) for n in range(3)]
        writer.write(second % 2, lines, 1000.0 + second)
        expected += b"".join(line + b"\n" for line in lines)
    writer.close()
    reader = logfile.LogReader(str(tmp_path))
    ends = []
    while runs := reader.read(max_lines=2, max_bytes=700):
        ends.append(reader.position)
    assert ends[-1] == len(expected) and len(ends) > 30
    for end in [0, *ends]:
        resumed = logfile.LogReader(str(tmp_path), offset=end)
        rest = b""
        while runs := resumed.read(max_lines=1000, max_bytes=10**6):
            rest += b"".join(text for _, _, text in runs)
        assert rest == expected[end:], end
    # Past the end it waits there for what comes.
    assert logfile.LogReader(str(tmp_path), offset=10**9).read(max_lines=10, max_bytes=99) == []
    with pytest.raises(ValueError):
        logfile.LogReader(str(tmp_path), offset=1, since_us=1)


def test_a_log_reader_resumed_where_output_was_dropped_says_so(tmp_path: Path) -> None:
    writer = logfile.LogWriter(str(tmp_path), limit=64 * 1024)
    for second in range(200):
        writer.write(logfile.STDOUT, [b"%03d" % second + b"." * 996], 1000.0 + second)
    writer.close()
    first = logfile.segments(str(tmp_path))
    assert first is not None
    oldest = 0
    with open(tmp_path / logfile.index_name(first[0]), "rb") as index:
        oldest = logfile.RECORD.unpack(index.read(logfile.RECORD.size))[0]
    resumed = logfile.LogReader(str(tmp_path), offset=5000)
    runs = resumed.read(max_lines=2, max_bytes=10**6)
    assert runs[0][1] == logfile.SYSTEM
    assert runs[0][2] == logfile.dropped_line(oldest - 5000) + b"\n"
    assert runs[1][2].startswith(b"%03d" % (oldest // 1000))


def test_the_last_lines_of_a_log_are_found_from_its_end(tmp_path: Path) -> None:
    assert logfile.tail_offset(str(tmp_path), 5) == 0  # no output yet
    writer = logfile.LogWriter(str(tmp_path), limit=64 * 1024)
    line = b"y" * 999
    for second in range(300):  # segments of 16 KiB, the oldest dropped
        writer.write(logfile.STDOUT, [line], 1000.0 + second)
    writer.close()
    end = 300 * 1000
    assert logfile.tail_offset(str(tmp_path), 0) == end
    assert logfile.tail_offset(str(tmp_path), 1) == end - 1000
    assert logfile.tail_offset(str(tmp_path), 40) == end - 40 * 1000  # across segments
    kept = logfile.segments(str(tmp_path))
    assert kept is not None
    with open(tmp_path / logfile.index_name(kept[0]), "rb") as index:
        oldest = logfile.RECORD.unpack(index.read(logfile.RECORD.size))[0]
    assert logfile.tail_offset(str(tmp_path), 10**6) == oldest  # fewer kept than asked


async def test_a_log_truncated_while_it_is_read_says_so(runtime: LocalRuntime) -> None:
    code = "import time\nfor i in range(3000): print(i)\ntime.sleep(30)\n"
    await runtime.start(spec("cut", python(code)))
    log = runtime.job_dir("cut") / logfile.log_name(0)

    async def printed() -> bool:
        return await runtime.log_size("cut") >= len("".join(f"{i}\n" for i in range(3000)))

    await eventually(printed, within=WITHIN)
    async with asyncio.timeout(WITHIN):
        reader = runtime.logs("cut", follow=True)
        first = await anext(reader)
        assert [line.text for line in first.lines()] == [str(i) for i in range(1000)]
        os.truncate(log, 0)
        rest = [line async for batch in reader for line in batch.lines()]
    assert (rest[-1].stream, rest[-1].text) == (LogStream.SYSTEM, logfile.TRUNCATED_LINE.decode())
    assert (await runtime.states(["cut"]))[0].phase == WorkloadPhase.RUNNING  # it ended early


# --- the sandbox and isolation ------------------------------------------------------------------


async def test_isolation_follows_the_constructor(tmp_path: Path) -> None:
    root = os.geteuid() == 0
    bwrap = shutil.which("bwrap") is not None
    cases: list[tuple[dict[str, Any], JobIsolation]] = [
        ({"sandbox": False, "own_uid": False}, JobIsolation(own_uid=False, sandbox=False)),
        ({"sandbox": False}, JobIsolation(own_uid=root, sandbox=False)),
        ({}, JobIsolation(own_uid=root, sandbox=bwrap)),
        # A bwrap that is not there: no sandbox, unless one is required.
        ({"bwrap": str(tmp_path / "no-bwrap")}, JobIsolation(own_uid=root, sandbox=False)),
    ]
    for i, (options, expected) in enumerate(cases):
        runtime = LocalRuntime(tmp_path / f"state-{i}", **options)
        with pytest.raises(RuntimeError):
            await runtime.isolation()  # known once open
        await runtime.open()
        try:
            assert await runtime.isolation() == expected, options
            assert runtime.sandboxed == expected.sandbox
        finally:
            await runtime.close()
    required = LocalRuntime(tmp_path / "state-x", sandbox=True, bwrap=str(tmp_path / "no-bwrap"))
    with pytest.raises(RuntimeError, match="cannot be sandboxed"):
        await required.open()


@pytest.mark.skipif(os.geteuid() != 0, reason="switching uids needs root")
async def test_without_a_sandbox_root_switches_to_the_jobs_uid(tmp_path: Path) -> None:
    runtime = LocalRuntime(tmp_path / "state", sandbox=False, poll_interval_s=0.2)
    await runtime.open()
    try:
        assert await runtime.isolation() == JobIsolation(own_uid=True, sandbox=False)
        script = "id -u; id -G; grep NoNewPrivs /proc/self/status; touch made"
        job = spec("plain", ["sh", "-c", script], uid=3_400_000, gid=3_400_001)
        exited = await run_to_end(runtime, job)
        assert exited.reason == JobReason.COMPLETED, exited
        texts = [line.text for line in await all_lines(runtime, "plain")]
        assert texts == ["3400000", "3400001", "NoNewPrivs:\t1"]
        made = runtime.job_dir("plain") / "work" / "made"  # entered though its parents are 0700
        assert made.stat().st_uid == 3_400_000
    finally:
        await runtime.close()


async def test_notifications_reach_a_runtime_on_a_long_path(tmp_path: Path) -> None:
    state_dir = tmp_path / ("a-rather-long-directory-name-" * 5) / "state"
    assert len(str(state_dir / "notify.sock")) > 108  # longer than a socket path may be
    # No poll to speak of: RUNNING and EXITED come by datagram or not at all.
    runtime = LocalRuntime(state_dir, poll_interval_s=600)
    await runtime.open()
    try:
        exited = await run_to_end(runtime, spec("far", ["sh", "-c", "echo far"]), within=5)
        assert exited.reason == JobReason.COMPLETED
    finally:
        await runtime.close()


async def test_extra_binds_must_not_show_the_state(tmp_path: Path) -> None:
    for shown in (tmp_path, tmp_path / "state" / "jobs"):
        runtime = LocalRuntime(tmp_path / "state", extra_ro_binds=[shown])
        with pytest.raises(ValueError, match="runtime's state"):
            await runtime.open()


async def test_one_runtime_per_state_dir(runtime: LocalRuntime, tmp_path: Path) -> None:
    second = LocalRuntime(tmp_path / "state")
    with pytest.raises(RuntimeError, match="another runtime"):
        await second.open()


async def test_uid_and_gid_are_checked(runtime: LocalRuntime) -> None:
    for ids in ({"uid": 3_200_000}, {"gid": 3_200_000}, {"uid": 0, "gid": 0}):
        with pytest.raises(BadInput):
            await runtime.start(spec("ids", ["true"], **ids))


async def test_a_working_dir_that_exposes_the_state_is_refused(
    runtime: LocalRuntime, tmp_path: Path
) -> None:
    for job_id, directory in [("above", tmp_path), ("state", tmp_path / "state"), ("root", "/")]:
        exited = await run_to_end(runtime, spec(job_id, ["true"], working_dir=str(directory)))
        assert (exited.reason, exited.exit_code) == (JobReason.START_FAILED, 127), job_id
        assert exited.description is not None and "runtime's state" in exited.description


needs_sandbox = pytest.mark.skipif(
    shutil.which("bwrap") is None, reason="bubblewrap is not installed"
)


@needs_sandbox
async def test_both_pythons_run_in_the_sandbox(runtime: LocalRuntime) -> None:
    assert runtime.sandboxed
    code = "import os; print(os.getcwd() == os.environ['HOME'].replace('home', 'work'))"
    for job_id, python_ in [("venv", PY), ("system", "/usr/bin/python3")]:
        exited = await run_to_end(runtime, spec(job_id, [python_, "-c", code]))
        assert exited.reason == JobReason.COMPLETED, exited
        assert [line.text for line in await all_lines(runtime, job_id)] == ["True"]


@needs_sandbox
async def test_a_command_outside_the_sandbox_is_not_found(runtime: LocalRuntime) -> None:
    assert runtime.sandboxed
    outside = runtime.job_dir("x").parent.parent / "spawner.log"  # exists, not shown
    exited = await run_to_end(runtime, spec("outside", [str(outside)]))
    assert (exited.reason, exited.exit_code) == (JobReason.START_FAILED, 127)
    assert exited.description is not None and "sandbox" in exited.description
    not_executable = await run_to_end(runtime, spec("noexec", ["/etc/passwd"]))
    assert (not_executable.reason, not_executable.exit_code) == (JobReason.START_FAILED, 126)


@needs_sandbox
async def test_a_stop_right_after_the_start_reaches_the_command(runtime: LocalRuntime) -> None:
    for i in range(5):
        async with runtime.watch() as watch:
            await runtime.start(spec(f"quick-{i}", ["sleep", "30"]))
            await runtime.stop(f"quick-{i}", grace_s=5)
            exited = await until(watch, f"quick-{i}", WorkloadPhase.EXITED, within=4)
        assert exited.reason == JobReason.USER_REQUESTED


async def test_only_a_jobs_supervisor_is_heard_about_it(runtime: LocalRuntime) -> None:
    """A datagram from another process (here: this one, with the runtime's own uid) about a
    running job is dropped; the supervisor's datagrams still count."""
    await start_running(runtime, spec("heard", ["sleep", "30"]))
    heard: list[str] = []
    wake = runtime._wake_followers

    def spy(job_id: str | None) -> None:
        heard.append(str(job_id))
        wake(job_id)

    runtime._wake_followers = spy  # type: ignore[method-assign]
    state_dir = runtime.job_dir("heard").parent.parent
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as forger:
        forger.sendto(b"heard log", str(state_dir / "notify.sock"))
    await asyncio.sleep(0.2)
    assert heard == []
    async with runtime.watch() as watch:
        await runtime.stop("heard", grace_s=1)
        await until(watch, "heard", WorkloadPhase.EXITED)
    assert "heard" in heard  # its supervisor's "exited"
