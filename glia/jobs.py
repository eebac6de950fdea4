"""Jobs: their statuses and reasons, what a submission may ask for, and what a job is.

The status machine's rules (which status may follow which) live here because every side
reasons with them; the control plane applies them (``control_plane.services.jobs.status``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

from pydantic import Field, field_validator, model_validator

from glia.auth import User
from glia.clusters import Resources
from glia.errors import BadInput
from glia.model import DescribedEnum, Model
from glia.pages import OrderDirection
from glia.storage import parse_storage_uri
from glia.volumes import MAX_SECRET_ENV, SecretEnv, Volume, check_volumes

JOB_ID_PREFIX = "job-"
# Patterns are matched whole (`fullmatch`): `$` would let a trailing newline through.
# Lowercase words joined by single dashes: DNS-label safe, no leading, trailing or double dash.
JOB_NAME_RE = re.compile(r"[a-z](-?[a-z0-9])*")
MIN_JOB_NAME = 3
MAX_JOB_NAME = 40
JOB_ID_PREFIX_RE = re.compile(r"job-[0-9a-f-]{0,36}")
TAG_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:=/-]{0,63}")
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
IDEMPOTENCY_KEY_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Variables the platform sets itself (GLIA_JOB_ID, …); a job cannot override them.
RESERVED_ENV_PREFIX = "GLIA_"
MAX_SHARES = 50
MAX_TAGS = 20
MAX_COMMAND_BYTES = 64 * 1024
MAX_ENV_BYTES = 256 * 1024
# Linux refuses to exec with one argument or NAME=value string longer than this
# (MAX_ARG_STRLEN): refused at submission rather than failing the job at start.
MAX_STRING_BYTES = 128 * 1024 - 1
MIN_LIFE_SPAN_S = 1
MAX_DESCRIPTION = 1000
MAX_LIFE_SPAN_S = 30 * 24 * 3600
# A job's host name is `LABEL.<jobs domain>`: `NAME--OWNER` for a named job, else its id.
HOST_LABEL_SEPARATOR = "--"
MAX_HOST_LABEL = 63  # what DNS allows in one label


class JobStatus(DescribedEnum):
    """Where a job is in its life cycle."""

    PENDING = "pending", "Stored and waiting to start: being created, or waiting for capacity"
    RUNNING = "running", "Its workload runs"
    SUSPENDED = "suspended", "Preempted; it runs again when capacity frees"
    SUCCEEDED = "succeeded", "Ended with exit code 0"
    FAILED = "failed", "Ended otherwise: a non-zero exit code, a kill, lost or not started"
    CANCELLED = "cancelled", "Stopped on request, or at the end of its life span"

    @property
    def is_finished(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
UNFINISHED_STATUSES = frozenset(JobStatus) - TERMINAL_STATUSES

_NEXT_STATUSES: Mapping[JobStatus, frozenset[JobStatus]] = {
    JobStatus.PENDING: frozenset({JobStatus.RUNNING, JobStatus.SUSPENDED, *TERMINAL_STATUSES}),
    JobStatus.RUNNING: frozenset({JobStatus.SUSPENDED, *TERMINAL_STATUSES}),
    JobStatus.SUSPENDED: frozenset({JobStatus.PENDING, JobStatus.RUNNING, *TERMINAL_STATUSES}),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}


def can_transition(old: JobStatus, new: JobStatus) -> bool:
    """Whether a job in `old` may move to `new`; a finished job never moves again."""
    return new in _NEXT_STATUSES[old]


class JobReason(DescribedEnum):
    """Why a job is in its status."""

    CREATING = "Creating", "The job is stored and its cluster is starting it"
    SCHEDULING = "Scheduling", "The job waits for its cluster to have room for it"
    COMPLETED = "Completed", "The job's command exited with code 0"
    ERROR = "Error", "The job's command exited with a non-zero code"
    OOM_KILLED = "OOMKilled", "The job used more memory than its preset allows and was killed"
    KILLED = "Killed", "The job was killed by a signal that nobody on the platform sent"
    USER_REQUESTED = "UserRequested", "Somebody killed the job"
    LIFE_SPAN_ENDED = "LifeSpanEnded", "The job ran for its whole life span and was stopped"
    LOST = "Lost", "The cluster lost track of the job (its supervisor or node is gone)"
    START_FAILED = "StartFailed", "The job's command could not be started at all"
    SCHEDULING_TIMEOUT = (
        "SchedulingTimeout",
        "The job could not start within its schedule timeout (or, for a preset without the "
        "scheduler, at once)",
    )
    RESTARTED = "Restarted", "The job's command ended and was started again (its restart policy)"
    QUOTA_EXHAUSTED = (
        "QuotaExhausted",
        "Waits for a seat under a running-jobs quota, or was cancelled when its credits ran out",
    )
    DISK_UNAVAILABLE = (
        "DiskUnavailable",
        "Waits for a disk another job holds; it starts when that job ends",
    )
    PREEMPTED = (
        "Preempted",
        "Stopped to make room for a job of higher priority; it starts again when room returns",
    )
    GATEWAY_UNREACHABLE = (
        "GatewayUnreachable",
        "Its cluster's gateway does not answer: the status shown is the last one known, and "
        "it is brought up to date within seconds of the gateway answering again",
    )


class JobPriority(DescribedEnum):
    """Which waiting jobs start first when room frees: higher priority first, then the
    earlier submitted."""

    LOW = "low", "After every normal and high job waiting"
    NORMAL = "normal", "The default"
    HIGH = "high", "Before every normal and low job waiting"

    @property
    def rank(self) -> int:
        """Stored and sorted by: low 0, normal 1, high 2."""
        return _PRIORITY_RANKS[self]


_PRIORITY_RANKS = {JobPriority.LOW: 0, JobPriority.NORMAL: 1, JobPriority.HIGH: 2}


def priority_of_rank(rank: int) -> JobPriority:
    return next(p for p, r in _PRIORITY_RANKS.items() if r == rank)


class RestartPolicy(DescribedEnum):
    """When a job's command is started again after it ended."""

    NEVER = "never", "The job ends when its command does"
    ON_FAILURE = "on-failure", "Started again when it exits with a non-zero code or is killed"
    ALWAYS = "always", "Started again whenever it ends, until killed or its life span ends"

    def restarts(self, reason: JobReason | None, exit_code: int | None) -> bool:
        """Whether a command that ended so is started again. A kill by a user, the end of the
        life span, a start that failed and a lost workload are never restarted."""
        if self is RestartPolicy.NEVER or reason in _FINAL_REASONS:
            return False
        if self is RestartPolicy.ALWAYS:
            return True
        return not (reason is JobReason.COMPLETED or (reason is None and exit_code == 0))


