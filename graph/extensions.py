"""Schema extensions: the per-operation scope, error codes and masking, metrics."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import structlog
from graphql import GraphQLError, GraphQLSyntaxError
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from glia.errors import BadInput, GliaError, TooManyRequests
from graph.context import Context, operation_scope

logger = structlog.get_logger("glia.graphql")

# The codes of errors about a request as a whole (the document, its variables, which
# operation to run), raised by graphql-core before anything is resolved: no `data` then.
PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
OPERATION_RESOLUTION_FAILURE = "OPERATION_RESOLUTION_FAILURE"
BAD_REQUEST = "BAD_REQUEST"
# How graphql-core words an error in a variable's value (its coercion), as against an error in
# how the document declares or uses a variable (validation).
_VARIABLE_VALUE_ERRORS = (
    " has invalid value",
    " got invalid value ",
    " was not provided",
    " must not be null",
)
REQUEST_ERROR_CODES = frozenset(
    {PARSE_FAILED, VALIDATION_FAILED, OPERATION_RESOLUTION_FAILURE, BAD_REQUEST, BadInput.code}
)


class OperationScope(SchemaExtension):
    """One `Operation` (lazy DB session, DataLoaders, identity) per operation, closed when it
    ends; counts and times the operation."""

    async def on_operation(self) -> AsyncIterator[None]:
        context: Context = self.execution_context.context
        started = time.perf_counter()

        def streaming() -> bool:
            return self.execution_context.operation_type is OperationType.SUBSCRIPTION

        async with operation_scope(context.platform, streaming=streaming):
            yield
        result = self.execution_context.result
        operation_type = self.execution_context.operation_type.value
        failed = bool(getattr(result, "errors", None))
        metrics = context.platform.metrics
        metrics.graphql_operations.labels(
            operation=metrics.operation_label(self.execution_context.operation_name),
            type=operation_type,
            outcome="error" if failed else "ok",
        ).inc()
        if operation_type != "subscription":
            metrics.graphql_duration.labels(type=operation_type).observe(
                time.perf_counter() - started
            )
        _rate_limited_status(context, getattr(result, "errors", None) or [])


class SubscriptionsOverWebSockets(SchemaExtension):
    """A subscription sent over plain HTTP gets a clear BAD_REQUEST, not a resolver run as a
    query (which fails with an internal error)."""

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context
        if context.operation_type is OperationType.SUBSCRIPTION and not isinstance(
            context.context.request, WebSocket
        ):
            error = GraphQLError(
                "subscriptions run over a WebSocket (graphql-transport-ws) at /graphql, "
                "not over HTTP",
                extensions={"code": BAD_REQUEST},
            )
            context.result = ExecutionResult(data=None, errors=[error])
        yield


def _rate_limited_status(context: Context, errors: list[GraphQLError]) -> None:
    """An HTTP request refused for asking too often is answered 429 with Retry-After, as
    clients and proxies expect, whatever GraphQL says in its body."""
    for error in errors:
        extensions = error.extensions or {}
        if extensions.get("code") == TooManyRequests.code and isinstance(
            context.response, Response
        ):
            context.response.status_code = 429
            retry_after = extensions.get("retryAfterSeconds")
            if isinstance(retry_after, int):
                context.response.headers["Retry-After"] = str(retry_after)
            return


def _is_expected(error: GraphQLError) -> bool:
    # graphql-core's own errors about the request (a variable it cannot coerce) wrap another
    # GraphQLError: the client's mistake too.
    return error.original_error is None or isinstance(
        error.original_error, GliaError | GraphQLError
    )


def log_unexpected_errors(errors: list[GraphQLError], request_id: str | None) -> None:
    """Log what went wrong on the server's side; a client's mistake is the client's news."""
    for error in errors:
        if not _is_expected(error):
            logger.error(
                "unexpected error in a GraphQL operation",
                request_id=request_id,
                path=error.path,
                exc_info=error.original_error,
            )


class ErrorCodes(MaskErrors):
    """Expected errors keep their message and code; anything else is masked (and logged by
    the schema's `process_errors`, which sees errors before masking)."""

    def __init__(self) -> None:
        super().__init__(
            should_mask_error=lambda e: not _is_expected(e), error_message="Internal server error"
        )

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        context: Context = self.execution_context.context
        masked = super().anonymise_error(error)
        masked.extensions = {"code": "INTERNAL_SERVER_ERROR", "requestId": context.request_id}
        return masked

    def _process_result(self, result: object) -> None:
        # Strawberry's own check is an isinstance of a runtime protocol (~7 µs), made for
        # each result a subscription sends: most have no errors.
        if getattr(result, "errors", None):
            super()._process_result(result)

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        processed = super()._process_errors(errors)
        code_invalid_query(processed)
        return processed


def code_invalid_query(errors: list[GraphQLError]) -> None:
    """Give a code to the errors graphql-core raised about the request itself: a document that
    does not parse (or is over the token limit), one that does not validate (or is over the
    depth and alias limits), variables of the wrong type, an operation name not in it."""
    for error in errors:
        if not error.extensions or "code" not in error.extensions:
            error.extensions = {**(error.extensions or {}), "code": _request_error_code(error)}


def _request_error_code(error: GraphQLError) -> str:
    if isinstance(error, GraphQLSyntaxError) or isinstance(
        error.original_error, GraphQLSyntaxError
    ):
        return PARSE_FAILED
    message = error.message
    if message.startswith("Variable '$") and any(
        words in message for words in _VARIABLE_VALUE_ERRORS
    ):
        return BadInput.code  # a value the caller sent, as for a bad argument
    if message.startswith(("Unknown operation named", "Must provide operation name")):
        return OPERATION_RESOLUTION_FAILURE
    if message.startswith("Syntax Error") or "more than" in message and "tokens" in message:
        return PARSE_FAILED
    return VALIDATION_FAILED


def is_request_error(error: GraphQLError) -> bool:
    """An error about the request as a whole: nothing ran, so the answer has no `data`."""
    return error.path is None and (error.extensions or {}).get("code") in REQUEST_ERROR_CODES
