"""The cost of an operation, bounded before it runs: no single request may make the server
resolve more than `max_query_cost` fields.

Each field selected costs 1, times the number of times it is resolved: a field below a list
that takes `first` (a page) counts once per item the page may hold (`first`, or the argument's
default). Aliases repeat the cost, fragments are counted where they are spread. The count
needs the variables (`first: $n`), so it runs when the operation executes, not when its
document is validated (and cached).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    value_from_ast,
)
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from glia.errors import BadInput
from glia.pages import DEFAULT_PAGE_SIZE

PAGE_ARGUMENTS = ("first", "last")


def operation_cost(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
) -> int:
    root = schema.get_root_type(operation.operation)
    if root is None:
        return 0
    return _selection_cost(schema, root, operation.selection_set, fragments, variables, 1, set())


def _selection_cost(
    schema: GraphQLSchema,
    parent: GraphQLObjectType,
    selection_set: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
    times: int,
    spreading: set[str],
) -> int:
    if selection_set is None:
        return 0
    total = 0
    for node, owner in _fields(schema, parent, selection_set, fragments, spreading):
        field = owner.fields.get(node.name.value)
        total += times
        if field is None:  # __typename and the like
            continue
        child = get_named_type(field.type)
        if isinstance(child, GraphQLObjectType):
            per_item = _page_size(field, node, variables)
            total += _selection_cost(
                schema, child, node.selection_set, fragments, variables, times * per_item, spreading
            )
    return total


def _fields(
    schema: GraphQLSchema,
    parent: GraphQLObjectType,
    selection_set: SelectionSetNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    spreading: set[str],
) -> Iterator[tuple[FieldNode, GraphQLObjectType]]:
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            yield selection, parent
        elif isinstance(selection, InlineFragmentNode):
            owner = _condition(schema, parent, selection.type_condition)
            yield from _fields(schema, owner, selection.selection_set, fragments, spreading)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is None or name in spreading:  # validation reports both
                continue
            owner = _condition(schema, parent, fragment.type_condition)
            spreading.add(name)
            yield from _fields(schema, owner, fragment.selection_set, fragments, spreading)
            spreading.discard(name)


def _condition(schema: GraphQLSchema, parent: GraphQLObjectType, condition: Any) -> Any:
    if condition is None:
        return parent
    found = schema.get_type(condition.name.value)
    return found if isinstance(found, GraphQLObjectType) else parent


def _page_size(field: GraphQLField, node: FieldNode, variables: Mapping[str, Any]) -> int:
    if not any(name in field.args for name in PAGE_ARGUMENTS):
        return 1
    size = 0
    for name in PAGE_ARGUMENTS:
        argument = field.args.get(name)
        if argument is None:
            continue
        given = next((a for a in node.arguments or () if a.name.value == name), None)
        value = (
            value_from_ast(given.value, argument.type, dict(variables))
            if given is not None
            else argument.default_value
        )
        if isinstance(value, int) and value > size:
            size = value
    # Neither given: the listing's default page.
    return size or DEFAULT_PAGE_SIZE


class QueryCost(SchemaExtension):
    """Refuse an operation whose cost is over ``max_cost`` with BAD_USER_INPUT, before it runs."""

    def __init__(self, *, max_cost: int) -> None:
        self.max_cost = max_cost

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None:
            fragments = {
                d.name.value: d
                for d in document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }
            operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            chosen = [
                o
                for o in operations
                if context.operation_name is None
                or (o.name is not None and o.name.value == context.operation_name)
            ][:1]
            schema = context.schema._schema
            cost = sum(
                operation_cost(schema, o, fragments, context.variables or {}) for o in chosen
            )
            if cost > self.max_cost:
                message = (
                    f"the operation would resolve about {cost} fields, over the limit of "
                    f"{self.max_cost}: ask for smaller pages (first) or fewer fields"
                )
                refused = BadInput(message, details={"cost": cost, "maxCost": self.max_cost})
                if context.operation_type is OperationType.SUBSCRIPTION:
                    raise refused
                error = GraphQLError(message, extensions=refused.extensions)
                context.result = ExecutionResult(data=None, errors=[error])
        yield