_FINAL_REASONS = frozenset(
    {
        JobReason.USER_REQUESTED,
        JobReason.LIFE_SPAN_ENDED,
        JobReason.START_FAILED,
        JobReason.LOST,
    }
)


def require_time_zone(moment: datetime | None) -> datetime | None:
    """A time given to the API must say its zone: a bare `2024-05-01T12:00` is ambiguous."""
    if moment is not None and moment.utcoffset() is None:
        raise ValueError(f"the time {moment.isoformat()} has no time zone: add one (Z for UTC)")
    return moment


def is_job_id(value: str) -> bool:
    """Job ids look like `job-<uuid>`; anything else given where a job is expected is a name."""
    return value.startswith(JOB_ID_PREFIX)


def job_uri(cluster: str, org: str, project: str, job_id: str) -> str:
    """`job://CLUSTER/ORG/PROJECT/JOB_ID`"""
    return f"job://{cluster}/{org}/{project}/{job_id}"


def job_host_label(job_id: str, name: str | None, owner: str) -> str:
    """The first label of an exposed job's host name: `NAME--OWNER` for a named job, its id
    otherwise, or when the label would be longer than DNS allows.

    A service account's `/` becomes `--` (`job_host_label(i, "app", "alice/ci") ==
    "app--alice--ci"`); the first `--` always ends the name (names have no `--`). The
    submission falls back to the id where another unfinished job holds the label already.
    """
    if name is None:
        return job_id
    label = f"{name}{HOST_LABEL_SEPARATOR}{owner.replace('/', HOST_LABEL_SEPARATOR)}".lower()
    return label if len(label) <= MAX_HOST_LABEL else job_id


