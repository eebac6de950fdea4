"""The one GraphQL schema: composes each domain's Query, Mutation and Subscription."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from graph.cost import QueryCost
from graph.executor import SharingExecutor
from graph.extensions import (
    ErrorCodes,
    OperationScope,
    SubscriptionsOverWebSockets,
    log_unexpected_errors,
)
from graph.types.auth import User
from graph.types.clusters import Cluster
from graph.types.jobs import Job
from graph.types.scalars import SCALARS
from resolvers.auth import AuthMutation, AuthQuery
from resolvers.blobs import BlobsMutation, BlobsQuery
from resolvers.clusters import ClustersMutation, ClustersQuery
from resolvers.disks import DisksMutation, DisksQuery
from resolvers.jobs import JobLifeSpanMutation, JobsMutation, JobsQuery, JobsSubscription
from resolvers.monitoring import MonitoringSubscription
from resolvers.node import NodeQuery
from resolvers.orgs import OrgsMutation, OrgsQuery
from resolvers.quotas import QuotasMutation, QuotasQuery
from resolvers.secrets import SecretsMutation, SecretsQuery
from resolvers.sharing import SharingMutation, SharingQuery
from resolvers.storage import StorageMutation, StorageQuery
from resolvers.telemetry import TelemetryQuery, TelemetrySubscription
from resolvers.users import UsersMutation, UsersQuery


@strawberry.type(description="What can be read: start with `me`, `jobs` or `node`")
class Query(
    NodeQuery,
    AuthQuery,
    UsersQuery,
    OrgsQuery,
    SharingQuery,
    ClustersQuery,
    QuotasQuery,
    JobsQuery,
    StorageQuery,
    BlobsQuery,
    DisksQuery,
    TelemetryQuery,
    SecretsQuery,
):
    pass


@strawberry.type(
    description="What can be changed; each mutation takes one `input` and returns a payload"
)
class Mutation(
    AuthMutation,
    UsersMutation,
    OrgsMutation,
    SharingMutation,
    ClustersMutation,
    QuotasMutation,
    JobsMutation,
    JobLifeSpanMutation,
    StorageMutation,
    BlobsMutation,
    DisksMutation,
    SecretsMutation,
):
    pass


@strawberry.type(
    description="What can be followed live, over a WebSocket (graphql-transport-ws) at /graphql"
)
class Subscription(JobsSubscription, MonitoringSubscription, TelemetrySubscription):
    pass


class GliaSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Strawberry's default logs every error with its traceback, expected ones included.
        context = execution_context.context if execution_context else None
        log_unexpected_errors(errors, getattr(context, "request_id", None))


def create_schema(
    *, max_depth: int = 10, max_tokens: int = 2000, max_cost: int = 25_000
) -> strawberry.Schema:
    # The limiters' rule classes are built once: the validation cache is keyed by the rule
    # classes, and a limiter built per request would make a new class, and a cache miss, each time.
    limits = [
        *QueryDepthLimiter(max_depth=max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=30).validation_rules,
    ]
    return GliaSchema(
        # Node's implementations are reached through fields too; listed so that every one is.
        types=[Job, User, Cluster],
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[
            # Clients send the same few documents over and over: parse and validate each once.
            lambda: ParserCache(maxsize=512),
            lambda: ValidationCache(maxsize=512),
            lambda: AddValidationRules(limits),
            lambda: MaxTokensLimiter(max_token_count=max_tokens),
            lambda: QueryCost(max_cost=max_cost),
            SubscriptionsOverWebSockets,
            OperationScope,
            ErrorCodes,
        ],
        config=StrawberryConfig(disable_field_suggestions=True, scalar_map=SCALARS),
        execution_context_class=SharingExecutor,
    )


# The schema as code sees it; `schema.graphql` beside this module is its committed print:
# python -m graph.schema > graph/schema.graphql
schema = create_schema()

if __name__ == "__main__":
    print(schema.as_str())
