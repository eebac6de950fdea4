"""The one settings object. Built by `load_settings` from an environment mapping.

Nothing else in Glia reads ``os.environ``: the server gets a `Settings`, tests build their own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from glia.clusters import ClusterRuntime


def default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "glia"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GLIA_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8080
    # Public URL clients use to reach this server; defaults to http://host:port.
    public_url: str | None = None

    data_dir: Path = Field(default_factory=default_data_dir)
    # Empty means SQLite in data_dir (the embedded default).
    database_url: str | None = None
    # Empty means the in-process event bus.
    redis_url: str | None = None
    # Channels of this installation on a Redis shared with others.
    redis_prefix: str = "glia:"
    secret_key: SecretStr | None = None
    # The keys that seal secrets and imported buckets' credentials at rest: comma-separated
    # Fernet keys, the first sealing, every one opening (control_plane/keyring.py); unset,
    # one derived from secret_key seals. Rotate with `glia admin rotate-secrets-key`.
    secrets_keys: SecretStr | None = None
    # `glia serve` creates the user "admin" with this password when no such user exists.
    admin_password: SecretStr | None = None

    token_ttl_s: int = 30 * 24 * 3600

    # Service accounts' tokens: a year unless revoked.
    service_account_token_ttl_s: int = 365 * 24 * 3600

    cluster_name: str = "default"
    # The local runtime confines jobs with cgroups where the host allows; off falls back to
    # rlimits only.
    use_cgroups: bool = True
    kill_grace_s: float = 10.0
    # Each user's jobs run under an unprivileged uid (and gid) of their own when the server
    # runs as root: the n-th user gets job_uid_base + n, up to job_uid_count users.
    job_uid_base: int = 200_000
    job_uid_count: int = 65_536
    # A job's output past this many bytes drops its oldest part (with a line saying so).
    job_log_limit_bytes: int = 1024**3
    # The largest file one storage upload may write.
    storage_upload_limit_bytes: int = 64 * 1024**3
    # Buckets made on this cluster: "filesystem" (under data_dir) or "s3": each a bucket of
    # the S3 endpoint below (AWS when unset), named blob_s3_bucket_prefix + a random suffix.
    blob_provider: str = "filesystem"
    blob_s3_endpoint_url: str | None = None
    blob_s3_region: str | None = None
    blob_s3_access_key_id: str | None = None
    blob_s3_secret_access_key: SecretStr | None = None
    blob_s3_bucket_prefix: str = "glia-"
    # importBucket may name an endpoint on this host or a private network (off: public only).
    blob_import_private_endpoints: bool = False
    # PATH of local jobs; defaults to the PATH of the process that loads the settings.
    job_path: str = "/usr/local/bin:/usr/bin:/bin"

    # The local runtime's GPUs: unset to find the host's NVIDIA GPUs (NVML), else a count or
    # COUNTxMODEL (`2xA100`) standing in for them (tests, hosts NVML does not see); "0": none.
    local_gpus: str | None = None

    # What runs the platform's own cluster's jobs: `local` processes on this host, or
    # `kubernetes` pods (the settings below) — what a control plane in a pod uses, so that no
    # job runs in its pod and each user's jobs are pods of their own (not single-user).
    cluster_runtime: ClusterRuntime = ClusterRuntime.LOCAL
    # `local` clusters of the `kubernetes` runtime (`glia admin add-cluster NAME --runtime
    # kubernetes`, or the platform's own with GLIA_CLUSTER_RUNTIME): the kubeconfig that
    # reaches their API server (its current context; unset: the in-cluster config of the pod
    # the control plane runs in), the prefix of their jobs' namespaces (one per project), the
    # image their pods run (unset: the runtime's default) and annotations every pod gets
    # (JSON, {"key": "value"}).
    kubeconfig: Path | None = None
    k8s_namespace_prefix: str = "glia-"
    k8s_image: str | None = None
    k8s_pod_annotations: dict[str, str] = {}
    # The PersistentVolumeClaim holding such a cluster's storage (jobs mount it by subPath;
    # unset: storage volumes are refused there). Exposed jobs' Ingresses ask this control
    # plane's /auth/forward at its public URL.
    k8s_storage_claim: str | None = None

    # Ended jobs' workloads (their output included) are removed by the local runtime after this.
    workload_retention_s: float = 7 * 24 * 3600

    background_tasks: bool = True
    reconcile_interval_s: float = 5.0
    # How often running jobs pay for their run time, and jobs of a spent balance are
    # cancelled (control_plane/services/jobs/billing.py).
    credits_interval_s: float = 30.0
    # One process at a time controls a cluster (follows it, reconciles it); it holds a lease
    # for this long, renews it every third of that, and another process takes over once it
    # expires.
    cluster_lease_ttl_s: float = 20.0
    # How often each cluster's gateway is asked for its capacity (its heartbeat), and how
    # long it has to answer before it counts as unreachable (control_plane/workers.py).
    heartbeat_interval_s: float = 5.0
    heartbeat_timeout_s: float = 5.0
    # Jobs' telemetry (control_plane/services/telemetry.py): how often the local runtime samples
    # each running job (at least 1 s), how often the controller writes what it got, how often
    # it turns samples older than an hour into one-minute points and removes points past the
    # retention.
    telemetry_interval_s: float = 1.0
    telemetry_flush_interval_s: float = 5.0
    telemetry_compact_interval_s: float = 60.0
    telemetry_retention_s: float = 30 * 24 * 3600

    max_query_depth: int = 10
    max_query_tokens: int = 2000
    # Fields an operation may resolve, a list counted as many times as its page asks
    # (`first`): a full page of 500 jobs with every field is about 20,000.
    max_query_cost: int = 25_000
    # A request body larger than this is refused (413) before it is read whole.
    max_request_bytes: int = 1024 * 1024
    # Login attempts, per user name and per client address (the `limits` notation).
    login_rate_per_user: str = "10/minute"
    login_rate_per_address: str = "60/minute"
    # WebSocket connections one user may hold open at once, and subscriptions on each and in
    # all (of this process).
    max_connections_per_user: int = 20
    max_subscriptions_per_connection: int = 50
    max_subscriptions_per_user: int = 100
    # Jobs one user may have unfinished (pending, running, suspended) at once, on all
    # clusters: the queue in the database has a bound however fast one account submits.
    max_unfinished_jobs_per_user: int = Field(default=10_000, ge=1)

    # Exposed jobs (glia run --http-port) are reached at http://LABEL.<jobs_domain>:<port>/,
    # the scheme and port of the public URL; *.localhost resolves to this host by itself
    # (curl, browsers). In production: a wildcard DNS name pointing at the control plane.
    jobs_domain: str = "jobs.localhost"
    # The job proxy's patience with a job: to connect, and between two reads of its answer.
    http_proxy_connect_timeout_s: float = 5.0
    http_proxy_read_timeout_s: float = 300.0
    # How long a browser's sign-in on a job's host (the glia_session cookie) lasts.
    ingress_session_ttl_s: int = 12 * 3600

    log_format: str = "console"  # "console" or "json"
    log_level: str = "INFO"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'glia.db'}"

    @property
    def effective_public_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    def job_url(self, host_label: str) -> str:
        """An exposed job's URL: ``http://LABEL.jobs.localhost:8080/`` by default."""
        parts = urlsplit(self.effective_public_url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host_label}.{self.jobs_domain}{port}/"

    @property
    def job_base_env(self) -> dict[str, str]:
        """What every local job starts with, before its own variables."""
        return {
            "PATH": self.job_path,
            "LANG": "C.UTF-8",
            "HOME": str(Path.home()),
            # Live logs need the output as it is printed, not when a buffer fills.
            "PYTHONUNBUFFERED": "1",
        }

    @property
    def runtime_dir(self) -> Path:
        return self.data_dir / "clusters" / self.cluster_name


def load_settings(env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build settings from ``env`` (GLIA_* keys) with explicit overrides on top.

    With ``env=None`` pydantic-settings reads the process environment: that is the only place
    the process environment is consulted.
    """
    if env is None:
        overrides.setdefault(
            "job_path", os.environ.get("PATH", Settings.model_fields["job_path"].default)
        )
        return Settings(**overrides)  # type: ignore[arg-type]
    if "PATH" in env:
        overrides.setdefault("job_path", env["PATH"])
    values: dict[str, object] = {
        key[len("GLIA_") :].lower(): value for key, value in env.items() if key.startswith("GLIA_")
    }
    values.update(overrides)
    return Settings.model_validate(values)
