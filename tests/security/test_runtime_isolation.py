"""Attacks of a job on the host, the platform and other jobs, against a real LocalRuntime.

Each test is something a job could do under the foundation's runtime (it ran as the server's
OS user, with the server's HOME): read the platform's secrets or another user's output and
spec, rewrite another job's records, forge the runtime's notifications, exhaust the host's
processes or fill its disk. Run as root with bubblewrap, as CI runs them: each job runs under
a uid of its own, in its sandbox.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import stat
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import pytest

from cluster_gateway.gateway import JobIsolation, WorkloadPhase, WorkloadSpec, WorkloadState
from cluster_gateway.runtimes.local import LocalRuntime
from glia.clusters import Resources
from glia.jobs import JobReason
from glia.monitoring import LogStream
from tests.polling import eventually

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("bwrap") is None,
    reason="needs root and bubblewrap, as CI runs",
)

PATH = os.environ.get("PATH", "/usr/bin:/bin")
WITHIN = 10.0
# Two Glia users' uids, as the control plane allocates them: no user of this host has them.
ALICE = 3_300_001
BOB = 3_300_002
SECRET = "s3cr3t-signing-key-value"
TOKEN = "admin-cli-token-value"


@dataclass
class Host:
    """A server's files as ``glia up`` lays them out: the data dir (0700) with the signing
    key, the database and the runtime's state, and the admin's HOME with the CLI's config."""

    data: Path
    home: Path
    state: Path

    def spec(
        self, job_id: str, script: str, uid: int, *, gid: int | None = None, **fields: Any
    ) -> WorkloadSpec:
        env = {"PATH": PATH, "HOME": str(self.home), **fields.pop("env", {})}
        return WorkloadSpec(
            job_id=job_id,
            command=("sh", "-c", script),
            resources=fields.pop("resources", Resources(cpu=1, memory_mb=256)),
            env=env,  # the server's HOME, as the control plane passes it
            uid=uid,
            gid=uid if gid is None else gid,
            **fields,
        )


@pytest.fixture
def host(tmp_path: Path) -> Host:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "secret.key").write_text(SECRET)
    (data / "glia.db").write_text(f"users: admin {TOKEN}")
    config = tmp_path / "home" / ".config" / "glia" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'token = "{TOKEN}"\n')
    return Host(data=data, home=tmp_path / "home", state=data / "clusters" / "local")


async def stop_all(runtime: LocalRuntime) -> None:
    for state in await runtime.active_workloads():
        await runtime.stop(state.job_id, grace_s=0)

    async def none_active() -> bool:
        return not await runtime.active_workloads()

    await eventually(none_active, within=WITHIN)


@pytest.fixture
async def runtime(host: Host) -> AsyncIterator[LocalRuntime]:
    runtime = LocalRuntime(host.state, default_grace_s=1.0, poll_interval_s=0.2)
    await runtime.open()
    try:
        yield runtime
        await stop_all(runtime)
    finally:
        await runtime.close()


async def run_to_end(runtime: LocalRuntime, spec: WorkloadSpec) -> WorkloadState:
    async with runtime.watch() as watch:
        await runtime.start(spec)
        async with asyncio.timeout(WITHIN):
            async for event in watch:
                if event.state.job_id == spec.job_id and event.state.phase == WorkloadPhase.EXITED:
                    return event.state
    raise AssertionError("the watch ended")


async def output(runtime: LocalRuntime, job_id: str) -> list[str]:
    async with asyncio.timeout(WITHIN):
        return [line.text async for batch in runtime.logs(job_id) for line in batch.lines()]


async def start_running(runtime: LocalRuntime, spec: WorkloadSpec, *, printed: int = 1) -> None:
    """Start ``spec`` and wait until it has printed ``printed`` bytes."""
    await runtime.start(spec)

    async def ready() -> bool:
        return await runtime.log_size(spec.job_id) >= printed

    await eventually(ready, within=WITHIN)


async def phase(runtime: LocalRuntime, job_id: str) -> WorkloadPhase:
    (state,) = await runtime.states([job_id])
    return state.phase


