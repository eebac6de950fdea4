"""Making a `KubernetesRuntime` from settings: how it reaches the API server (a kubeconfig
file, else the in-cluster config of the pod it runs in), the prefix of its namespaces, the
annotations every pod gets, and the instance label that keeps one Glia cluster's pods apart
from another's on the same Kubernetes cluster. Used by `glia gateway serve --runtime
kubernetes` and by the control plane's embedded gateway of a `local` + `kubernetes` cluster."""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path

from kubernetes_asyncio import client, config

from cluster_gateway.gateway import WorkloadSpec
from cluster_gateway.runtimes.kubernetes import DEFAULT_IMAGE, KubernetesRuntime, project_namespace

DEFAULT_NAMESPACE_PREFIX = "glia-"
# Where the kubelet mounts a pod's ServiceAccount token and the cluster's CA.
SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
_PREFIX = re.compile(r"[a-z0-9]([a-z0-9-]{0,20})?")


async def load_configuration(
    kubeconfig: Path | None,
    *,
    service_account: Path = SERVICE_ACCOUNT,
    environ: Mapping[str, str] | None = None,
) -> client.Configuration:
    """The API server's address and credentials: from ``kubeconfig`` (its current context)
    when given, else in-cluster: the pod's ServiceAccount token and CA (in
    ``service_account``; the token read again as the kubelet rotates it) and the
    KUBERNETES_SERVICE_HOST/PORT the kubelet sets (in ``environ``, the process's by default).
    Raises ValueError when neither works."""
    configuration = client.Configuration()
    if kubeconfig is not None:
        try:
            await config.load_kube_config(
                config_file=str(kubeconfig),
                client_configuration=configuration,
                persist_config=False,
            )
        except (OSError, config.ConfigException) as error:
            raise ValueError(f"cannot load the kubeconfig {kubeconfig}: {error}") from None
        return configuration
    try:
        config.load_incluster_config(
            client_configuration=configuration,
            token_filename=str(service_account / "token"),
            cert_filename=str(service_account / "ca.crt"),
            environ=os.environ if environ is None else dict(environ),
        )
    except config.ConfigException as error:
        raise ValueError(
            f"no kubeconfig given and not inside a pod of a Kubernetes cluster ({error})"
        ) from None
    return configuration


def namespace_with_prefix(prefix: str) -> Callable[[WorkloadSpec], str]:
    """A namespace per org and project under ``prefix`` (`project_namespace`)."""
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(
            "a namespace prefix is up to 22 lowercase letters, digits and '-', starting with a "
            "letter or digit"
        )

    return functools.partial(project_namespace, prefix=prefix)


def kubernetes_runtime(
    configuration: client.Configuration,
    *,
    cluster: str,
    namespace_prefix: str = DEFAULT_NAMESPACE_PREFIX,
    pod_annotations: Mapping[str, str] | None = None,
    image: str = DEFAULT_IMAGE,
    default_grace_s: float = 10.0,
    storage_claim: str | None = None,
    forward_auth_url: str | None = None,
) -> KubernetesRuntime:
    """The runtime of Glia cluster ``cluster``: its pods carry ``glia.dev/instance=<cluster>``
    (so that a gateway finds its own pods again, and only those), in a namespace per org
    and project under ``namespace_prefix``, with ``pod_annotations`` added to each; the cluster's
    storage is the claim ``storage_claim`` (storage volumes are refused without one), and
    exposed jobs' Ingresses ask ``forward_auth_url`` (the control plane's `/auth/forward`)."""
    extra = dict(pod_annotations or {})
    return KubernetesRuntime(
        configuration,
        image=image,
        namespace_for=namespace_with_prefix(namespace_prefix),
        pod_annotations=(lambda spec: extra) if extra else None,
        default_grace_s=default_grace_s,
        instance=cluster,
        storage_claim=storage_claim,
        forward_auth_url=forward_auth_url,
    )