class EnvVar(Model):
    """One environment variable of a job."""

    name: str
    """Letters, digits and '_', not starting with a digit; GLIA_… is the platform's."""
    value: str
    """The value; no NUL byte."""

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not ENV_NAME_RE.fullmatch(name):
            raise ValueError(f"invalid environment variable name {name!r}")
        if name.startswith(RESERVED_ENV_PREFIX):
            raise ValueError(f"{name}: variables starting with GLIA_ are set by the platform")
        return name

    @field_validator("value")
    @classmethod
    def _value(cls, value: str) -> str:
        if "\0" in value:
            raise ValueError("an environment variable's value contains a NUL byte")
        if len(value.encode()) > MAX_STRING_BYTES - 256:
            raise ValueError(
                f"an environment variable's value is longer than {MAX_STRING_BYTES - 256} bytes"
                " (the system's limit for one variable)"
            )
        return value


class JobSubmission(Model):
    """What to run, where, and for how long. Checked on both sides: the SDK refuses what the
    server would, with the same message."""

    command: tuple[str, ...]
    """The program and its arguments, run without a shell; at most 64 KiB in all."""
    cluster: str | None = None
    """The cluster to run on; null for the default one."""
    org: str | None = None
    """The org of the project to run in; null for the caller's personal org (a service
    account: the org of its project)."""
    project: str | None = None
    """The project to run in (its writers may); null for the personal project of the caller
    (a service account: its own project)."""
    share: tuple[str, ...] = ()
    """Users to let read the job (and follow its output) as soon as it exists."""

    @field_validator("share")
    @classmethod
    def _share(cls, share: tuple[str, ...]) -> tuple[str, ...]:
        if len(share) > MAX_SHARES:
            raise ValueError(f"share a job with at most {MAX_SHARES} users at submission")
        return tuple(dict.fromkeys(share))

    preset: str | None = None
    """The cluster's preset to size the job; null for the cluster's first preset."""
    env: tuple[EnvVar, ...] = ()
    """Environment variables, each name once; at most 256 KiB in all."""
    working_dir: str | None = None
    """An absolute path on the cluster's machine to start in; null for a scratch directory
    of the job's own (or `storageWorkdir`)."""
    storage_workdir: str | None = None
    """A directory of the cluster's storage to start in (`storage://CLUSTER/ORG/PROJECT/path`,
    on the job's cluster), which the submitter may write: the job gets it as its working
    directory, writable. `glia run` syncs the local directory there first. Not with
    `workingDir`."""
    name: str | None = None
    """3 to 40 lowercase letters, digits and single '-' between them, starting with a letter
    (`train-2`); unique among the owner's unfinished jobs."""
    tags: tuple[str, ...] = ()
    """At most 20 tags to find the job by (letters, digits and `_.:=/-`, at most 64
    characters each); repeated tags count once."""
    description: str | None = None
    """Free text, at most 1000 characters."""
    life_span_s: float | None = Field(default=None, alias="lifeSpanSeconds")
    """Seconds after which the cluster stops the job (LifeSpanEnded): 1 s to 30 days; null
    for no limit."""
    http_port: int | None = Field(default=None, ge=1, le=65535)
    """The port the job serves HTTP on: the job gets a URL (`httpUrl`) that the platform
    routes to that port; null for none."""
    http_auth: bool = True
    """Whether the job's URL lets in only those who may read the job (true), or anyone."""
    pass_config: bool = False
    """Give the job the API's URL and a token acting for its owner (GLIA_API_URL,
    GLIA_TOKEN), valid while it runs, so that code in the job can use the CLI and SDK."""
    tty: bool = False
    """Run the job under a terminal the cluster holds (its stdin, stdout and stderr; no
    echo), whose input the attach route (`glia attach`) feeds."""
    wait_for_seat: bool = False
    """Over a running-jobs quota, keep the job pending (QuotaExhausted) until a seat frees,
    instead of refusing it (QUOTA_EXCEEDED)."""
    idempotency_key: str | None = None
    """A key of the client's choosing (letters, digits, '_' and '-', at most 64): submitting
    again with the same key returns the job the first submission made instead of a second
    one, so a retry after a lost answer is safe. The SDK and CLI send one per submission."""

    @field_validator("command")
    @classmethod
    def _command(cls, command: tuple[str, ...]) -> tuple[str, ...]:
        if not command:
            raise ValueError("the command must be a non-empty list of strings")
        if not command[0].strip():
            raise ValueError("the command must not start with an empty string")
        if any("\0" in arg for arg in command):
            raise ValueError("an argument of the command contains a NUL byte")
        if sum(len(arg.encode()) for arg in command) > MAX_COMMAND_BYTES:
            raise ValueError(f"the command is longer than {MAX_COMMAND_BYTES} bytes")
        return command

    @field_validator("idempotency_key")
    @classmethod
    def _idempotency_key(cls, key: str | None) -> str | None:
        if key is not None and not IDEMPOTENCY_KEY_RE.fullmatch(key):
            raise ValueError("an idempotency key is 1 to 64 letters, digits, '_' or '-'")
        return key

    @field_validator("env")
    @classmethod
    def _env(cls, env: tuple[EnvVar, ...]) -> tuple[EnvVar, ...]:
        names = [var.name for var in env]
        if len(set(names)) != len(names):
            twice = next(name for name in names if names.count(name) > 1)
            raise ValueError(f"the environment variable {twice} is given twice")
        if sum(len(var.name) + len(var.value.encode()) for var in env) > MAX_ENV_BYTES:
            raise ValueError(f"the environment is larger than {MAX_ENV_BYTES} bytes")
        return env

    @field_validator("working_dir")
    @classmethod
    def _working_dir(cls, working_dir: str | None) -> str | None:
        if working_dir is None:
            return None
        if not working_dir.startswith("/"):
            raise ValueError(
                f"the working directory must be an absolute path, got {working_dir[:200]!r}"
            )
        if "\0" in working_dir or len(working_dir) > 4096:
            raise ValueError("the working directory has a NUL byte or is over 4096 characters")
        return working_dir

    @field_validator("storage_workdir")
    @classmethod
    def _storage_workdir(cls, uri: str | None) -> str | None:
        if uri is None:
            return None
        try:
            return parse_storage_uri(uri, "storageWorkdir").uri
        except BadInput as exc:
            raise ValueError(exc.message) from None

    volumes: tuple[Volume, ...] = ()
    """Storage, disks and secrets to mount (at most 32, one per path); the caller must be
    able to read each (write, unless it is read-only)."""
    secret_env: tuple[SecretEnv, ...] = ()
    """Environment variables whose values are secrets of the job's project (at most 64)."""

    @field_validator("volumes")
    @classmethod
    def _volumes(cls, volumes: tuple[Volume, ...]) -> tuple[Volume, ...]:
        return check_volumes(volumes)

    @field_validator("secret_env")
    @classmethod
    def _secret_env(cls, secret_env: tuple[SecretEnv, ...]) -> tuple[SecretEnv, ...]:
        if len(secret_env) > MAX_SECRET_ENV:
            raise ValueError(f"at most {MAX_SECRET_ENV} secret environment variables")
        for var in secret_env:
            EnvVar(name=var.name, value="")  # the same rules as any variable's name
        return secret_env

    @model_validator(mode="after")
    def _one_workdir(self) -> JobSubmission:
        if self.working_dir is not None and self.storage_workdir is not None:
            raise ValueError("give a working directory or a storage workdir, not both")
        names = {var.name for var in self.env}
        twice = next((var.name for var in self.secret_env if var.name in names), None)
        if twice is not None:
            raise ValueError(f"the environment variable {twice} is given twice")
        return self

    @field_validator("name")
    @classmethod
    def _name(cls, name: str | None) -> str | None:
        if name is not None and not (
            MIN_JOB_NAME <= len(name) <= MAX_JOB_NAME and JOB_NAME_RE.fullmatch(name)
        ):
            raise ValueError(
                f"invalid job name {name[:100]!r}: {MIN_JOB_NAME} to {MAX_JOB_NAME} lowercase "
                "letters, digits and single '-' between them, starting with a letter"
            )
        if name is not None and is_job_id(name):
            raise ValueError(
                f"invalid job name {name!r}: a name may not look like a job id (job-…)"
            )
        return name

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: tuple[str, ...]) -> tuple[str, ...]:
        unique = tuple(dict.fromkeys(tags))
        if len(unique) > MAX_TAGS:
            raise ValueError(f"at most {MAX_TAGS} tags")
        for tag in unique:
            if not TAG_RE.fullmatch(tag):
                raise ValueError(f"invalid tag {tag!r}")
        return unique

    @field_validator("description")
    @classmethod
    def _description(cls, description: str | None) -> str | None:
        if description is not None and len(description) > MAX_DESCRIPTION:
            raise ValueError(f"the description is longer than {MAX_DESCRIPTION} characters")
        return description

    @field_validator("life_span_s")
    @classmethod
    def _life_span(cls, life_span_s: float | None) -> float | None:
        if life_span_s is not None and not MIN_LIFE_SPAN_S <= life_span_s <= MAX_LIFE_SPAN_S:
            raise ValueError(
                f"the life span must be between 1 second and {MAX_LIFE_SPAN_S // 86400} days"
            )
        return life_span_s

    priority: JobPriority = JobPriority.NORMAL
    """Which waiting jobs start first when room frees (then the earlier submitted)."""
    schedule_timeout_s: float | None = Field(default=None, alias="scheduleTimeoutSeconds")
    """Seconds the job may wait for room before it fails (SchedulingTimeout): 1 s to 30
    days; null to wait as long as it takes."""
    restart_policy: RestartPolicy = RestartPolicy.NEVER
    """Whether its command is started again when it ends."""

    @field_validator("schedule_timeout_s")
    @classmethod
    def _schedule_timeout(cls, timeout_s: float | None) -> float | None:
        if timeout_s is not None and not MIN_LIFE_SPAN_S <= timeout_s <= MAX_LIFE_SPAN_S:
            raise ValueError(
                f"the schedule timeout must be between 1 second and {MAX_LIFE_SPAN_S // 86400} days"
            )
        return timeout_s

    @property
    def environment(self) -> dict[str, str]:
        return {var.name: var.value for var in self.env}