def python(code: str) -> Sequence[str]:
    return (sys.executable, "-c", code)


def processes_of(uid: int) -> list[int]:
    found = []
    for process in psutil.process_iter(["uids"]):
        uids = process.info["uids"]
        if uids is not None and uid in (uids.real, uids.effective):
            found.append(process.pid)
    return found


# --- reading what is not the job's ------------------------------------------------------------


async def test_a_job_cannot_read_the_platforms_secrets(runtime: LocalRuntime, host: Host) -> None:
    script = (
        f"cat {host.data}/secret.key {host.data}/glia.db; "
        "cat $HOME/.config/glia/config.toml; "
        f"cat {host.home}/.config/glia/config.toml; "
        f"ls -a {host.data} {host.home} /root; "
        "echo done"
    )
    await run_to_end(runtime, host.spec("snoop", script, ALICE))
    lines = await output(runtime, "snoop")
    text = "\n".join(lines)
    assert SECRET not in text and TOKEN not in text
    assert lines[-1] == "done"
    # The data dir is there only as the (otherwise empty) parent of the job's own dirs.
    assert not {"secret.key", "glia.db", ".config", ".bashrc"} & set(lines)


async def test_a_job_cannot_read_another_jobs_output_or_spec(
    runtime: LocalRuntime, host: Host
) -> None:
    victim = host.spec(
        "victim", "echo $API_KEY; exec sleep 30", ALICE, env={"API_KEY": "victim-api-key"}
    )
    await start_running(runtime, victim)
    victim_dir = runtime.job_dir("victim")
    script = (
        f"cat {victim_dir}/*.json {victim_dir}/output*; "
        f"ls -a {victim_dir} {host.state}; cat /proc/*/environ; echo done"
    )
    # Another user's job, and another job of the same user.
    for attacker, uid in (("other-user", BOB), ("same-user", ALICE)):
        await run_to_end(runtime, host.spec(attacker, script, uid))
        text = "\n".join(await output(runtime, attacker))
        assert "victim-api-key" not in text and "done" in text, attacker
    assert await output(runtime, "victim") == ["victim-api-key"]


async def test_a_job_cannot_write_another_jobs_records_or_the_state(
    runtime: LocalRuntime, host: Host
) -> None:
    await start_running(runtime, host.spec("victim", "echo alive; exec sleep 30", ALICE))
    victim_dir = runtime.job_dir("victim")
    forged = json.dumps({"exit_code": 0, "reason": "Completed", "finished_at": None})
    script = (
        f"echo '{forged}' > {victim_dir}/exit.json; "
        f"echo '{{}}' > {victim_dir}/spec.json; "
        f'for f in {victim_dir}/output*; do cat /dev/null > "$f"; done; '
        f"rm -rf {victim_dir}; touch {host.state}/planted {host.data}/planted; "
        "echo done"
    )
    for attacker, uid in (("other-user", BOB), ("same-user", ALICE)):
        await run_to_end(runtime, host.spec(attacker, script, uid))
        assert "done" in await output(runtime, attacker)
    await asyncio.sleep(0.5)  # the poll (0.2 s) would have read a forged record by now
    assert await phase(runtime, "victim") == WorkloadPhase.RUNNING
    assert not (victim_dir / "exit.json").exists()
    assert not (host.state / "planted").exists() and not (host.data / "planted").exists()
    assert await output(runtime, "victim") == ["alive"]
    await runtime.stop("victim", grace_s=1)

    async def stopped() -> WorkloadState | None:
        (state,) = await runtime.states(["victim"])
        return state if state.phase == WorkloadPhase.EXITED else None

    assert (await eventually(stopped, within=WITHIN)).reason == JobReason.USER_REQUESTED


