from __future__ import annotations

from typing import cast

import strawberry
from strawberry.scalars import JSON

from glia import jobs as kernel
from glia.errors import NotFound
from graph.context import Info
from graph.types.auth import User  # noqa: F401  (Job.owner's type must be registered first)
from graph.types.base import expose_enum, field_description, input_type, object_type
from graph.types.clusters import Cluster, Resources  # noqa: F401  (as for User)

JobStatus = expose_enum(kernel.JobStatus)
JobReason = expose_enum(kernel.JobReason)


@object_type(kernel.JobStatusItem)
class JobStatusItem:
    pass


@object_type(kernel.Job)
class Job:
    id: strawberry.ID = strawberry.field(description=field_description(kernel.Job, "id"))
    env: JSON = strawberry.field(description=field_description(kernel.Job, "env"))

    @strawberry.field(description=field_description(kernel.Job, "history"))
    async def history(self, root: strawberry.Parent[kernel.Job], info: Info) -> list[JobStatusItem]:
        items = root.history or await info.context.loaders.job_history.load(root.id)
        return cast(list[JobStatusItem], list(items))

    @strawberry.field(description="The cluster it runs on")
    async def cluster(self, root: strawberry.Parent[kernel.Job], info: Info) -> Cluster:
        cluster = await info.context.loaders.clusters.load(root.cluster_name)
        if cluster is None:
            raise NotFound(f"the cluster of job {root.id} no longer exists")
        return cast(Cluster, cluster)

    @strawberry.field(
        description="Where to download the job's whole output: GET with the same bearer token; "
        "`Range` and `?offset=` are supported"
    )
    def log_url(self, root: strawberry.Parent[kernel.Job], info: Info) -> str:
        return f"{info.context.platform.settings.effective_public_url}/api/jobs/{root.id}/log"


@strawberry.type(description="A page of jobs")
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether more jobs follow this page")
    end_cursor: str | None = strawberry.field(
        description="Pass as `after` for the next page; null on an empty page"
    )


@strawberry.type(description="A job and its cursor in the listing")
class JobEdge:
    cursor: str = strawberry.field(description="This job's position in the listing")
    node: Job = strawberry.field(description="The job")


@strawberry.type(description="Jobs, a page at a time, newest first")
class JobConnection:
    edges: list[JobEdge] = strawberry.field(description="The jobs of this page")
    page_info: PageInfo = strawberry.field(description="How to get the next page")
    total_count: int = strawberry.field(description="How many jobs match, on every page")


@input_type(kernel.JobFilter)
class JobFilter:
    pass


@input_type(kernel.EnvVar)
class EnvVar:
    pass


@input_type(kernel.JobSubmission, name="SubmitJobInput")
class SubmitJobInput:
    pass
