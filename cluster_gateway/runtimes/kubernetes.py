"""A runtime that runs each workload as a Pod on a Kubernetes cluster (kubernetes-asyncio).

A workload is a bare Pod, not a batch/v1 Job: Glia is the job controller already (its own
restart policy, retries and schedule timeout), a Job would add a second one whose retries and
backoff fight Glia's, and a Pod's phases and container states map onto Glia's one to one.

- Its namespace is ``namespace_for(spec)``; by default one per org and project
  (``glia-<org>-<project>-<hash>``, from ``GLIA_JOB_ORG`` and ``GLIA_JOB_PROJECT``; per owner
  for a spec without them), created when missing, with a ``glia-job`` ServiceAccount whose
  token is not mounted. A project's disks and secrets live there, beside its jobs.
- It is labelled ``app.kubernetes.io/managed-by=glia``, ``glia.dev/instance`` (the runtime's,
  so that several share a cluster), ``glia.dev/job`` (its name),
  ``glia.dev/owner`` and ``glia.dev/preset``; the job id itself is the annotation
  ``glia.dev/job-id`` (a job id may be longer than a label value).
- Requests and limits are the preset's (cpu, memory, ``nvidia.com/gpu`` with a node selector on
  the GPU model when one is asked for); shared memory is an emptyDir of medium Memory on
  /dev/shm; the life span is ``activeDeadlineSeconds`` (the kubelet enforces it, reason
  DeadlineExceeded) and a timer here (a life span cannot be lengthened on a pod).
- The finalizer ``glia.dev/record`` keeps an ended pod as the workload's record until
  ``forget``; ``stop`` annotates the reason and deletes the pod with the grace period (the
  kubelet's SIGTERM, then SIGKILL). A pod deleted by anyone else ends Lost.
- States come from one cluster-wide watch of the pods labelled managed-by=glia, resumed from its
  last resourceVersion after a disconnect and relisted on 410 Gone; changes go to the gateway's
  ``WorkloadFeed``.

- Secret files and variables are one immutable Secret per job, owned by the pod (files by
  subPath, 0400; variables by secretKeyRef: no value in the pod); a disk is the
  ReadWriteOnce claim named after its id, made on first use; storage is the shared
  ``storage_claim`` mounted with subPath ``ORG/PROJECT/path``; an HTTP port
  (``GLIA_HTTP_PORT``/``GLIA_JOB_URL``) is a Service and an Ingress behind Traefik's
  ForwardAuth Middleware at ``forward_auth_url`` (both owned by the pod).
- The job's priority is the PriorityClass ``glia-low|normal|high`` (made when missing;
  preemptionPolicy Never unless ``preempt``: Glia's suspension is the preemption).

Not yet here (see docs/kubernetes.md): logs read from the pod log API are plain (no cap, no
SYSTEM lines); exec, port connections, terminal input and telemetry are Unavailable.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import math
import posixpath
import re
import urllib.parse
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from cluster_gateway.exec import ExecSession
from cluster_gateway.gateway import (
    ClusterCapacity,
    JobIsolation,
    WorkloadPhase,
    WorkloadSpec,
    WorkloadState,
    WorkloadWatch,
)
from cluster_gateway.runtimes.base import Runtime, check_job_id
from cluster_gateway.runtimes.kubernetes_logs import PodLine, follow_lines, read_lines
from cluster_gateway.runtimes.kubernetes_streams import KubernetesStreams, PodExecSession
from cluster_gateway.watch import DEFAULT_HISTORY, WorkloadFeed
from glia.clock import utcnow
from glia.clusters import Resources
from glia.errors import BadInput, Conflict, NotFound, Unavailable
from glia.jobs import JobPriority, JobReason
from glia.monitoring import LogBatch, LogLine, LogStream, check_log_start
from glia.storage import parse_storage_uri
from glia.telemetry import TelemetryTick
from glia.volumes import VolumeKind

log = logging.getLogger(__name__)

MANAGED_BY = "app.kubernetes.io/managed-by"
INSTANCE_LABEL = "glia.dev/instance"
JOB_LABEL = "glia.dev/job"
OWNER_LABEL = "glia.dev/owner"
PRESET_LABEL = "glia.dev/preset"
JOB_ID = "glia.dev/job-id"
LIFE_SPAN = "glia.dev/life-span-s"
STOP_REASON = "glia.dev/stop-reason"
FINALIZER = "glia.dev/record"
SERVICE_ACCOUNT = "glia-job"
CONTAINER = "job"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
DEFAULT_IMAGE = "python:3.11-slim"
WATCH_TIMEOUT_S = 300
# A followed log whose workload has ended ends once its stream has been quiet this long (a
# kubelet ends the stream itself when the container exits; this is for one that does not).
LOG_IDLE_S = 1.0
PRIORITY_CLASS_WAIT_S = 10.0
DISK_LABEL = "glia.dev/disk"
QUOTA = "glia-jobs"
SECRET_VOLUME = "secrets"
STORAGE_VOLUME = "storage"
SECRET_MODE = 0o400
DEFAULT_DISK_BYTES = 10 * 1024**3
# Where a job's storage working directory goes (the local runtime's sandbox uses it too).
WORK = "/job/work"
FORWARD_AUTH = "glia-forward-auth"
MIDDLEWARE_ANNOTATION = "traefik.ingress.kubernetes.io/router.middlewares"
TRAEFIK_GROUP, TRAEFIK_VERSION, MIDDLEWARES = "traefik.io", "v1alpha1", "middlewares"
# The PriorityClasses of Glia's three priorities (cluster-wide; made when missing).
PRIORITY_CLASSES = {
    JobPriority.LOW: ("glia-low", 1000),
    JobPriority.NORMAL: ("glia-normal", 2000),
    JobPriority.HIGH: ("glia-high", 3000),
}
_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_DNS_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LABEL_VALUE = re.compile(r"[^A-Za-z0-9._-]")
# Waiting reasons that no retry will fix: the workload could not start at all.
START_FAILURES = frozenset(
    {"InvalidImageName", "CreateContainerConfigError", "CreateContainerError"}
)


def pod_name(job_id: str) -> str:
    """A DNS-label name for a job id (any case, dots, underscores, up to 200 characters):
    its readable part, and a digest so that ids differing only in case or length stay apart."""
    readable = re.sub(r"[^a-z0-9-]+", "-", job_id.lower()).strip("-")[:40].strip("-")
    digest = hashlib.sha256(job_id.encode()).hexdigest()[:10]
    return f"glia-{readable}-{digest}" if readable else f"glia-{digest}"


def label_value(text: str) -> str:
    value = _LABEL_VALUE.sub("-", text)[:63].strip("-._")
    return value or "none"


def _dns_label(text: str, limit: int) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:limit].strip("-")


def project_namespace(spec: WorkloadSpec, prefix: str = "glia-") -> str:
    """``<prefix><org>-<project>-<hash>`` (the org once where the project is named after it,
    as a personal one is); the hash of the org and project keeps apart what reads the same
    once lowercased and cut (``A.b``/``a-b``). A spec without them (a control plane before
    they were sent) gets its owner's, ``<prefix><owner>``."""
    org, project = spec.env.get("GLIA_JOB_ORG", ""), spec.env.get("GLIA_JOB_PROJECT", "")
    if not org or not project:
        owner = _dns_label(spec.env.get("GLIA_JOB_OWNER", ""), 40)
        return f"{prefix}{owner or 'jobs'}".strip("-")
    # 22 (the longest prefix) + 24 + 1 + 16 = 63, a namespace's limit; 64 bits of the hash,
    # so that no one finds an org and project that share another's namespace.
    readable = _dns_label(org if org == project else f"{org}-{project}", 24)
    digest = hashlib.sha256(f"{org}/{project}".encode()).hexdigest()[:16]
    return f"{prefix}{readable}-{digest}" if readable else f"{prefix}{digest}"


