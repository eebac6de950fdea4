"""The one GraphQL schema: composes each domain's Query, Mutation and Subscription."""

from __future__ import annotations

import strawberry
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter
from strawberry.schema.config import StrawberryConfig

from graph.extensions import ErrorCodes, OperationScope
from resolvers.auth import AuthMutation, AuthQuery
from resolvers.clusters import ClustersQuery
from resolvers.jobs import JobsMutation, JobsQuery, JobsSubscription
from resolvers.monitoring import MonitoringSubscription


@strawberry.type
class Query(AuthQuery, ClustersQuery, JobsQuery):
    pass


@strawberry.type
class Mutation(AuthMutation, JobsMutation):
    pass


@strawberry.type
class Subscription(JobsSubscription, MonitoringSubscription):
    pass


def create_schema(*, max_depth: int = 10, max_tokens: int = 2000) -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[
            lambda: QueryDepthLimiter(max_depth=max_depth),
            lambda: MaxTokensLimiter(max_token_count=max_tokens),
            lambda: MaxAliasesLimiter(max_alias_count=30),
            OperationScope,
            ErrorCodes,
        ],
        config=StrawberryConfig(disable_field_suggestions=True),
    )


# The schema as code sees it; `schema.graphql` beside this module is its committed print.
schema = create_schema()
