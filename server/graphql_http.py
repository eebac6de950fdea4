"""`/graphql` over HTTP and WebSocket: Strawberry's view, with requests refused the way the
GraphQL over HTTP spec says.

A request that cannot run at all (a body that is not JSON, no query, a mutation over GET, an
unknown operation name) is answered with a JSON ``{"errors": [...]}`` and a 4xx status, never
a plain-text reason. The answer to a request whose document does not parse or validate, or
whose variables do not fit, has no ``data`` key (nothing ran) and, for ``application/json``,
status 200 as the spec asks.
"""

from __future__ import annotations

from typing import Any

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult

from control_plane.settings import Settings
from graph.context import Context
from graph.extensions import (
    BAD_REQUEST,
    OPERATION_RESOLUTION_FAILURE,
    code_invalid_query,
    is_request_error,
)
from graph.schema import create_schema
from graph.streams import StreamLimits
from server import graphiql
from server.requests import Running, request_id
from server.websockets import GliaTransportWSHandler


class GliaGraphQL(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = GliaTransportWSHandler

    def __init__(self, running: Running, settings: Settings) -> None:
        super().__init__(
            create_schema(
                max_depth=settings.max_query_depth,
                max_tokens=settings.max_query_tokens,
                max_cost=settings.max_query_cost,
            ),
            graphql_ide="graphiql",
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            max_subscriptions_per_connection=settings.max_subscriptions_per_connection,
        )
        self._running = running
        self._limits = StreamLimits(
            connections_per_user=settings.max_connections_per_user,
            subscriptions_per_user=settings.max_subscriptions_per_user,
        )

    async def run(self, request: Any, context: Any = None, root_value: Any = None) -> Any:
        try:
            if context is None:
                return await super().run(request)
            return await super().run(request, context, root_value)
        except HTTPException as refused:
            return refused_request(refused)

    async def render_graphql_ide(self, request: Request) -> Response:
        # GraphiQL from this server's own files (server/graphiql.py), not from a CDN.
        return HTMLResponse(graphiql.page_html())

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        # A document that does not parse, or is over the token limit, fails before the
        # extensions see a result: its errors get their code here.
        errors = result.errors or []
        code_invalid_query(errors)
        processed = await super().process_result(request, result)
        if result.data is None and errors and all(is_request_error(e) for e in errors):
            processed.pop("data", None)
        return processed

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket | None = None
    ) -> Context:
        return Context(
            platform=self._running.get(),
            request=request,
            response=response,
            request_id=request_id(request.scope),
            limits=self._limits,
        )


def refused_request(refused: HTTPException) -> JSONResponse:
    """A request Strawberry refuses before running it, answered in the API's error shape."""
    cause = refused.__cause__
    status, code, headers = refused.status_code, BAD_REQUEST, {}
    if isinstance(cause, CannotGetOperationTypeError):
        code = OPERATION_RESOLUTION_FAILURE
    elif isinstance(cause, InvalidOperationTypeError) or status == 405:
        # A mutation over GET, or a method other than GET and POST.
        status, headers = 405, {"Allow": "GET, POST"}
    message = refused.reason
    if isinstance(cause, InvalidOperationTypeError):
        message = f"{message}: send them with POST"
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return JSONResponse(body, status_code=status, headers=headers)