class JobFilter(Model):
    """Which jobs to list; every condition given must hold."""

    statuses: tuple[JobStatus, ...] | None = None
    """Jobs in any of these statuses; null for every status."""
    name: str | None = None
    """Jobs with this name."""
    tags: tuple[str, ...] = ()
    """Jobs having all of these tags."""
    description: str | None = None
    """Jobs whose description contains this, ignoring case (ASCII letters on SQLite)."""
    since: datetime | None = None
    """Jobs created at or after this time, with its time zone (UTC: `Z`)."""
    cluster: str | None = None
    """Jobs on this cluster."""
    id_prefix: str | None = None
    """Jobs whose id starts with this (`job-3f2a`): how clients resolve a short id."""
    owner: str | None = None
    """Jobs of the user of this name."""
    org: str | None = None
    """Jobs of projects of this org."""
    project: str | None = None
    """Jobs of projects of this name (with `org`: of that one project)."""

    @field_validator("tags")
    @classmethod
    def _filter_tags(cls, tags: tuple[str, ...]) -> tuple[str, ...]:
        unique = tuple(dict.fromkeys(tags))
        if len(unique) > MAX_TAGS:
            raise ValueError(f"filter on at most {MAX_TAGS} tags")
        return unique

    @field_validator("description")
    @classmethod
    def _filter_description(cls, description: str | None) -> str | None:
        if description is not None and len(description) > MAX_DESCRIPTION:
            raise ValueError(f"the description is longer than {MAX_DESCRIPTION} characters")
        return description or None

    @field_validator("id_prefix")
    @classmethod
    def _id_prefix(cls, prefix: str | None) -> str | None:
        if prefix is not None and not JOB_ID_PREFIX_RE.fullmatch(prefix):
            raise ValueError(f"{prefix!r} is not the start of a job id (job-<hex digits>)")
        return prefix

    @field_validator("since")
    @classmethod
    def _since(cls, since: datetime | None) -> datetime | None:
        return require_time_zone(since)