async def test_the_state_dir_is_the_runtimes_alone(runtime: LocalRuntime, host: Host) -> None:
    await run_to_end(runtime, host.spec("job", "echo hi >&2; echo out", ALICE))
    for directory, dirs, files in os.walk(host.state):
        for name in dirs:
            info = os.stat(os.path.join(directory, name))
            assert stat.S_IMODE(info.st_mode) == 0o700, (directory, name)
            owner = ALICE if name in ("work", "home") else 0
            assert info.st_uid == owner, (directory, name)
        for name in files:
            info = os.stat(os.path.join(directory, name))
            assert (stat.S_IMODE(info.st_mode), info.st_uid) == (0o600, 0), (directory, name)
    assert stat.S_IMODE(host.state.stat().st_mode) == 0o700


# --- who a job is -----------------------------------------------------------------------------


async def test_a_job_runs_as_its_uid_without_groups_or_capabilities(
    runtime: LocalRuntime, host: Host
) -> None:
    gid = ALICE + 50
    script = (
        "id -u; id -g; id -G; "
        "grep -E '^(CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):' /proc/self/status; "
        "ls /proc | grep -cE '^[0-9]+$'"  # a pid namespace of its own: a handful
    )
    exited = await run_to_end(runtime, host.spec("who", script, ALICE, gid=gid))
    assert exited.reason == JobReason.COMPLETED
    lines = await output(runtime, "who")
    assert lines[:3] == [str(ALICE), str(gid), str(gid)]
    assert lines[3:8] == [
        "CapPrm:\t0000000000000000",
        "CapEff:\t0000000000000000",
        "CapBnd:\t0000000000000000",
        "CapAmb:\t0000000000000000",
        "NoNewPrivs:\t1",
    ]
    assert int(lines[8]) < 10
    # The scratch dir and HOME are the job's, nothing else of the job dir is.
    job_dir = runtime.job_dir("who")
    assert {p.name for p in job_dir.iterdir() if p.stat().st_uid == ALICE} == {"work", "home"}


# --- the runtime's notifications ------------------------------------------------------------------


async def test_a_job_cannot_forge_the_runtimes_notifications(
    runtime: LocalRuntime, host: Host
) -> None:
    await start_running(runtime, host.spec("victim", "echo alive; exec sleep 30", ALICE))
    # The foundation's abstract socket, and the socket file in the state dir.
    key = hashlib.sha1(str(host.state.resolve()).encode()).hexdigest()[:16]
    addresses = [b"\0glia-rt-" + key.encode(), str(host.state / "notify.sock").encode()]
    code = (
        "import socket, sys\n"
        "sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
        f"for address in {addresses!r}:\n"
        "    for event in (b'victim exited', b'victim running', b'forger exited'):\n"
        "        try:\n"
        "            sock.sendto(event, address)\n"
        "            print('sent', address)\n"
        "        except OSError as exc:\n"
        "            print('refused', exc.errno)\n"
    )
    spec = host.spec("forger", "", BOB).model_copy(update={"command": python(code)})
    exited = await run_to_end(runtime, spec)
    assert exited.reason == JobReason.COMPLETED
    lines = await output(runtime, "forger")
    assert len(lines) == 6 and all(line.startswith("refused") for line in lines), lines
    await asyncio.sleep(0.5)
    assert await phase(runtime, "victim") == WorkloadPhase.RUNNING


# --- limits ---------------------------------------------------------------------------------------


def job_cgroup(runtime: LocalRuntime, job_id: str) -> dict[str, Any]:
    spec = json.loads((runtime.job_dir(job_id) / "spec.json").read_text())
    cgroup = spec["cgroup"]
    assert isinstance(cgroup, dict)
    return cgroup