def quantity_mb(memory_mb: int) -> str:
    return f"{memory_mb}Mi"


def quantity_bytes(size: int) -> str:
    """``2Gi`` for 2 GiB: the quantity as people read it where it is exact."""
    for unit, factor in (("Ti", 1024**4), ("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def secret_name(job_id: str) -> str:
    """The job's one Secret (its secret files and variables)."""
    return f"{pod_name(job_id)}-secret"


def secret_env_key(index: int, name: str) -> str:
    return f"env.{name}" if _SECRET_KEY.fullmatch(name) else f"env.{index}"


def secret_manifest(spec: WorkloadSpec, namespace: str) -> dict[str, Any] | None:
    """The Secret holding the job's secret files (``file.<i>``) and secret variables
    (``env.<NAME>``), base64 as the API wants; None when it has none. Immutable: nothing
    changes a job's secrets while it runs."""
    if not spec.secret_files and not spec.secret_env:
        return None
    data: dict[str, str] = {}
    for index, secret in enumerate(spec.secret_files):
        data[f"file.{index}"] = base64.b64encode(secret.content.get_secret_value()).decode()
    for index, (name, value) in enumerate(spec.secret_env.items()):
        key = secret_env_key(index, name)
        data[key] = base64.b64encode(value.get_secret_value().encode()).decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": secret_name(spec.job_id),
            "namespace": namespace,
            "labels": {MANAGED_BY: "glia", JOB_LABEL: pod_name(spec.job_id)},
            "annotations": {JOB_ID: spec.job_id},
        },
        "type": "Opaque",
        "immutable": True,
        "data": data,
    }


def disk_claim_name(disk_id: str) -> str:
    """The PersistentVolumeClaim of a disk: its id (``disk-<uuid>``) where that is a DNS
    name, as disk ids are; a digested name otherwise."""
    name = disk_id.lower()
    if len(name) <= 63 and _DNS_NAME.fullmatch(name) and name == disk_id:
        return name
    return "disk-" + hashlib.sha256(disk_id.encode()).hexdigest()[:40]


_QUOTA_REFUSAL = re.compile(rf"exceeded quota: {QUOTA}\b.*limited: pods=(\d+)")


def _stale_quota(reason: str, running_limit: int | None) -> bool:
    """Whether a refusal came from this runtime's quota at a limit it no longer holds (the
    admission's cache has not seen the change yet)."""
    refused = _QUOTA_REFUSAL.search(reason)
    return refused is not None and int(refused.group(1)) != running_limit


def resource_quota_manifest(limit: int) -> dict[str, Any]:
    """The ResourceQuota holding a project's namespace to ``limit`` pods that have not ended
    (Kubernetes counts a pod against `pods` until it Succeeded or Failed)."""
    return {
        "metadata": {"name": QUOTA, "labels": {MANAGED_BY: "glia"}},
        "spec": {"hard": {"pods": str(limit)}},
    }


def disk_claim_manifest(
    disk_id: str, namespace: str, size_bytes: int, storage_class: str | None
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": quantity_bytes(size_bytes)}},
    }
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": disk_claim_name(disk_id),
            "namespace": namespace,
            "labels": {MANAGED_BY: "glia", DISK_LABEL: label_value(disk_id)},
            "annotations": {"glia.dev/disk-id": disk_id},
        },
        "spec": spec,
    }


def storage_sub_path(uri: str) -> str:
    """Where a storage URI's directory is under the shared storage claim:
    ``ORG/PROJECT/path``. BadInput for anything that could leave the tree (``..``, ``.``, an
    empty name, an absolute path): the claim holds every project's files."""
    location = parse_storage_uri(uri, "volumes")
    parts = (location.org, location.project, *location.path)
    for part in parts:
        if part in ("", ".", "..") or "/" in part or "\\" in part or "\0" in part:
            raise BadInput(f"{uri!r}: not a path inside the storage", fields={"volumes": "path"})
    sub_path = "/".join(parts)
    if sub_path.startswith("/") or posixpath.normpath(sub_path) != sub_path:
        raise BadInput(f"{uri!r}: not a path inside the storage", fields={"volumes": "path"})
    return sub_path


@dataclass(frozen=True)
class HttpExposure:
    """A job's HTTP port, and the host name of its URL (from the platform's variables
    ``GLIA_HTTP_PORT`` and ``GLIA_JOB_URL``, which the control plane sets for an exposed
    job: the workload spec carries them there, as it carries the job's owner)."""

    port: int
    host: str | None


def http_exposure(spec: WorkloadSpec) -> HttpExposure | None:
    text = spec.env.get("GLIA_HTTP_PORT")
    if not text:
        return None
    try:
        port = int(text)
    except ValueError:
        raise BadInput(f"GLIA_HTTP_PORT {text!r} is not a port", fields={"env": "port"}) from None
    if not 1 <= port <= 65535:
        raise BadInput(f"GLIA_HTTP_PORT {port} is not a port", fields={"env": "port"})
    host = urllib.parse.urlsplit(spec.env.get("GLIA_JOB_URL", "")).hostname
    return HttpExposure(port=port, host=host or None)


def service_manifest(
    spec: WorkloadSpec, namespace: str, instance: str, port: int
) -> dict[str, Any]:
    name = pod_name(spec.job_id)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {MANAGED_BY: "glia", INSTANCE_LABEL: instance, JOB_LABEL: name},
            "annotations": {JOB_ID: spec.job_id},
        },
        "spec": {
            "type": "ClusterIP",
            "selector": {INSTANCE_LABEL: instance, JOB_LABEL: name},
            "ports": [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def middleware_manifest(namespace: str, forward_auth_url: str) -> dict[str, Any]:
    """Traefik's ForwardAuth Middleware of a namespace: each request to a job's URL is first
    asked of the control plane's ``/auth/forward`` (2xx lets it through; its 401/403 is the
    answer)."""
    return {
        "apiVersion": f"{TRAEFIK_GROUP}/{TRAEFIK_VERSION}",
        "kind": "Middleware",
        "metadata": {"name": FORWARD_AUTH, "namespace": namespace, "labels": {MANAGED_BY: "glia"}},
        # trustForwardHeader off: Traefik tells /auth/forward the Host the request came with
        # (X-Forwarded-Host, which it reads), never a client's own X-Forwarded-Host, which
        # would let a request to one job be authorized as another's.
        "spec": {"forwardAuth": {"address": forward_auth_url, "trustForwardHeader": False}},
    }


def ingress_manifest(
    spec: WorkloadSpec,
    namespace: str,
    instance: str,
    host: str,
    port: int,
    ingress_class: str | None,
) -> dict[str, Any]:
    name = pod_name(spec.job_id)
    ingress_spec: dict[str, Any] = {
        "rules": [
            {
                "host": host,
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": name, "port": {"number": port}}},
                        }
                    ]
                },
            }
        ]
    }
    if ingress_class is not None:
        ingress_spec["ingressClassName"] = ingress_class
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {MANAGED_BY: "glia", INSTANCE_LABEL: instance, JOB_LABEL: name},
            "annotations": {
                JOB_ID: spec.job_id,
                # Traefik's name for a Middleware of the Kubernetes CRD provider.
                MIDDLEWARE_ANNOTATION: f"{namespace}-{FORWARD_AUTH}@kubernetescrd",
            },
        },
        "spec": ingress_spec,
    }