class JobOrderField(DescribedEnum):
    """What a job listing is ordered by."""

    CREATED_AT = "created_at", "When the job was submitted"
    NAME = "name", "The job's name (jobs without one first), then when it was submitted"


class JobOrder(Model):
    """The order of a job listing."""

    field: JobOrderField = JobOrderField.CREATED_AT
    """What to order by."""
    direction: OrderDirection = OrderDirection.DESC
    """Which way."""


class JobStatusItem(Model):
    """One transition in a job's status history."""

    status: JobStatus
    """The status the job moved to."""
    reason: JobReason | None = None
    """Why; null where the status says it all (running)."""
    description: str | None = None
    """More on why, for people."""
    exit_code: int | None = None
    """The exit code, once the job's command has ended."""
    at: datetime
    """When (UTC)."""


class Job(Model):
    """A command run on a cluster with the resources of a preset, and what became of it."""

    id: str
    """The job's id, `job-<uuid>`."""
    name: str | None = None
    """The name given at submission, if any."""
    uri: str
    """The job's resource URI, `job://CLUSTER/ORG/PROJECT/ID`: what grants refer to."""
    owner: User
    """Who submitted it."""
    cluster_name: str
    """The cluster it runs on."""
    org: str
    """The org it belongs to."""
    project: str
    """The project it belongs to."""
    preset: str
    """The preset it was sized with."""
    resources: Resources
    """What it may use: the preset's resources at submission."""
    command: tuple[str, ...]
    """The program and its arguments."""
    env: dict[str, str | None] = Field(default_factory=dict)
    """The environment variables given at submission (not those the platform adds); the
    values are null for a caller who may read the job but not write it."""
    working_dir: str | None = None
    """The directory it starts in; null for a scratch directory of its own."""
    storage_workdir: str | None = None
    """The directory of its project's storage it starts in, if it was given one."""
    volumes: tuple[Volume, ...] = ()
    """What it mounts: storage as `storage://…`, disks by id, secrets by key."""
    secret_env: tuple[SecretEnv, ...] = ()
    """Its environment variables set from secrets (names and keys; never the values)."""
    tags: tuple[str, ...] = ()
    """Its tags."""
    description: str | None = None
    """The description given at submission."""
    life_span_s: float | None = Field(default=None, alias="lifeSpanSeconds")
    """Seconds after which the cluster stops it; null for no limit."""
    http_port: int | None = None
    """The port it serves HTTP on, if it is exposed."""
    http_auth: bool = True
    """Whether its URL lets in only those who may read it (true), or anyone."""
    http_url: str | None = None
    """Where it is exposed (`http://NAME--OWNER.jobs.localhost:8080/`); null if it is not."""
    pass_config: bool = False
    """Whether it was given the API's URL and a token acting for its owner while it runs."""
    tty: bool = False
    """Whether it runs under a terminal the cluster holds, whose input `glia attach` feeds."""
    status: JobStatus
    """Where it is in its life cycle."""
    reason: JobReason | None = None
    """Why it is in its status."""
    status_description: str | None = None
    """More on why, for people."""
    exit_code: int | None = None
    """Its command's exit code, once it has ended (128 + N when killed by signal N)."""
    created_at: datetime
    """When it was submitted (UTC)."""
    started_at: datetime | None = None
    """When its command started (UTC)."""
    finished_at: datetime | None = None
    """When it ended (UTC)."""
    # A job always has its first (pending) entry: an empty history means it was not loaded.
    history: tuple[JobStatusItem, ...] = ()
    """Every status it went through, oldest first."""
    priority: JobPriority = JobPriority.NORMAL
    """Its place among waiting jobs: higher priority starts first."""
    schedule_timeout_s: float | None = Field(default=None, alias="scheduleTimeoutSeconds")
    """Seconds it may wait for room before it fails; null for no limit."""
    restart_policy: RestartPolicy = RestartPolicy.NEVER
    """Whether its command is started again when it ends."""
    restart_count: int = 0
    """How many times its command was started again."""
    queue_position: int | None = None
    """While it waits for room: its place in its cluster's queue (1 starts next); null
    otherwise."""
    preemptible: bool = False
    """Whether a job of higher priority may suspend it for room (its preset's)."""
    credits_per_hour: float = 0.0
    """What it costs per hour of run time (its preset's price at submission)."""
    credits_spent: float = 0.0
    """The credits its run time has cost so far."""
