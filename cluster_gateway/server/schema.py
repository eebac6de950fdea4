"""The cluster-scoped subgraph: the `Gateway`'s operations as GraphQL.

What is metadata goes here (starts, stops, states, the watch, log lines and telemetry as
subscriptions); what is bytes goes to the byte routes (``routes.py``). Models travel as their
kernel JSON form (``cluster_gateway/wire.py``) in ``JSON`` scalars: the kernel models are the
one definition of their fields, and this schema's only client is `RemoteGateway`, which reads
them back with the same models. Print it with
``python -m cluster_gateway.server.schema > cluster_gateway/server/schema.graphql``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import strawberry
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.extensions import MaskErrors
from strawberry.scalars import JSON
from strawberry.types import ExecutionContext, Info

from cluster_gateway.gateway import Gateway
from cluster_gateway.wire import (
    batch_to_wire,
    spec_from_wire,
    state_to_wire,
    tick_to_wire,
)
from glia.errors import GliaError

logger = logging.getLogger(__name__)


@dataclass
class GatewayContext:
    gateway: Gateway
    request: Request | WebSocket | None = None
    response: Response | WebSocket | None = None
    # The graphql-transport-ws ``connection_init`` payload (Strawberry sets it).
    connection_params: dict[str, Any] | None = field(default=None)


def _gateway(info: Info[GatewayContext, None]) -> Gateway:
    return info.context.gateway


@strawberry.type
class Query:
    @strawberry.field(description="What the cluster has, and what its workloads leave free.")
    async def capacity(self, info: Info[GatewayContext, None]) -> JSON:
        return JSON((await _gateway(info).capacity()).model_dump(mode="json", by_alias=True))

    @strawberry.field(description="How the cluster keeps jobs apart.")
    async def isolation(self, info: Info[GatewayContext, None]) -> JSON:
        return JSON((await _gateway(info).isolation()).model_dump(mode="json", by_alias=True))

    @strawberry.field(description="Each job's state, MISSING for one the cluster does not know.")
    async def states(self, info: Info[GatewayContext, None], job_ids: list[str]) -> list[JSON]:
        return [JSON(state_to_wire(s)) for s in await _gateway(info).states(job_ids)]

    @strawberry.field(description="The workloads that are pending or running.")
    async def active_workloads(self, info: Info[GatewayContext, None]) -> list[JSON]:
        return [JSON(state_to_wire(s)) for s in await _gateway(info).active_workloads()]

    @strawberry.field(
        description="The size of a job's output so far, in bytes (a Float: Int is 32 bits)."
    )
    async def log_size(self, info: Info[GatewayContext, None], job_id: str) -> float:
        return float(await _gateway(info).log_size(job_id))


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Start a workload (idempotent per job id): its state.")
    async def start(self, info: Info[GatewayContext, None], spec: JSON) -> JSON:
        return JSON(state_to_wire(await _gateway(info).start(spec_from_wire(spec))))

    @strawberry.mutation(description="Ask a workload to end, forcing it after graceSeconds.")
    async def stop(
        self, info: Info[GatewayContext, None], job_id: str, grace_seconds: float
    ) -> bool:
        await _gateway(info).stop(job_id, grace_s=grace_seconds)
        return True

    @strawberry.mutation(description="A new life span from the workload's start (null: none).")
    async def set_life_span(
        self, info: Info[GatewayContext, None], job_id: str, life_span_seconds: float | None
    ) -> bool:
        await _gateway(info).set_life_span(job_id, life_span_seconds)
        return True

    @strawberry.mutation(
        description="Set the size of a tty workload's terminal (its processes get SIGWINCH)."
    )
    async def resize_terminal(
        self, info: Info[GatewayContext, None], job_id: str, rows: int, cols: int
    ) -> bool:
        await _gateway(info).resize_terminal(job_id, rows, cols)
        return True

    @strawberry.mutation(description="Drop an ended workload, its log included.")
    async def forget(self, info: Info[GatewayContext, None], job_id: str) -> bool:
        await _gateway(info).forget(job_id)
        return True


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="First {cursor} once the watch is open (every later change is seen), "
        "then each change as {cursor, state}; WATCH_EXPIRED when it cannot resume from after."
    )
    async def watch(
        self, info: Info[GatewayContext, None], after: str | None = None
    ) -> AsyncGenerator[JSON, None]:
        async with _gateway(info).watch(after=after) as watch:
            yield JSON({"cursor": watch.cursor})
            async for event in watch:
                yield JSON({"cursor": event.cursor, "state": state_to_wire(event.state)})

    @strawberry.subscription(
        description="A job's output as LogBatch objects, then {end: true} once it has all "
        "been sent (a stream cut before that was cut, not ended): from the start, from since, "
        "from offset (a batch's last end: no line lost or repeated) or from the last tail "
        "lines. Offsets are Floats (bytes; Int is 32 bits)."
    )
    async def logs(
        self,
        info: Info[GatewayContext, None],
        job_id: str,
        since: datetime | None = None,
        offset: float | None = None,
        tail: int | None = None,
        follow: bool = False,
    ) -> AsyncGenerator[JSON, None]:
        start = None if offset is None else int(offset)
        batches = _gateway(info).logs(job_id, since=since, offset=start, tail=tail, follow=follow)
        async for batch in batches:
            yield JSON(batch_to_wire(batch))
        yield JSON({"end": True})

    @strawberry.subscription(description="Ticks of TelemetrySample objects.")
    async def telemetry(
        self, info: Info[GatewayContext, None], job_id: str | None = None
    ) -> AsyncGenerator[JSON, None]:
        ticks = _gateway(info).telemetry(job_id)
        try:
            async for tick in ticks:
                yield JSON(tick_to_wire(tick))
        finally:
            await ticks.aclose()


def _unexpected(error: GraphQLError) -> bool:
    return not isinstance(error.original_error, GliaError)


class GatewaySchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Expected failures (NotFound, Conflict, WatchExpired…) are answers, not incidents.
        unexpected = [error for error in errors if _unexpected(error)]
        if unexpected:
            super().process_errors(unexpected, execution_context)


def create_schema() -> strawberry.Schema:
    return GatewaySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[lambda: MaskErrors(should_mask_error=_unexpected)],
    )


if __name__ == "__main__":
    print(create_schema().as_str())