async def test_a_fork_bomb_is_contained_and_the_host_stays_usable(
    runtime: LocalRuntime, host: Host
) -> None:
    if not runtime.cgroups_usable:
        pytest.skip("no writable cgroup controllers (the RLIMIT_NPROC test covers this)")
    limited = Resources(cpu=0.5, memory_mb=256, pids_limit=64)
    # First a harmless job: its cgroup must carry the limit before a bomb is set off.
    await start_running(
        runtime, host.spec("probe", "echo up; exec sleep 30", ALICE, resources=limited)
    )
    pids_dir = job_cgroup(runtime, "probe")["pids"]
    assert pids_dir is not None, "no pids controller"
    assert (Path(pids_dir) / "pids.max").read_text().strip() == "64"
    await runtime.stop("probe", grace_s=0)

    bomb = "echo lit; bomb() { bomb | bomb & }; bomb; exec sleep 60"
    await start_running(runtime, host.spec("bomb", bomb, BOB, resources=limited))
    events = Path(job_cgroup(runtime, "bomb")["pids"]) / "pids.events"

    async def refused() -> bool:  # the controller said no to a fork: the bomb hit the limit
        return any(
            line.split()[0] == "max" and int(line.split()[1]) > 0
            for line in events.read_text().splitlines()
        )

    await eventually(refused, within=WITHIN)
    assert int((events.parent / "pids.current").read_text()) <= 64
    # The host works: this process forks, and another job starts, runs and ends.
    true = await asyncio.create_subprocess_exec("true")
    assert await true.wait() == 0
    after = await run_to_end(runtime, host.spec("after", "echo alive", ALICE))
    assert after.reason == JobReason.COMPLETED
    assert await output(runtime, "after") == ["alive"]

    async with runtime.watch() as watch:
        await runtime.stop("bomb", grace_s=1)
        async with asyncio.timeout(WITHIN):
            async for event in watch:
                if event.state.job_id == "bomb" and event.state.phase == WorkloadPhase.EXITED:
                    end = event.state
                    break
    assert end.reason == JobReason.USER_REQUESTED and end.exit_code in (143, 137)

    async def all_gone() -> bool:
        return not processes_of(BOB)

    await eventually(all_gone, within=WITHIN)


async def test_without_a_pids_controller_rlimit_nproc_limits_a_job(host: Host) -> None:
    runtime = LocalRuntime(host.state, use_cgroups=False, poll_interval_s=0.2)
    await runtime.open()
    try:
        code = (
            "import os, time\n"
            "forked = 0\n"
            "try:\n"
            "    while forked < 100:\n"
            "        if os.fork() == 0:\n"
            "            time.sleep(60)\n"
            "            os._exit(0)\n"
            "        forked += 1\n"
            "    print('forked', forked)\n"
            "except OSError as exc:\n"
            "    print('refused after', forked, exc.errno)\n"
        )
        limited = Resources(cpu=1, memory_mb=256, pids_limit=16)
        spec = host.spec("forks", "", BOB, resources=limited)
        exited = await run_to_end(runtime, spec.model_copy(update={"command": python(code)}))
        assert exited.reason == JobReason.COMPLETED
        [said] = await output(runtime, "forks")
        assert said.startswith("refused after"), said
        assert int(said.split()[2]) < 16

        async def all_gone() -> bool:  # its children ended with it
            return not processes_of(BOB)

        await eventually(all_gone, within=WITHIN)
    finally:
        await stop_all(runtime)
        await runtime.close()


async def test_a_jobs_output_is_capped_on_disk(host: Host) -> None:
    limit = 256 * 1024
    runtime = LocalRuntime(host.state, log_limit_bytes=limit, poll_interval_s=0.2)
    await runtime.open()
    try:
        code = "import sys\nfor i in range(40_000): print(f'{i:09d}' + 'x' * 90)\n"
        spec = host.spec("flood", "", ALICE).model_copy(update={"command": python(code)})
        assert (await run_to_end(runtime, spec)).reason == JobReason.COMPLETED
        job_dir = runtime.job_dir("flood")
        on_disk = sum(p.stat().st_size for p in job_dir.glob("output.*.log"))
        assert on_disk <= limit
        lines = await output(runtime, "flood")
        assert lines[0].startswith("[glia: ") and "older output were dropped" in lines[0]
        assert lines[-1] == f"{39_999:09d}" + "x" * 90
        async with asyncio.timeout(WITHIN):
            first = await anext(aiter(runtime.logs("flood")))
        assert first.streams[0] == LogStream.SYSTEM
        size = await runtime.log_size("flood")
        assert size == len(lines[0]) + 1 + on_disk
    finally:
        await runtime.close()


