"""Schema extensions: the per-operation scope, error codes and masking, metrics."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import structlog
from graphql import GraphQLError
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.types.graphql import OperationType

from glia.errors import GliaError
from graph.context import Context, operation_scope

logger = structlog.get_logger("glia.graphql")

# Errors graphql-core raises itself (syntax, validation, limits) carry no original error.
_INVALID_QUERY = "BAD_INPUT"


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
            operation=self.execution_context.operation_name or "anonymous",
            type=operation_type,
            outcome="error" if failed else "ok",
        ).inc()
        if operation_type != "subscription":
            metrics.graphql_duration.labels(type=operation_type).observe(
                time.perf_counter() - started
            )


def _is_expected(error: GraphQLError) -> bool:
    return error.original_error is None or isinstance(error.original_error, GliaError)


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

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        processed = super()._process_errors(errors)
        code_invalid_query(processed)
        return processed


def code_invalid_query(errors: list[GraphQLError]) -> None:
    """Errors graphql-core raised about the document itself are the client's: BAD_INPUT."""
    for error in errors:
        if not error.extensions or "code" not in error.extensions:
            error.extensions = {**(error.extensions or {}), "code": _INVALID_QUERY}
