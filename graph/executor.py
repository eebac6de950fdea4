"""One GraphQL execution of a subscription event for all the subscribers that sent the same
document.

A job's followers at its live tail are all handed the same batch of lines, and most send the
same document (`glia logs -f`, the web UI's job page). Completing the event's selection
costs far more than sending it, so the first subscriber's result is kept for a moment and the
others get it as it is: `SharingExecutor` keys it by the event's `SharedEvent.share_key`,
the document and the variables.

That is only correct for an event whose result depends on nothing but these: its type's
fields must not read the context (the caller, their permissions, a DataLoader) or anything
that changes. Who may follow what is checked when the subscription starts and while it lasts
(`Context.stream`), never by the event's fields.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

from graphql import ExecutionResult, GraphQLSchema, OperationDefinitionNode
from graphql.language import OperationType
from graphql.pyutils import AwaitableOrValue
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

# Followers of one tail execute its batch one after another (they are woken in turn), so
# a few entries are enough, and they bound what is held: a result is at most one chunk's
# lines (1,000 lines or 64 KiB of text) as GraphQL output, ~12 MB for all of them at most.
RESULTS_KEPT = 32


class SharedEvent:
    """A subscription event whose GraphQL result depends only on `share_key` (and the
    document and variables of the subscription): see this module's docstring."""

    __slots__ = ()

    def share_key(self) -> Hashable:
        raise NotImplementedError


_Key = tuple[Hashable, int, int, Hashable]
# The schema and operation stay referenced by their entry, so that their ids in its key
# cannot be reused by another while the entry lives.
_results: OrderedDict[_Key, tuple[GraphQLSchema, OperationDefinitionNode, ExecutionResult]] = (
    OrderedDict()
)


class SharingExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor, executing a `SharedEvent` once for every subscriber that sent
    the same document and variables."""

    def execute_operation(self, serially: bool | None = None) -> AwaitableOrValue[Any]:
        event = self.root_value
        if (
            serially is not False  # a subscription event is executed with serially=False
            or not isinstance(event, SharedEvent)
            or self.operation.operation is not OperationType.SUBSCRIPTION
        ):
            return super().execute_operation(serially)
        key = self._key(event)
        if key is None:
            return super().execute_operation(serially)
        kept = _results.get(key)
        if kept is not None:
            _results.move_to_end(key)
            return kept[2]
        result = super().execute_operation(serially)
        # Only a complete answer is shared: one with errors (or still to be awaited, which
        # an event's own fields never are) is left to each subscriber's own execution.
        if isinstance(result, ExecutionResult) and not result.errors:
            _results[key] = (self.schema, self.operation, result)
            if len(_results) > RESULTS_KEPT:
                _results.popitem(last=False)
        return result

    def _key(self, event: SharedEvent) -> _Key | None:
        try:
            variables = tuple(sorted(self.variable_values.coerced.items()))
            key = (event.share_key(), id(self.schema), id(self.operation), variables)
            hash(key)
        except TypeError:  # a variable's value that cannot be a key (a list, an input object):
            return None  # executed per subscriber, as without this executor
        return key