def priority_class_manifest(priority: JobPriority, *, preempt: bool) -> dict[str, Any]:
    name, value = PRIORITY_CLASSES[priority]
    return {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": name, "labels": {MANAGED_BY: "glia"}},
        "value": value,
        "globalDefault": False,
        # Never: the scheduler places waiting pods by priority but evicts none; Glia's own
        # suspension of preemptible jobs stays the one preemption (it knows the restart).
        "preemptionPolicy": "PreemptLowerPriority" if preempt else "Never",
        "description": f"Glia jobs of {priority.value} priority",
    }


def owned_by(pod: Mapping[str, Any]) -> list[dict[str, Any]]:
    """An ownerReference to the pod: the garbage collector removes the object with it."""
    meta = pod["metadata"]
    return [{"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"]}]


def parse_cpu(value: str) -> float:
    return float(value[:-1]) / 1000 if value.endswith("m") else float(value)


_MEMORY_UNITS = {
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
    "Pi": 1024**5,
    "k": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "P": 1000**5,
}


def parse_memory_mb(value: str) -> int:
    for unit, factor in _MEMORY_UNITS.items():
        if value.endswith(unit):
            return int(float(value[: -len(unit)]) * factor // 1024**2)
    return int(float(value) // 1024**2)


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def state_of(pod: Mapping[str, Any]) -> WorkloadState:
    """The workload's state as the pod shows it."""
    meta = pod["metadata"]
    status = pod.get("status") or {}
    annotations = meta.get("annotations") or {}
    job_id = annotations.get(JOB_ID, meta["name"])
    phase = status.get("phase", "Pending")
    container: Mapping[str, Any] = next(
        (c for c in status.get("containerStatuses") or [] if c.get("name") == CONTAINER), {}
    )
    state = container.get("state") or {}
    terminated = state.get("terminated")
    running = state.get("running")
    deleting = meta.get("deletionTimestamp") is not None
    stop = annotations.get(STOP_REASON)
    started_at = _time((running or terminated or {}).get("startedAt") or status.get("startTime"))
    never_placed = deleting and not (pod.get("spec") or {}).get("nodeName")
    if phase in ("Succeeded", "Failed") or never_placed:
        exit_code = terminated.get("exitCode") if terminated else None
        if exit_code is None and phase == "Succeeded":
            exit_code = 0
        if stop:
            reason = JobReason(stop)
        elif status.get("reason") == "DeadlineExceeded":
            reason = JobReason.LIFE_SPAN_ENDED
        elif status.get("reason") == "Evicted" or deleting:
            reason = JobReason.LOST
        elif terminated and terminated.get("reason") == "OOMKilled":
            reason = JobReason.OOM_KILLED
        elif exit_code == 0:
            reason = JobReason.COMPLETED
        elif terminated and (terminated.get("signal") or exit_code == 137):
            reason = JobReason.KILLED
        else:
            reason = JobReason.ERROR
        description = status.get("message") or (terminated or {}).get("message")
        if reason == JobReason.LOST and not description:
            description = "the pod was deleted outside Glia"
        return WorkloadState(
            job_id=job_id,
            phase=WorkloadPhase.EXITED,
            exit_code=exit_code,
            reason=reason,
            description=description,
            started_at=started_at if terminated else None,
            finished_at=_time((terminated or {}).get("finishedAt")) or utcnow(),
        )
    if phase == "Running":
        return WorkloadState(job_id=job_id, phase=WorkloadPhase.RUNNING, started_at=started_at)
    # Pending: say why (the scheduler's message, an image pull backing off).
    description = None
    waiting = state.get("waiting")
    if waiting and waiting.get("reason"):
        description = f"{waiting['reason']}: {waiting.get('message', '')}".strip(": ")
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            description = f"{condition.get('reason')}: {condition.get('message', '')}"
    return WorkloadState(job_id=job_id, phase=WorkloadPhase.PENDING, description=description)


@dataclass
class _Workload:
    namespace: str
    name: str
    pod: dict[str, Any]
    state: WorkloadState
    life_span: asyncio.TimerHandle | None = None
    # When this runtime asked its pod to end (stop, life span), if it did.
    ended_at: datetime | None = None
    forgotten: bool = False


def _close_to(stamp: datetime | None, now: datetime) -> datetime | None:
    """The API's times are whole seconds: when ``stamp`` is within the second before now,
    now is the better time (seen as it happened); otherwise ``stamp`` (seen late)."""
    if stamp is None:
        return None
    return now if timedelta(0) <= now - stamp < timedelta(seconds=1) else stamp


def _precise(
    new: WorkloadState, old: WorkloadState | None, ended_at: datetime | None = None
) -> WorkloadState:
    """``new`` with sub-second times where it is being watched, and the start it had.
    ``ended_at``: when this runtime asked the pod to end (stop, life span): it did not end
    before, whatever the API's whole seconds say (an end seen late would otherwise take the
    second it was floored to, earlier than the start seen to the microsecond)."""
    now = utcnow()
    if new.phase == WorkloadPhase.RUNNING:
        if old is not None and old.phase == WorkloadPhase.RUNNING:
            return new.model_copy(update={"started_at": old.started_at})
        return new.model_copy(update={"started_at": _close_to(new.started_at, now)})
    if new.phase == WorkloadPhase.EXITED:
        started = new.started_at
        if old is not None and old.started_at is not None:
            started = old.started_at
        finished = _close_to(new.finished_at, now)
        if finished is not None and ended_at is not None:
            finished = max(finished, min(ended_at, now))
        if started is not None and finished is not None:
            finished = max(started, finished)
        return new.model_copy(update={"started_at": started, "finished_at": finished})
    return new


_ORDER = {WorkloadPhase.PENDING: 0, WorkloadPhase.RUNNING: 1, WorkloadPhase.EXITED: 2}


def _older(pod: Mapping[str, Any], than: Mapping[str, Any]) -> bool:
    """Whether ``pod`` is an older version of the same pod than ``than``. resourceVersions
    are opaque to clients but etcd's revisions here, which grow; ignore what is not a number."""
    try:
        mine = int(pod["metadata"]["resourceVersion"])
        theirs = int(than["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return False
    return pod["metadata"].get("uid") == than["metadata"].get("uid") and mine < theirs


async def _check(response: aiohttp.ClientResponse) -> None:
    """An ApiException for an answer that is not a success: kubernetes-asyncio raises none
    for a call made with ``_preload_content=False``, whose body is then the API's Status."""
    if 200 <= response.status < 300:
        return
    text = await response.read()
    try:
        message = str(json.loads(text).get("message") or response.reason)
    except (ValueError, AttributeError):
        message = str(response.reason)
    error = ApiException(status=response.status, reason=message)
    error.body = text
    raise error


async def _json(response: aiohttp.ClientResponse) -> dict[str, Any]:
    """The JSON object of a successful answer to a call made with ``_preload_content=False``;
    ApiException otherwise."""
    await _check(response)
    body: dict[str, Any] = json.loads(await response.read())
    return body


async def _lines(stream: aiohttp.StreamReader) -> AsyncIterator[bytes]:
    """The lines of a watch's answer, however long (readline has a limit: an object with a
    large environment can pass it)."""
    pending = b""
    async for chunk in stream.iter_any():
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.strip():
                yield line
    if pending.strip():
        yield pending


def _key(state: WorkloadState) -> tuple[object, ...]:
    return (state.phase, state.exit_code, state.reason, state.description)


class KubernetesRuntime(Runtime):
    """``Runtime`` on a Kubernetes cluster; see the module docstring.

    ``configuration``: how to reach the API server (a kubernetes-asyncio ``Configuration``:
    from a kubeconfig, in-cluster, or built). ``image``: the image each workload runs (a
    workload spec has none yet). ``pod_annotations``: extra annotations per workload (the
    tests use it to drive kwok's stages). ``instance``: the label value that keeps this
    runtime's pods apart from another's on the same cluster (``glia.dev/instance``).
    ``watch_timeout_s``: how long the API server keeps one watch request open (the runtime
    then watches again from the last resourceVersion it saw).

    ``storage_claim``: the PersistentVolumeClaim (ReadWriteMany, in each job namespace) that
    holds the cluster's storage tree (``ORG/PROJECT/…``); None: storage volumes and storage
    working directories are refused. ``disk_storage_class``: the StorageClass of the claims
    made for disks (None: the cluster's default); ``default_disk_bytes``: a disk's size when
    the spec does not say it (``WorkloadSpec.disk_sizes``). ``forward_auth_url``: the control
    plane's ``/auth/forward`` URL, which Traefik asks before each request to a job's URL;
    None: jobs with an HTTP port get a Service but no Ingress. ``ingress_class``: the
    IngressClass of their Ingresses (Traefik's). ``priority_classes``: give each pod the
    PriorityClass of its job's priority (``glia-low|normal|high``, made when missing; False on
    a cluster where the runtime may not make them); ``preempt``: let those classes preempt
    (Kubernetes evicting lower pods), not only order the waiting ones.
    """

    def __init__(
        self,
        configuration: client.Configuration,
        *,
        image: str = DEFAULT_IMAGE,
        namespace_for: Callable[[WorkloadSpec], str] = project_namespace,
        pod_annotations: Callable[[WorkloadSpec], Mapping[str, str]] | None = None,
        gpu_model: str | None = None,
        default_grace_s: float = 10.0,
        watch_history: int = DEFAULT_HISTORY,
        instance: str = "glia",
        watch_timeout_s: int = WATCH_TIMEOUT_S,
        storage_claim: str | None = None,
        disk_storage_class: str | None = None,
        default_disk_bytes: int = DEFAULT_DISK_BYTES,
        forward_auth_url: str | None = None,
        ingress_class: str | None = "traefik",
        priority_classes: bool = True,
        preempt: bool = False,
    ) -> None:
        self._configuration = configuration
        self._storage_claim = storage_claim
        self._disk_storage_class = disk_storage_class
        self._default_disk_bytes = default_disk_bytes
        self._forward_auth_url = forward_auth_url
        self._ingress_class = ingress_class
        self._middlewares: set[str] = set()
        self._priority_classes = priority_classes
        self._preempt = preempt
        self._ensured_priorities: set[JobPriority] = set()
        self._instance = label_value(instance)
        self._watch_timeout_s = watch_timeout_s
        self._selector = f"{MANAGED_BY}=glia,{INSTANCE_LABEL}={self._instance}"
        self._image = image
        self._namespace_for = namespace_for
        self._pod_annotations = pod_annotations
        self._gpu_model = gpu_model
        self._default_grace_s = default_grace_s
        self._watch_history = watch_history
        self._feed = WorkloadFeed(history=watch_history)
        self._api: client.ApiClient | None = None
        self._workloads: dict[str, _Workload] = {}
        self._namespaces: set[str] = set()
        # The running limit last set on each namespace's ResourceQuota (None: none there).
        self._quotas: dict[str, int | None] = {}
        self._informer: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Future[None]] = set()
        # exec and port-forward: WebSockets to the pods' streaming subresources.
        self._streams = KubernetesStreams(configuration)

    # --- life -----------------------------------------------------------------------------------

    @property
    def _core(self) -> Any:
        """The core API (typed Any: manifests go as plain dicts, answers are read raw)."""
        if self._api is None:
            raise RuntimeError("runtime is not open")
        return client.CoreV1Api(self._api)

    async def open(self) -> None:
        if self._api is not None:
            return
        if self._feed.closed:
            self._feed = WorkloadFeed(history=self._watch_history)
        self._api = client.ApiClient(self._configuration)
        version = await self._relist()
        self._informer = asyncio.create_task(self._inform(version), name="k8s-pod-watch")

    async def close(self) -> None:
        if self._informer is not None:
            self._informer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._informer
            self._informer = None
        for workload in self._workloads.values():
            if workload.life_span is not None:
                workload.life_span.cancel()
        self._workloads.clear()
        self._feed.close()
        self._wake()
        await self._streams.close()
        if self._api is not None:
            await self._api.close()
            self._api = None

    # --- the watch of the pods ------------------------------------------------------------------

    async def _relist(self) -> str:
        """Reads every Glia pod, publishes what changed since the last look (a pod gone
        unseen is Lost), and returns the list's resourceVersion."""
        listed = await self._core.list_pod_for_all_namespaces(
            label_selector=self._selector, _preload_content=False
        )
        body = await _json(listed)
        seen: set[str] = set()
        for pod in body.get("items") or []:
            seen.add(self._apply("MODIFIED", pod))
        for job_id, workload in list(self._workloads.items()):
            if job_id not in seen:
                self._apply("DELETED", workload.pod)
        return str(body["metadata"]["resourceVersion"])

    async def _inform(self, version: str) -> None:
        while True:
            try:
                response = await self._core.list_pod_for_all_namespaces(
                    label_selector=self._selector,
                    watch=True,
                    allow_watch_bookmarks=True,
                    resource_version=version,
                    timeout_seconds=self._watch_timeout_s,
                    _preload_content=False,
                )
                async with response:
                    await _check(response)
                    async for line in _lines(response.content):
                        event = json.loads(line)
                        kind, obj = event.get("type"), event.get("object") or {}
                        if kind == "ERROR":
                            if obj.get("code") == 410:
                                version = await self._relist()
                                break
                            raise ApiException(status=obj.get("code"), reason=obj.get("message"))
                        version = obj["metadata"]["resourceVersion"]
                        if kind != "BOOKMARK":
                            self._apply(kind, obj)
            except asyncio.CancelledError:
                raise
            except ApiException as error:
                if error.status == 410:
                    version = await self._relist_soon()
                else:
                    log.warning("pod watch failed (%s); resuming from %s", error, version)
                    await asyncio.sleep(1)
            except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as error:
                log.warning("pod watch broken (%s); resuming from %s", error, version)
                await asyncio.sleep(0.5)

    async def _relist_soon(self) -> str:
        while True:
            try:
                return await self._relist()
            except (ApiException, aiohttp.ClientError, OSError) as error:
                log.warning("relisting pods failed (%s)", error)
                await asyncio.sleep(1)

    def _apply(self, kind: str, pod: dict[str, Any]) -> str:
        meta = pod["metadata"]
        job_id = (meta.get("annotations") or {}).get(JOB_ID, meta["name"])
        workload = self._workloads.get(job_id)
        if kind == "DELETED":
            if workload is None or workload.forgotten:
                self._workloads.pop(job_id, None)
                self._wake()
                return job_id
            if workload.state.phase != WorkloadPhase.EXITED:
                # Gone without its record: force-deleted, or its namespace was.
                lost = WorkloadState(
                    job_id=job_id,
                    phase=WorkloadPhase.EXITED,
                    reason=JobReason.LOST,
                    description="the pod was deleted outside Glia",
                    started_at=workload.state.started_at,
                    finished_at=utcnow(),
                )
                self._set(workload, lost)
            return job_id
        new = _precise(
            state_of(pod),
            workload.state if workload else None,
            workload.ended_at if workload else None,
        )
        if workload is None:
            workload = _Workload(meta["namespace"], meta["name"], pod, new)
            self._workloads[job_id] = workload
            self._feed.publish(new)
            self._on_state(workload)
            self._wake()
            return job_id
        if _older(pod, workload.pod):
            return job_id  # e.g. start's answer, read after the watch brought newer ones
        workload.pod = pod
        if workload.state.phase == WorkloadPhase.EXITED or _key(new) == _key(workload.state):
            return job_id
        if _ORDER[new.phase] < _ORDER[workload.state.phase]:
            return job_id  # phases never go back
        if workload.state.phase == WorkloadPhase.PENDING and new.phase == WorkloadPhase.EXITED:
            if new.started_at is not None:  # it ran between two looks
                self._set(
                    workload,
                    WorkloadState(
                        job_id=job_id, phase=WorkloadPhase.RUNNING, started_at=new.started_at
                    ),
                )
        self._set(workload, new)
        return job_id

    def _set(self, workload: _Workload, state: WorkloadState) -> None:
        workload.state = state
        self._feed.publish(state)
        self._on_state(workload)
        self._wake()

    def _on_state(self, workload: _Workload) -> None:
        state = workload.state
        if state.phase == WorkloadPhase.EXITED and workload.life_span is not None:
            workload.life_span.cancel()
            workload.life_span = None
        if state.phase == WorkloadPhase.RUNNING and workload.life_span is None:
            self._arm_life_span(workload)

    def _arm_life_span(self, workload: _Workload) -> None:
        value = (workload.pod["metadata"].get("annotations") or {}).get(LIFE_SPAN)
        started = workload.state.started_at
        if not value or started is None or workload.state.phase != WorkloadPhase.RUNNING:
            return
        left = float(value) - (utcnow() - started).total_seconds()
        job_id = workload.state.job_id
        workload.life_span = asyncio.get_running_loop().call_later(
            max(0.0, left),
            lambda: self._background(self._end(job_id, JobReason.LIFE_SPAN_ENDED, 0.0)),
        )

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        async def run() -> None:
            try:
                await work
            except Exception:  # a closed runtime, an API error: the next look retries
                log.exception("ending a workload at its life span failed")

        task = asyncio.ensure_future(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # --- Runtime --------------------------------------------------------------------------------

    async def capacity(self) -> ClusterCapacity:
        """The schedulable nodes' allocatable, less the requests of the pods that hold some:
        every pod bound to a node (not only Glia's), and this runtime's from their start."""
        nodes = (await self._core.list_node()).items
        cpu = memory = gpu = 0.0
        model = self._gpu_model
        for node in nodes:
            if node.spec.unschedulable:
                continue
            allocatable = node.status.allocatable or {}
            cpu += parse_cpu(allocatable.get("cpu", "0"))
            memory += parse_memory_mb(allocatable.get("memory", "0"))
            gpu += int(allocatable.get(GPU_RESOURCE, "0"))
            model = model or (node.metadata.labels or {}).get(GPU_PRODUCT_LABEL)
        used_cpu = used_memory = used_gpu = 0.0
        pods = await self._core.list_pod_for_all_namespaces(
            field_selector="status.phase!=Succeeded,status.phase!=Failed"
        )
        for pod in pods.items:
            # A pod holds room once bound to a node; this runtime's own hold it from start.
            mine = (pod.metadata.labels or {}).get(INSTANCE_LABEL) == self._instance
            if not pod.spec.node_name and not mine:
                continue
            for container in pod.spec.containers:
                requests = (container.resources and container.resources.requests) or {}
                used_cpu += parse_cpu(requests.get("cpu", "0"))
                used_memory += parse_memory_mb(requests.get("memory", "0"))
                used_gpu += int(requests.get(GPU_RESOURCE, "0"))
        free = Resources(
            cpu=cpu - used_cpu, memory_mb=int(memory - used_memory), gpu=int(gpu - used_gpu)
        )
        return ClusterCapacity(
            cpu=cpu, memory_mb=int(memory), gpu=int(gpu), gpu_model=model, free=free
        )

    async def isolation(self) -> JobIsolation:
        # Each pod is its own set of namespaces and sees only its volumes; it runs as the uid
        # the control plane gives (runAsUser), never root.
        return JobIsolation(own_uid=True, sandbox=True)

    def pod_manifest(self, spec: WorkloadSpec, namespace: str) -> dict[str, Any]:
        resources = spec.resources
        limits: dict[str, str] = {
            "cpu": f"{math.ceil(resources.cpu * 1000)}m",
            "memory": quantity_mb(resources.memory_mb),
        }
        if resources.gpu:
            limits[GPU_RESOURCE] = str(resources.gpu)
        annotations = {JOB_ID: spec.job_id}
        if spec.life_span_s is not None:
            annotations[LIFE_SPAN] = str(spec.life_span_s)
        if self._pod_annotations is not None:
            annotations.update(self._pod_annotations(spec))
        security: dict[str, Any] = {"runAsNonRoot": True, "allowPrivilegeEscalation": False}
        if spec.uid is not None:
            security["runAsUser"] = spec.uid
        if spec.gid is not None:
            security["runAsGroup"] = spec.gid
        # Secret variables by reference to the job's Secret: never a value in the pod.
        env: list[dict[str, Any]] = [
            {"name": k, "value": v} for k, v in spec.env.items() if k not in spec.secret_env
        ]
        for index, name in enumerate(spec.secret_env):
            ref = {"name": secret_name(spec.job_id), "key": secret_env_key(index, name)}
            env.append({"name": name, "valueFrom": {"secretKeyRef": ref}})
        shm: dict[str, Any] = {"medium": "Memory"}
        if resources.shm_mb:
            shm["sizeLimit"] = quantity_mb(resources.shm_mb)
        volumes, mounts = self._volumes(spec)
        container: dict[str, Any] = {
            "name": CONTAINER,
            "image": self._image,
            "command": list(spec.command),
            "env": env,
            "resources": {"requests": dict(limits), "limits": limits},
            "securityContext": security,
            "volumeMounts": [{"name": "shm", "mountPath": "/dev/shm"}, *mounts],
            "stdin": spec.tty,
            "tty": spec.tty,
        }
        if spec.working_dir:
            container["workingDir"] = spec.working_dir
        if spec.storage_workdir is not None:
            container["workingDir"] = WORK
        exposure = http_exposure(spec)
        if exposure is not None:
            container["ports"] = [
                {"name": "http", "containerPort": exposure.port, "protocol": "TCP"}
            ]
        pod_spec: dict[str, Any] = {
            "restartPolicy": "Never",
            "serviceAccountName": SERVICE_ACCOUNT,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": math.ceil(self._default_grace_s),
            "containers": [container],
            "volumes": [{"name": "shm", "emptyDir": shm}, *volumes],
        }
        if spec.gid is not None and (spec.secret_files or volumes):
            # The volumes' files go to the job's group (a secret's 0400 becomes 0440
            # root:gid: the kubelet adds the group's read), their roots changed only once.
            pod_spec["securityContext"] = {
                "fsGroup": spec.gid,
                "fsGroupChangePolicy": "OnRootMismatch",
            }
        if self._priority_classes:
            pod_spec["priorityClassName"] = PRIORITY_CLASSES[spec.priority][0]
        if spec.life_span_s is not None:
            pod_spec["activeDeadlineSeconds"] = max(1, math.ceil(spec.life_span_s))
        if resources.gpu:
            # GPU nodes are usually tainted so that only pods asking for GPUs land there.
            pod_spec["tolerations"] = [
                {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
            ]
        if resources.gpu and resources.gpu_model:
            pod_spec["nodeSelector"] = {GPU_PRODUCT_LABEL: resources.gpu_model}
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": pod_name(spec.job_id),
                "namespace": namespace,
                "labels": {
                    MANAGED_BY: "glia",
                    INSTANCE_LABEL: self._instance,
                    JOB_LABEL: pod_name(spec.job_id),
                    OWNER_LABEL: label_value(spec.env.get("GLIA_JOB_OWNER", "")),
                    PRESET_LABEL: label_value(spec.env.get("GLIA_PRESET", "")),
                },
                "annotations": annotations,
                "finalizers": [FINALIZER],
            },
            "spec": pod_spec,
        }

    def _volumes(self, spec: WorkloadSpec) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The pod's volumes and the container's mounts for the job's secret files, disks and
        storage (BadInput for what this runtime cannot give it)."""
        volumes: list[dict[str, Any]] = []
        mounts: list[dict[str, Any]] = []
        if spec.secret_files:
            volumes.append(
                {
                    "name": SECRET_VOLUME,
                    "secret": {
                        "secretName": secret_name(spec.job_id),
                        "defaultMode": SECRET_MODE,
                    },
                }
            )
            for index, secret in enumerate(spec.secret_files):
                # One file of the Secret at its path (subPath), not a directory over it.
                mounts.append(
                    {
                        "name": SECRET_VOLUME,
                        "mountPath": secret.mount_path,
                        "subPath": f"file.{index}",
                        "readOnly": True,
                    }
                )
        secret_paths = {secret.mount_path for secret in spec.secret_files}
        storage = False
        for volume in spec.volumes:
            if volume.kind is VolumeKind.SECRET:
                if volume.mount_path not in secret_paths:
                    raise BadInput(
                        f"secret volume at {volume.mount_path} has no content",
                        fields={"volumes": "secret without content"},
                    )
            elif volume.kind is VolumeKind.DISK:
                name = f"disk-{len(volumes)}"
                claim = {"claimName": disk_claim_name(volume.ref), "readOnly": volume.read_only}
                volumes.append({"name": name, "persistentVolumeClaim": claim})
                mounts.append(
                    {"name": name, "mountPath": volume.mount_path, "readOnly": volume.read_only}
                )
            else:
                storage = True
                mounts.append(
                    {
                        "name": STORAGE_VOLUME,
                        "mountPath": volume.mount_path,
                        "subPath": self._storage_sub_path(volume.ref),
                        "readOnly": volume.read_only,
                    }
                )
        if spec.storage_workdir is not None:
            storage = True
            mounts.append(
                {
                    "name": STORAGE_VOLUME,
                    "mountPath": WORK,
                    "subPath": self._storage_sub_path(spec.storage_workdir, "storageWorkdir"),
                }
            )
        if storage:
            claim = {"claimName": self._storage_claim}
            volumes.append({"name": STORAGE_VOLUME, "persistentVolumeClaim": claim})
        return volumes, mounts

    def _storage_sub_path(self, uri: str, field: str = "volumes") -> str:
        if self._storage_claim is None:
            raise BadInput(
                "this cluster cannot mount its storage into jobs (no storage claim)",
                fields={field: "not supported here"},
            )
        return storage_sub_path(uri)

    async def _ensure_namespace(self, namespace: str) -> None:
        if namespace in self._namespaces:
            return
        core = self._core
        for create in (
            lambda: core.create_namespace(
                {"metadata": {"name": namespace, "labels": {MANAGED_BY: "glia"}}}
            ),
            lambda: core.create_namespaced_service_account(
                namespace,
                {"metadata": {"name": SERVICE_ACCOUNT}, "automountServiceAccountToken": False},
            ),
        ):
            try:
                await create()
            except ApiException as error:
                if error.status != 409:
                    raise
        self._namespaces.add(namespace)

    async def start(self, spec: WorkloadSpec) -> WorkloadState:
        if self._api is None:
            raise RuntimeError("runtime is not open")
        check_job_id(spec.job_id)
        if not spec.command:
            raise BadInput("empty command", fields={"command": "empty"})
        if (known := self._workloads.get(spec.job_id)) is not None:
            return known.state
        if spec.resources.gpu:
            # GPUs are the contract's to refuse (Conflict), not left to wait Unschedulable.
            free = (await self.capacity()).free
            if free is not None and spec.resources.gpu > free.gpu:
                raise Conflict(
                    f"{spec.resources.gpu} GPUs asked for, {max(0, free.gpu)} free in the cluster"
                )
        namespace = self._namespace_for(spec)
        manifest = self.pod_manifest(spec, namespace)  # BadInput before anything is made
        exposure = http_exposure(spec)
        await self._ensure_namespace(namespace)
        await self._ensure_quota(namespace, spec.running_limit)
        if self._priority_classes and spec.priority not in self._ensured_priorities:
            scheduling: Any = client.SchedulingV1Api(self._api)
            manifest_class = priority_class_manifest(spec.priority, preempt=self._preempt)
            await self._create(scheduling.create_priority_class(manifest_class))
            self._ensured_priorities.add(spec.priority)
        for volume in spec.volumes:
            if volume.kind is VolumeKind.DISK:
                await self._ensure_disk(spec, volume.ref, namespace)
        if exposure is not None and exposure.host and self._forward_auth_url:
            await self._ensure_middleware(namespace)
        # The Secret before the pod that refers to it (a kubelet would otherwise retry the
        # mount, and fail a variable it cannot resolve); then owned by the pod.
        secret = secret_manifest(spec, namespace)
        if secret is not None:
            await self._create(self._core.create_namespaced_secret(namespace, secret))
        try:
            created = await self._create_pod(namespace, manifest, spec.running_limit)
        except ApiException as error:
            if error.status != 409:
                if secret is not None:
                    await self._delete(
                        self._core.delete_namespaced_secret(secret_name(spec.job_id), namespace)
                    )
                raise
            created = await _json(
                await self._core.read_namespaced_pod(
                    manifest["metadata"]["name"], namespace, _preload_content=False
                )
            )
        owners = {"metadata": {"ownerReferences": owned_by(created)}}
        if secret is not None:
            await self._core.patch_namespaced_secret(secret_name(spec.job_id), namespace, owners)
        if exposure is not None:
            await self._expose(spec, namespace, exposure, created)
        self._apply("ADDED", created)
        return self._workloads[spec.job_id].state

    async def _create_pod(
        self, namespace: str, manifest: dict[str, Any], running_limit: int | None
    ) -> dict[str, Any]:
        """The pod as created. The API server's admission reads PriorityClasses and
        ResourceQuotas from caches: a refusal by a PriorityClass made a moment ago, or by a
        quota whose limit is not the one just set (``running_limit``: raised or removed a
        moment ago), is retried for a few seconds; a refusal by the current limit is not."""
        deadline = asyncio.get_running_loop().time() + PRIORITY_CLASS_WAIT_S
        while True:
            try:
                return await _json(
                    await self._core.create_namespaced_pod(
                        namespace, manifest, _preload_content=False
                    )
                )
            except ApiException as error:
                stale = error.status == 403 and (
                    "no PriorityClass" in str(error.reason)
                    or _stale_quota(str(error.reason), running_limit)
                )
                if not stale or asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.1)

    @staticmethod
    async def _create(call: Awaitable[Any]) -> None:
        """An API create; one that exists already (409: a start again) is as good."""
        try:
            await call
        except ApiException as error:
            if error.status != 409:
                raise

    @staticmethod
    async def _delete(call: Awaitable[Any]) -> None:
        try:
            await call
        except ApiException as error:
            if error.status != 404:
                raise

    async def _ensure_disk(self, spec: WorkloadSpec, disk_id: str, namespace: str) -> None:
        """The disk's claim, made on its first use (the size the spec says, or the default);
        one that exists is used as it is. Not owned by any pod: a disk outlives its jobs."""
        name = disk_claim_name(disk_id)
        try:
            await self._core.read_namespaced_persistent_volume_claim(name, namespace)
            return
        except ApiException as error:
            if error.status != 404:
                raise
        size = spec.disk_sizes.get(disk_id, self._default_disk_bytes)
        claim = disk_claim_manifest(disk_id, namespace, size, self._disk_storage_class)
        await self._create(self._core.create_namespaced_persistent_volume_claim(namespace, claim))

    async def _ensure_quota(self, namespace: str, limit: int | None) -> None:
        """The namespace's ResourceQuota `glia-jobs` holding its running pods to the org's
        limit (`WorkloadSpec.running_limit`): made, changed or removed when the limit the
        control plane sends is not the one this runtime last set there."""
        if self._quotas.get(namespace, "unknown") == limit:
            return
        core = self._core
        if limit is None:
            await self._delete(core.delete_namespaced_resource_quota(QUOTA, namespace))
        else:
            quota = resource_quota_manifest(limit)
            try:
                await core.create_namespaced_resource_quota(namespace, quota)
            except ApiException as error:
                if error.status != 409:
                    raise
                await core.replace_namespaced_resource_quota(QUOTA, namespace, quota)
        self._quotas[namespace] = limit

    # --- disks (the cluster's DiskStore) --------------------------------------------------------

    @property
    def disks(self) -> KubernetesDisks:
        """The cluster's disk store, for the control plane's disk API."""
        return KubernetesDisks(self)

    async def delete_disk(self, disk_id: str) -> None:
        """Every claim of the disk, in whatever project's namespace a job made one."""
        core = self._core
        claims = await core.list_persistent_volume_claim_for_all_namespaces(
            label_selector=f"{MANAGED_BY}=glia,{DISK_LABEL}={label_value(disk_id)}"
        )
        for claim in claims.items:
            if (claim.metadata.annotations or {}).get("glia.dev/disk-id") != disk_id:
                continue  # another disk whose id reads the same as a label value
            await self._delete(
                core.delete_namespaced_persistent_volume_claim(
                    claim.metadata.name, claim.metadata.namespace
                )
            )

    async def _ensure_middleware(self, namespace: str) -> None:
        if namespace in self._middlewares or self._forward_auth_url is None:
            return
        custom: Any = client.CustomObjectsApi(self._api)
        try:
            await custom.create_namespaced_custom_object(
                TRAEFIK_GROUP,
                TRAEFIK_VERSION,
                namespace,
                MIDDLEWARES,
                middleware_manifest(namespace, self._forward_auth_url),
            )
        except ApiException as error:
            if error.status == 404:
                raise Unavailable(
                    "the cluster has no Traefik Middleware resource (traefik.io/v1alpha1): "
                    "install Traefik's CRDs to expose jobs over HTTP"
                ) from error
            if error.status != 409:
                raise
        self._middlewares.add(namespace)

    async def _expose(
        self,
        spec: WorkloadSpec,
        namespace: str,
        exposure: HttpExposure,
        pod: Mapping[str, Any],
    ) -> None:
        """The job's Service, and its Ingress behind the ForwardAuth Middleware, both owned
        by the pod (they go with it) and deleted by ``forget``."""
        service = service_manifest(spec, namespace, self._instance, exposure.port)
        service["metadata"]["ownerReferences"] = owned_by(pod)
        await self._create(self._core.create_namespaced_service(namespace, service))
        if exposure.host is None or self._forward_auth_url is None:
            return
        ingress = ingress_manifest(
            spec, namespace, self._instance, exposure.host, exposure.port, self._ingress_class
        )
        ingress["metadata"]["ownerReferences"] = owned_by(pod)
        networking: Any = client.NetworkingV1Api(self._api)
        await self._create(networking.create_namespaced_ingress(namespace, ingress))

    def _known(self, job_id: str) -> _Workload:
        workload = self._workloads.get(job_id)
        if workload is None or workload.forgotten:
            raise NotFound(f"workload {job_id} not found")
        return workload

    async def stop(self, job_id: str, *, grace_s: float = 10.0) -> None:
        workload = self._known(job_id)
        if workload.state.phase == WorkloadPhase.EXITED:
            return
        await self._end(job_id, JobReason.USER_REQUESTED, grace_s)

    async def _end(self, job_id: str, reason: JobReason, grace_s: float) -> None:
        workload = self._workloads.get(job_id)
        if workload is None or workload.state.phase == WorkloadPhase.EXITED:
            return
        workload.ended_at = workload.ended_at or utcnow()
        core = self._core
        try:
            await core.patch_namespaced_pod(
                workload.name,
                workload.namespace,
                {"metadata": {"annotations": {STOP_REASON: reason.value}}},
            )
            await core.delete_namespaced_pod(
                workload.name, workload.namespace, grace_period_seconds=math.ceil(grace_s)
            )
        except ApiException as error:
            if error.status != 404:
                raise

    async def set_life_span(self, job_id: str, life_span_s: float | None) -> None:
        workload = self._known(job_id)
        if workload.state.phase == WorkloadPhase.EXITED:
            return
        annotations: dict[str, str | None] = {
            LIFE_SPAN: None if life_span_s is None else str(life_span_s)
        }
        patched = await self._core.patch_namespaced_pod(
            workload.name,
            workload.namespace,
            {"metadata": {"annotations": annotations}},
            _preload_content=False,
        )
        workload.pod = await _json(patched)
        if workload.life_span is not None:
            workload.life_span.cancel()
            workload.life_span = None
        self._arm_life_span(workload)

    async def states(self, job_ids: Sequence[str]) -> list[WorkloadState]:
        return [
            workload.state
            if (workload := self._workloads.get(job_id)) and not workload.forgotten
            else WorkloadState(job_id=job_id, phase=WorkloadPhase.MISSING)
            for job_id in job_ids
        ]

    async def active_workloads(self) -> list[WorkloadState]:
        return [
            w.state
            for w in self._workloads.values()
            if w.state.phase != WorkloadPhase.EXITED and not w.forgotten
        ]

    def watch(self, *, after: str | None = None) -> AbstractAsyncContextManager[WorkloadWatch]:
        return self._feed.watch(after=after)

    async def forget(self, job_id: str) -> None:
        workload = self._workloads.get(job_id)
        if workload is None or workload.forgotten:
            return
        if workload.state.phase != WorkloadPhase.EXITED:
            raise Conflict(f"workload {job_id} has not ended")
        workload.forgotten = True
        await self._streams.detach(workload.namespace, workload.name)
        core = self._core
        try:
            await core.patch_namespaced_pod(
                workload.name, workload.namespace, {"metadata": {"finalizers": None}}
            )
            await core.delete_namespaced_pod(
                workload.name, workload.namespace, grace_period_seconds=0
            )
        except ApiException as error:
            if error.status != 404:
                raise
        # What it owned goes with the pod (the garbage collector); at once here.
        job_name, namespace = workload.name, workload.namespace
        await self._delete(core.delete_namespaced_secret(secret_name(job_id), namespace))
        await self._delete(core.delete_namespaced_service(job_name, namespace))
        networking: Any = client.NetworkingV1Api(self._api)
        await self._delete(networking.delete_namespaced_ingress(job_name, namespace))
        self._wake()

    # --- output ---------------------------------------------------------------------------------

    async def logs(
        self,
        job_id: str,
        *,
        since: datetime | None = None,
        offset: int | None = None,
        tail: int | None = None,
        follow: bool = False,
    ) -> AsyncIterator[LogBatch]:
        """The pod's log through the API (kubernetes_logs.py), in batches; with ``follow``,
        the kubelet's stream, opened again (its lines already given left out) when it breaks
        while the workload runs, and ended once the workload has ended and the stream gone
        quiet. Offsets count the output's bytes (each line's text and its newline) from the
        start, as the pod's log gives it: the log API has no offsets of its own."""
        check_log_start(since, offset, tail)
        workload = self._known(job_id)
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        done = 0  # lines of the log given or passed over so far
        done_bytes = 0
        if not follow or tail is not None or offset is not None:
            # Where to start is known only from the log as it is: read it once.
            lines = await read_lines(self._core, workload.name, workload.namespace, CONTAINER)
            if tail is not None:
                start = max(len(lines) - tail, 0)
            else:  # from the line that holds the offset (0: the first)
                start, passed = 0, 0
                while start < len(lines) and passed + lines[start].size <= (offset or 0):
                    passed += lines[start].size
                    start += 1
            before = sum(line.size for line in lines[:start])
            for batch in self._batches(lines[start:], since, before):
                yield batch
            done = len(lines)
            done_bytes = sum(line.size for line in lines)
            if not follow:
                return
        while self._api is not None and not workload.forgotten:
            ended = workload.state.phase == WorkloadPhase.EXITED
            changed = self._changed
            async for lines in follow_lines(
                self._core,
                workload.name,
                workload.namespace,
                CONTAINER,
                skip=done,
                idle_s=LOG_IDLE_S,
            ):
                if not lines:
                    if workload.state.phase == WorkloadPhase.EXITED or workload.forgotten:
                        return  # ended, and nothing more came for a while
                    continue
                for batch in self._batches(lines, since, done_bytes):
                    yield batch
                done += len(lines)
                done_bytes += sum(line.size for line in lines)
            if ended or workload.state.phase == WorkloadPhase.EXITED:
                return  # the stream ended with the workload
            # No log yet (the container is starting), or the stream broke: look again when
            # the workload changes, or in a second.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=1.0)

    @staticmethod
    def _batches(
        lines: Sequence[PodLine], since: datetime | None, done_bytes: int
    ) -> Iterator[LogBatch]:
        """``lines`` as batches of at most 1,000, each ending at its byte offset; those
        stamped before ``since`` left out (their bytes still counted)."""
        batch: list[LogLine] = []
        for line in lines:
            done_bytes += line.size
            at = line.at or utcnow()
            if since is not None and at < since:
                continue
            batch.append(LogLine(time=at, stream=LogStream.STDOUT, text=line.text))
            if len(batch) == 1000:
                yield LogBatch.of(batch, end=done_bytes)
                batch = []
        if batch:
            yield LogBatch.of(batch, end=done_bytes)

    async def log_size(self, job_id: str) -> int:
        return len(await self._output(job_id))

    async def _output(self, job_id: str) -> bytes:
        workload = self._known(job_id)
        try:
            text = await self._core.read_namespaced_pod_log(
                workload.name, workload.namespace, container=CONTAINER
            )
        except ApiException as error:
            if error.status in (400, 404):
                return b""
            raise Unavailable(f"the pod's log is unavailable: {error.reason}") from error
        return str(text).encode()

    async def read_log(
        self, job_id: str, *, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        if offset < 0 or (length is not None and length < 0):
            raise BadInput("offset and length must not be negative")
        output = await self._output(job_id)
        end = len(output) if length is None else min(len(output), offset + length)
        if offset < end:
            yield output[offset:end]

    # --- exec and ports (kubernetes_streams.py) --------------------------------------------------

    def _running(self, job_id: str) -> _Workload:
        workload = self._known(job_id)
        if workload.state.phase != WorkloadPhase.RUNNING:
            raise Conflict(f"job {job_id} is not running")
        return workload

    async def exec(
        self,
        job_id: str,
        command: Sequence[str],
        *,
        tty: bool = False,
        rows: int | None = None,
        cols: int | None = None,
    ) -> ExecSession:
        workload = self._running(job_id)
        return await self._streams.exec(
            workload.namespace, workload.name, command, tty=tty, rows=rows, cols=cols
        )

    async def connect(
        self, job_id: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        workload = self._running(job_id)
        return await self._streams.connect(workload.namespace, workload.name, port)

    # --- not yet --------------------------------------------------------------------------------

    async def write_stdin(self, job_id: str, data: bytes) -> None:
        await self._on_terminal(job_id, lambda terminal: terminal.write(data))

    async def resize_terminal(self, job_id: str, rows: int, cols: int) -> None:
        await self._on_terminal(job_id, lambda terminal: terminal.resize(rows, cols))

    async def _on_terminal(
        self, job_id: str, act: Callable[[PodExecSession], Awaitable[None]]
    ) -> None:
        """``act`` on the job's terminal (pods/attach), attached again once if the session
        it had ended (the API server closes idle streams)."""
        workload = self._known(job_id)
        if not workload.pod["spec"]["containers"][0].get("tty"):
            raise Conflict(f"job {job_id} has no terminal")
        workload = self._running(job_id)
        for attempt in (1, 2):
            terminal = await self._streams.terminal(workload.namespace, workload.name)
            try:
                await act(terminal)
                return
            except (Conflict, Unavailable):
                await self._streams.detach(workload.namespace, workload.name)
                if attempt == 2:
                    raise

    async def telemetry(self, job_id: str | None = None) -> AsyncGenerator[TelemetryTick, None]:
        """No samples yet (metrics-server is not read): it ends when its workload does (at
        once for an ended one), or when the runtime closes."""
        workload = self._known(job_id) if job_id is not None else None
        while self._api is not None:
            if workload is not None and (
                workload.state.phase == WorkloadPhase.EXITED or workload.forgotten
            ):
                return
            await self._changed.wait()
        return
        yield  # an async generator


class KubernetesDisks:
    """A Kubernetes cluster's disks (`glia.disks.DiskStore`): each a PersistentVolumeClaim in
    its project's namespace, named after the disk (`disk_claim_name`).

    Made when a job first mounts the disk, with the size the spec carries (the control plane
    fills ``WorkloadSpec.disk_sizes`` from the disk's record): until then there is nothing to
    make, as the claim's namespace is the job's. ``delete`` removes the disk's claims
    wherever they are (and with them, under the usual reclaim policy, the volume); how much a
    claim holds the API does not say."""

    def __init__(self, runtime: KubernetesRuntime) -> None:
        self._runtime = runtime

    async def create(self, disk_id: str, size_bytes: int) -> None:
        return None

    async def delete(self, disk_id: str) -> None:
        await self._runtime.delete_disk(disk_id)

    async def used_bytes(self, disk_id: str) -> int | None:
        return None
