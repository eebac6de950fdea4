"""Health, metrics, request ids and GraphiQL."""

from __future__ import annotations

from pathlib import Path

import pytest
import structlog

from cluster_gateway.runtimes.fake import FakeRuntime
from control_plane.store.database import Database
from glia.jobs import JobReason
from tests.factories import make_settings, running_api
from tests.polling import eventually


async def test_health_metrics_request_id_and_graphiql(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    async with running_api(make_settings(tmp_path), runtime) as api:
        health = await api.http.get("/healthz")
        assert health.status_code == 200
        assert health.json() == {"status": "ok"}
        assert len(health.headers["x-request-id"]) == 32
        echoed = await api.http.get("/healthz", headers={"X-Request-ID": "trace-me-1"})
        assert echoed.headers["x-request-id"] == "trace-me-1"

        token = await api.user("alice")
        job = (
            await api.gql(
                'mutation Submit { submitJob(input: {command: ["true"]}) { job { id } } }',
                token=token,
            )
        )["submitJob"]["job"]

        async def running() -> bool:
            return (
                job["id"] in runtime.specs
                and (await runtime.states([job["id"]]))[0].phase.value == "running"
            )

        await eventually(running)
        runtime.finish(job["id"], exit_code=0, reason=JobReason.COMPLETED)
        query = "query($id: ID!) { job(id: $id) { status } }"

        async def succeeded() -> bool:
            found = await api.gql(query, {"id": job["id"]}, token=token)
            return bool(found["job"]["status"] == "SUCCEEDED")

        await eventually(succeeded)

        metrics = (await api.http.get("/metrics")).text
        assert 'glia_jobs{status="succeeded"} 1.0' in metrics
        assert 'glia_jobs{status="running"} 0.0' in metrics
        assert "glia_job_start_latency_seconds_count 1.0" in metrics
        assert (
            'glia_graphql_operations_total{operation="Submit",outcome="ok",type="mutation"} 1.0'
            in metrics
        )

        page = await api.http.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert "graphiql" in page.text.lower()


async def test_health_reports_a_dead_database(tmp_path: Path) -> None:
    async with running_api(make_settings(tmp_path), FakeRuntime()) as api:
        working = api.platform.db
        # A database the server cannot reach: a file under a path that does not exist.
        api.platform.db = Database(f"sqlite+aiosqlite:///{tmp_path / 'gone' / 'glia.db'}")
        try:
            response = await api.http.get("/healthz")
        finally:
            await api.platform.db.dispose()
            api.platform.db = working
        assert response.status_code == 503
        assert response.json()["database"] == "down"
        assert (await api.http.get("/healthz")).status_code == 200


async def test_unexpected_errors_are_masked_and_logged_expected_ones_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_api(make_settings(tmp_path), FakeRuntime()) as api:
        token = await api.user("alice")

        async def broken(*_args: object) -> None:
            raise RuntimeError("database password is hunter2")

        monkeypatch.setattr(api.platform.clusters, "list", broken)
        with structlog.testing.capture_logs() as logs:
            body = await api.raw("{ clusters { name } }", token=token)
            expected = await api.raw('{ job(id: "job-none") { id } }', token=token)
        error = body["errors"][0]
        assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
        assert "hunter2" not in error["message"]
        assert expected["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        logged = [entry for entry in logs if entry["log_level"] == "error"]
        assert [entry["event"] for entry in logged] == ["unexpected error in a GraphQL operation"]
        assert logged[0]["request_id"] == error["extensions"]["requestId"]
