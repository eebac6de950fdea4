"""What running jobs use (`glia.telemetry`): live samples, and each job's history."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any

from glia.telemetry import TelemetryHistory, TelemetrySample
from sdk import documents
from sdk.resource import Resource


class TelemetryResource(Resource):
    async def follow(self, ref: str) -> AsyncGenerator[TelemetrySample, None]:
        """The job's samples, about one a second while it runs; ends when it ends (at once
        for a job that is not running)."""
        job_id = await self._client.jobs.resolve(ref)
        async for data in self._client.subscribe(documents.JOB_TELEMETRY, {"id": job_id}):
            yield TelemetrySample.model_validate(data["jobTelemetry"])

    async def history(
        self,
        ref: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        step_s: int | None = None,
    ) -> TelemetryHistory:
        """The job's points from ``since`` (its submission) to ``until`` (now), ``step_s``
        seconds each or longer (at most 1,000 points)."""
        variables: dict[str, Any] = {"id": await self._client.jobs.resolve(ref), "step": step_s}
        variables["since"] = since.isoformat() if since else None
        variables["until"] = until.isoformat() if until else None
        data = await self._client.execute(documents.JOB_TELEMETRY_HISTORY, variables)
        return TelemetryHistory.model_validate(data["jobTelemetryHistory"])
