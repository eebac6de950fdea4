"""One control plane (`glia up`) federating clusters whose gateways are processes of their own
(`glia gateway serve`, each with its own data dir and port), driven through the real CLI:
jobs, files and buckets on each cluster, chosen with `--cluster`; a gateway killed or frozen
loses no job; a gateway that does not hold the registered secret, and a request that goes
around the control plane, are refused."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Cli, GatewayProcess, Server
from tests.factories import kill_leftover_jobs
from tests.polling import eventually

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    # Heartbeats every second, so that a gateway that went away is noticed within seconds.
    server = Server(
        root=tmp_path,
        extra_env={"GLIA_HEARTBEAT_INTERVAL_S": "1", "GLIA_HEARTBEAT_TIMEOUT_S": "2"},
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
        kill_leftover_jobs(tmp_path / "data")


@pytest.fixture
def gateways(tmp_path: Path) -> Iterator[list[GatewayProcess]]:
    started: list[GatewayProcess] = []
    yield started
    for gateway in started:
        gateway.stop()
        kill_leftover_jobs(gateway.data_dir)


def add_remote_cluster(
    cli: Cli, gateways: list[GatewayProcess], name: str, root: Path
) -> GatewayProcess:
    """Register cluster ``name`` for a gateway not started yet, then start it with the secret
    the registration printed (once); wait until the control plane has it deployed."""
    gateway = GatewayProcess(name, "", root / f"gateway-{name}")
    added = cli.json(
        "admin", "add-cluster", name, "--gateway", gateway.url, "--preset", f"{name}:0.5:256M"
    )
    secret = added["gatewaySecret"]
    assert secret and len(secret) >= 32
    assert secret not in json.dumps(cli.json("admin", "ls-clusters"))  # shown once
    gateway.secret = secret
    gateway.start()
    gateways.append(gateway)
    wait_cluster(cli, name, "DEPLOYED")
    return gateway


def wait_cluster(cli: Cli, name: str, status: str, timeout: float = 30) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        clusters = await asyncio.to_thread(cli.json, "admin", "ls-clusters")
        found = next(c for c in clusters if c["name"] == name)
        return found if found["status"] == status else None

    result: dict[str, Any] = asyncio.run(eventually(reached, within=timeout))
    return result


def wait_job(cli: Cli, job: str, check: Any, timeout: float = 30) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        found: dict[str, Any] = await asyncio.to_thread(cli.json, "status", job)
        return found if check(found) else None

    result: dict[str, Any] = asyncio.run(eventually(reached, within=timeout))
    return result


def test_jobs_and_files_live_on_the_cluster_named(
    server: Server, cli: Cli, gateways: list[GatewayProcess], tmp_path: Path
) -> None:
    east = add_remote_cluster(cli, gateways, "east", tmp_path)
    west = add_remote_cluster(cli, gateways, "west", tmp_path)
    listed = {c["name"]: c for c in cli.json("admin", "ls-clusters")}
    assert listed["east"]["health"]["capacity"]["cpu"] > 0

    # A job on each, its output followed through the control plane.
    for name in ("east", "west"):
        out = cli.ok("run", "--cluster", name, "--", "sh", "-c", f"echo hello from {name}")
        assert out.strip() == f"hello from {name}"
    jobs = cli.json("ps", "-a")
    assert {job["clusterName"] for job in jobs} == {"east", "west"}
    # Each job's workload is in its own cluster's gateway, none in the control plane's.
    for gateway in (east, west):
        assert list(gateway.data_dir.rglob("output.0.log")), gateway.name
    assert not list((server.root / "data").rglob("output.0.log"))

    # Files: uploaded to east, kept by east's gateway, read back through the control plane.
    local = tmp_path / "weights.bin"
    local.write_bytes(b"\x00\x01" * 300_000)
    cli.ok("storage", "cp", "--cluster", "east", str(local), "storage:models/weights.bin")
    assert "weights.bin" in cli.ok("storage", "ls", "--cluster", "east", "storage:models")
    kept = list(east.data_dir.rglob("weights.bin"))
    assert len(kept) == 1 and kept[0].read_bytes() == local.read_bytes()
    back = tmp_path / "back.bin"
    cli.ok("storage", "cp", "--cluster", "east", "storage:models/weights.bin", str(back))
    assert back.read_bytes() == local.read_bytes()
    missing = cli("storage", "ls", "--cluster", "west", "storage:models")
    assert missing.returncode != 0  # west has its own files

    # Buckets: made on east, their objects kept by east's gateway, none at the control plane.
    bucket = cli.json("blob", "mkbucket", "--cluster", "east", "-o", "json", "checkpoints")
    assert bucket["uri"].startswith("blob://east/")
    cli.ok("blob", "cp", str(local), f"{bucket['uri']}/run-1/weights.bin")
    objects = [p for p in (east.data_dir / "blobs").rglob("*") if p.is_file()]
    assert [o.read_bytes() for o in objects] == [local.read_bytes()]
    assert not list((server.root / "data").rglob("f_weights.bin"))
    listed_objects = cli.json("blob", "ls", "-o", "json", f"{bucket['uri']}/run-1/")
    assert [o["key"] for o in listed_objects["objects"]] == ["run-1/weights.bin"]
    blob_back = tmp_path / "blob-back.bin"
    cli.ok("blob", "cp", f"{bucket['uri']}/run-1/weights.bin", str(blob_back))
    assert blob_back.read_bytes() == local.read_bytes()
    assert "checkpoints" not in cli.ok("blob", "lsbucket", "--cluster", "west")
    cli.ok("blob", "rm", f"{bucket['uri']}/run-1/weights.bin")
    cli.ok("blob", "rmbucket", "-y", bucket["uri"])
    assert not [p for p in (east.data_dir / "blobs").rglob("*") if p.is_file()]

    # A job on east sees its cluster's storage.
    volume = "storage:models:/models:ro"
    seen = cli.ok("run", "--cluster", "east", "-v", volume, "--", "wc", "-c", "/models/weights.bin")
    assert seen.split()[0] == "600000"

    # Nobody reaches a gateway around the control plane: no claim, or a user's own token.
    saved = tomllib.loads(cli.config.read_text())
    token = saved["contexts"][saved["current-context"]]["token"]
    for headers in ({}, {"Authorization": f"Bearer {token}"}):
        graphql = httpx.post(f"{east.url}/graphql", json={"query": "{ capacity }"}, headers=headers)
        assert graphql.status_code == 401
        files = httpx.post(f"{east.url}/storage/list", json={}, headers=headers)
        assert files.status_code == 401
        assert "weights" not in files.text
        buckets = httpx.post(f"{east.url}/blobs/bucket-exists", json={}, headers=headers)
        assert buckets.status_code == 401


def test_a_job_outlives_its_gateway_killed_and_frozen(
    server: Server, cli: Cli, gateways: list[GatewayProcess], tmp_path: Path
) -> None:
    east = add_remote_cluster(cli, gateways, "east", tmp_path)
    script = "for i in $(seq 1 120); do echo line $i; sleep 0.25; done"
    job = cli.ok("run", "--cluster", "east", "--detach", "--", "sh", "-c", script).strip()
    cli.wait_status(job, "running")

    # kill -9: the job shows its last known status, with why, never a false failure.
    east.signal(signal.SIGKILL)
    assert east.process is not None
    east.process.wait()
    away = wait_job(cli, job, lambda j: j["reason"] == "GATEWAY_UNREACHABLE")
    assert away["status"].lower() == "running"
    wait_cluster(cli, "east", "FAILED")
    refused = cli("run", "--cluster", "east", "--detach", "--", "true")
    assert refused.returncode != 0 and "east" in refused.stderr
    time.sleep(2)  # the job prints on while nobody can ask it
    east.start()
    wait_cluster(cli, "east", "DEPLOYED")
    back = wait_job(cli, job, lambda j: j["reason"] != "GATEWAY_UNREACHABLE")
    assert back["status"].lower() == "running"

    # Frozen for 10 s (SIGSTOP): the same, then it settles by itself.
    east.signal(signal.SIGSTOP)
    try:
        frozen = wait_job(cli, job, lambda j: j["reason"] == "GATEWAY_UNREACHABLE", timeout=9)
        assert frozen["status"].lower() == "running"
        time.sleep(max(0.0, 10 - 2))
    finally:
        east.signal(signal.SIGCONT)
    done = wait_job(cli, job, lambda j: j["status"].lower() == "succeeded", timeout=60)
    assert done["exitCode"] == 0
    assert cli.ok("logs", job).splitlines() == [f"line {i}" for i in range(1, 121)]


def test_a_gateway_without_the_registered_secret_is_refused(
    server: Server, cli: Cli, gateways: list[GatewayProcess], tmp_path: Path
) -> None:
    forged = GatewayProcess("lab", "a-secret-the-control-plane-never-gave-out", tmp_path / "g")
    added = cli.json("admin", "add-cluster", "lab", "--gateway", forged.url)
    assert added["gatewaySecret"] != forged.secret
    forged.start()
    gateways.append(forged)
    failed = wait_cluster(cli, "lab", "FAILED")
    assert failed["statusReason"]
    assert forged.secret not in json.dumps(failed)
    refused = cli("run", "--cluster", "lab", "--", "true")
    assert refused.returncode != 0
    assert not list(forged.data_dir.rglob("spec.json"))  # nothing ran there