# --- single-user mode -------------------------------------------------------------------------


async def test_single_user_mode_says_so(host: Host) -> None:
    runtime = LocalRuntime(host.state, sandbox=False, own_uid=False)
    await runtime.open()
    try:
        isolation = await runtime.isolation()
        assert isolation == JobIsolation(own_uid=False, sandbox=False)
        assert not isolation.multi_user
    finally:
        await runtime.close()


async def test_a_sandbox_without_uids_shows_no_directory_of_the_host(host: Host) -> None:
    """Sandboxed as the runtime's own user, a job naming the admin's config directory would
    read it with the platform's rights: it gets its scratch directory or nothing."""
    runtime = LocalRuntime(host.state, own_uid=False)
    await runtime.open()
    try:
        assert await runtime.isolation() == JobIsolation(own_uid=False, sandbox=True)
        config_dir = host.home / ".config" / "glia"
        spec = host.spec("nosy", "cat config.toml", ALICE, working_dir=str(config_dir))
        ended = await run_to_end(runtime, spec.model_copy(update={"uid": None, "gid": None}))
        assert ended.reason is JobReason.START_FAILED
        assert "scratch directory only" in (ended.description or "")
        assert TOKEN not in "\n".join(await output(runtime, "nosy"))
        scratch = host.spec("own", "pwd", ALICE).model_copy(update={"uid": None, "gid": None})
        assert (await run_to_end(runtime, scratch)).reason is JobReason.COMPLETED
    finally:
        await runtime.close()


async def test_shared_memory_is_the_size_of_the_presets(runtime: LocalRuntime, host: Host) -> None:
    """/dev/shm is a tmpfs of the preset's size (its memory's when the preset names none):
    a job cannot fill more of it than that, and /tmp keeps the memory's size."""
    script = (
        "df -k /dev/shm /tmp | tail -n 2 | awk '{print $2}'; "
        "dd if=/dev/zero of=/dev/shm/fill bs=1M count=80 2>/dev/null && echo filled "
        "|| echo refused"
    )
    small = host.spec(
        "shm-small", script, ALICE, resources=Resources(cpu=1, memory_mb=256, shm_mb=64)
    )
    state = await run_to_end(runtime, small)
    shm_kib, tmp_kib, verdict = await output(runtime, "shm-small")
    assert (int(shm_kib), int(tmp_kib)) == (64 * 1024, 256 * 1024), state
    assert verdict == "refused"
    default = host.spec("shm-default", script, ALICE, resources=Resources(cpu=1, memory_mb=256))
    await run_to_end(runtime, default)
    shm_kib, _tmp, verdict = await output(runtime, "shm-default")
    assert int(shm_kib) == 256 * 1024 and verdict == "filled"


async def test_the_loaders_variables_reach_the_job_and_nothing_run_as_root(
    runtime: LocalRuntime, host: Host
) -> None:
    """bwrap and setpriv run as root: LD_PRELOAD and its kind must not reach them (a library
    the job can write would run as root), yet the job's command gets them all."""
    spec = host.spec(
        "loader-env",
        'echo "preload=$LD_PRELOAD path=$LD_LIBRARY_PATH tz=$TZDIR"',
        ALICE,
        env={
            "LD_PRELOAD": "/nonexistent/evil.so",
            "LD_LIBRARY_PATH": "/opt/cuda/lib",
            "TZDIR": "/opt/tz",
        },
    )
    state = await run_to_end(runtime, spec)
    assert state.exit_code == 0, state
    lines = await output(runtime, "loader-env")
    assert "preload=/nonexistent/evil.so path=/opt/cuda/lib tz=/opt/tz" in lines
    # The loader complains once per program that got LD_PRELOAD: the job's shell, only.
    complaints = [line for line in lines if "evil.so" in line and "ld.so" in line]
    assert len(complaints) == 1, lines
