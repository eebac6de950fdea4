from __future__ import annotations

from typing import cast

import strawberry
from strawberry.scalars import JSON

from glia import jobs as kernel
from glia import volumes
from glia.errors import NotFound
from graph.context import Info
from graph.types.auth import User  # noqa: F401  (Job.owner's type must be registered first)
from graph.types.base import expose_enum, field_description, input_type, object_type
from graph.types.clusters import Cluster, Resources  # noqa: F401  (as for User)
from graph.types.node import Node
from graph.types.pages import OrderDirection  # noqa: F401  (JobOrder's enum, described first)

JobStatus = expose_enum(kernel.JobStatus)
JobReason = expose_enum(kernel.JobReason)
JobPriority = expose_enum(kernel.JobPriority)
RestartPolicy = expose_enum(kernel.RestartPolicy)
VolumeKind = expose_enum(volumes.VolumeKind)


@object_type(volumes.Volume)
class Volume:
    pass


@input_type(volumes.Volume, name="VolumeInput")
class VolumeInput:
    pass


@object_type(volumes.SecretEnv)
class SecretEnv:
    pass


@input_type(volumes.SecretEnv, name="SecretEnvInput")
class SecretEnvInput:
    pass


@object_type(kernel.JobStatusItem)
class JobStatusItem:
    pass


async def _visible_env(root: strawberry.Parent[kernel.Job], info: Info) -> JSON:
    ctx = info.context
    return cast(JSON, await ctx.platform.jobs.visible_env(await ctx.user(), root))


@object_type(kernel.Job)
class Job(Node):
    id: strawberry.ID = strawberry.field(description=field_description(kernel.Job, "id"))
    # A class-body field with its type: the model's `dict[str, str | None]` is no GraphQL type.
    env: JSON = strawberry.field(
        resolver=_visible_env, description=field_description(kernel.Job, "env")
    )

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

    @strawberry.field(
        description="WebSocket to run a command inside the running job (write on the job; "
        "`?command=ARG&command=ARG`, `&tty=1&rows=R&cols=C`; frames: docs/api.md)"
    )
    def exec_url(self, root: strawberry.Parent[kernel.Job], info: Info) -> str:
        return _websocket_url(info, f"/api/jobs/{root.id}/exec")

    @strawberry.field(
        description="WebSocket following the running job's output from now on (write on the "
        "job; frames: docs/api.md)"
    )
    def attach_url(self, root: strawberry.Parent[kernel.Job], info: Info) -> str:
        return _websocket_url(info, f"/api/jobs/{root.id}/attach")

    @strawberry.field(
        description="WebSocket carrying one TCP connection to a port of the running job "
        "(write on the job; `?port=N`; frames: docs/api.md)"
    )
    def port_forward_url(self, root: strawberry.Parent[kernel.Job], info: Info) -> str:
        return _websocket_url(info, f"/api/jobs/{root.id}/port-forward")


@input_type(kernel.JobFilter)
class JobFilter:
    pass


JobOrderField = expose_enum(kernel.JobOrderField)


@input_type(kernel.JobOrder)
class JobOrder:
    pass


@input_type(kernel.EnvVar)
class EnvVar:
    pass


@input_type(kernel.JobSubmission, name="SubmitJobInput")
class SubmitJobInput:
    pass


@strawberry.type(
    description="The job submitted (or, for a repeated idempotency key, the one submitted first)"
)
class SubmitJobPayload:
    job: Job = strawberry.field(description="The job, pending or already further on")


@strawberry.input(description="Which job to stop")
class KillJobInput:
    id: strawberry.ID = strawberry.field(description="The job's id")


@strawberry.input(description="A job whose life span to extend, and by how much")
class BumpJobLifeSpanInput:
    id: strawberry.ID = strawberry.field(description="The job's id")
    seconds: float = strawberry.field(
        description="Seconds to add to its life span (1 s to 30 days)"
    )


@strawberry.type(description="The job with its longer life span")
class BumpJobLifeSpanPayload:
    job: Job = strawberry.field(description="The job")


@strawberry.type(description="The job after the kill")
class KillJobPayload:
    job: Job = strawberry.field(
        description="The job: finished (CANCELLED) if it ended within a few seconds; a job "
        "that had already finished comes back unchanged"
    )
    already_finished: bool = strawberry.field(
        description="Whether the job had finished before the kill"
    )


def _websocket_url(info: Info, path: str) -> str:
    base = info.context.platform.settings.effective_public_url
    if base.startswith("https://"):
        return "wss://" + base.removeprefix("https://") + path
    return "ws://" + base.removeprefix("http://") + path
