"""The Helm chart (deploy/helm/glia): `helm lint`, `helm template` with its defaults and with
overrides, every rendered manifest checked by the test API server (`kubectl apply
--dry-run=server`: its own validation and defaulting), and a real `kubectl apply` whose
Deployments the controllers roll out onto kwok's nodes.

kwok runs no container: the pods it marks Running and Ready never started Glia (there is no
image here either: deploy/Dockerfile cannot be built without a container engine). What is
checked is what the API server, the controllers and admission make of the chart.

helm is built by deploy/k8s-testenv/build.sh with the rest of the test environment.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.k8s.testenv import REPO, Cluster, kubectl

pytestmark = pytest.mark.k8s

CHART = REPO / "deploy" / "helm" / "glia"
RELEASE = "acme"
DATABASE_URL = "postgresql+asyncpg://glia:pw@postgres.db.svc:5432/glia"
# What rendering needs at least: the database, the Secret with GLIA_SECRET_KEY, the gateway's.
REQUIRED: dict[str, Any] = {
    "database": {"url": DATABASE_URL},
    "secrets": {"existingSecret": "glia-secrets"},
    "gateway": {"existingSecret": "glia-gateway-secret"},
}
# Overrides, each rendered and checked by the API server.
VARIANTS: dict[str, dict[str, Any]] = {
    "required only": REQUIRED,
    "external secrets, redis, replicas, tls, jobs domain": {
        "database": {"existingSecret": "pg", "existingSecretKey": "url"},
        "redis": {"existingSecret": "redis", "existingSecretKey": "url", "prefix": "acme:"},
        "secrets": {"existingSecret": "glia-secrets"},
        "controlPlane": {
            "replicas": 3,
            "jobsDomain": "jobs.example.org",
            "env": {"GLIA_CLUSTER_NAME": "main", "GLIA_TOKEN_TTL_S": 3600},
            "persistence": {"existingClaim": "glia-data"},
            "resources": {"requests": {"cpu": "1", "memory": "1Gi"}},
        },
        "ingress": {"host": "glia.example.org", "className": "nginx", "tlsSecretName": "tls"},
        "gateway": {
            "existingSecret": "gw",
            "name": "k8s-east",
            "port": 9000,
            "namespacePrefix": "jobs-",
        },
        "image": {"repository": "registry.example.org/glia", "tag": "1.2.3"},
    },
    "the control plane's own jobs as pods": {
        **REQUIRED,
        "controlPlane": {"clusterRuntime": "kubernetes", "namespacePrefix": "home-"},
    },
    "no gateway, no ingress, redis url": {
        "database": {"url": DATABASE_URL},
        "redis": {"url": "redis://redis.db.svc:6379/0"},
        "secrets": {"existingSecret": "glia-secrets"},
        "ingress": {"enabled": False},
        "gateway": {"enabled": False},
        "service": {"type": "NodePort"},
    },
}


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def template(
    helm: str, tmp_path: Path, values: dict[str, Any], namespace: str = "glia"
) -> subprocess.CompletedProcess[str]:
    values_file = tmp_path / f"values-{uuid.uuid4().hex[:8]}.yaml"
    values_file.write_text(yaml.safe_dump(values))
    return subprocess.run(
        [helm, "template", RELEASE, str(CHART), "--namespace", namespace, "-f", str(values_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def rendered(
    helm: str, tmp_path: Path, values: dict[str, Any], namespace: str = "glia"
) -> tuple[str, list[dict[str, Any]]]:
    done = template(helm, tmp_path, values, namespace)
    assert done.returncode == 0, done.stderr
    return done.stdout, [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, (
        f"{kind}/{name} among {[(d['kind'], d['metadata']['name']) for d in docs]}"
    )
    return matches[0]


def env_of(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def secret_ref(name: str, key: str, optional: bool | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": name, "key": key}
    if optional is not None:
        ref["optional"] = optional
    return {"secretKeyRef": ref}


# --- helm lint and helm template ----------------------------------------------------------------


def test_helm_lint(helm: str, tmp_path: Path) -> None:
    done = subprocess.run([helm, "lint", str(CHART)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    values_file = tmp_path / "values.yaml"
    for values in VARIANTS.values():
        values_file.write_text(yaml.safe_dump(values))
        done = subprocess.run(
            [helm, "lint", "--strict", str(CHART), "-f", str(values_file)],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "0 chart(s) failed" in done.stdout


def test_defaults(helm: str, tmp_path: Path) -> None:
    """The chart's defaults with only the required values: a control plane behind Traefik, its
    database URL in a Secret of the chart, and the gateway with the kubernetes runtime."""
    _, docs = rendered(helm, tmp_path, REQUIRED)
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert {
        ("Deployment", "acme-glia"),
        ("Service", "acme-glia"),
        ("Ingress", "acme-glia"),
        ("Secret", "acme-glia-endpoints"),
        ("Deployment", "acme-gateway"),
        ("Service", "acme-gateway"),
        ("ServiceAccount", "acme-gateway"),
    } <= kinds
    # The test API server has no Traefik CRDs: the Middleware is only there when asked for.
    assert not [d for d in docs if d["kind"] == "Middleware"]

    control = find(docs, "Deployment", "acme-glia")
    pod = control["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "glia:0.1.0"
    assert container["args"] == ["serve"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    env = env_of(control)
    assert env["GLIA_HOST"] == "0.0.0.0"
    assert env["GLIA_PUBLIC_URL"] == "http://glia.example.com"
    assert env["GLIA_DATABASE_URL"] == secret_ref("acme-glia-endpoints", "database-url")
    assert env["GLIA_SECRET_KEY"] == secret_ref("glia-secrets", "secret-key")
    assert env["GLIA_SECRETS_KEYS"] == secret_ref("glia-secrets", "secrets-keys", True)
    assert env["GLIA_ADMIN_PASSWORD"] == secret_ref("glia-secrets", "admin-password", True)
    assert "GLIA_REDIS_URL" not in env  # one replica: the in-process bus
    secret = find(docs, "Secret", "acme-glia-endpoints")
    assert secret["stringData"] == {"database-url": DATABASE_URL}

    ingress = find(docs, "Ingress", "acme-glia")
    assert ingress["spec"]["ingressClassName"] == "traefik"
    assert [r["host"] for r in ingress["spec"]["rules"]] == ["glia.example.com"]

    gateway = find(docs, "Deployment", "acme-gateway")
    gateway_pod = gateway["spec"]["template"]["spec"]
    assert gateway_pod["serviceAccountName"] == "acme-gateway"
    (gateway_container,) = gateway_pod["containers"]
    args = gateway_container["args"]
    assert args[:4] == ["gateway", "serve", "--runtime", "kubernetes"]
    assert args[args.index("--name") + 1] == "kubernetes"
    assert args[args.index("--port") + 1] == "8090"
    assert args[args.index("--host") + 1] == "0.0.0.0"
    assert args[args.index("--namespace-prefix") + 1] == "glia-"
    # The admission policy keeps the gateway's account to the namespaces of that prefix.
    policy = find(docs, "ValidatingAdmissionPolicy", "acme-gateway")
    assert {v["name"]: v["expression"] for v in policy["spec"]["variables"]}["prefix"] == "'glia-'"
    (only,) = policy["spec"]["matchConditions"]
    assert only["expression"].endswith('"system:serviceaccount:glia:acme-gateway"')
    binding = find(docs, "ValidatingAdmissionPolicyBinding", "acme-gateway")
    assert binding["spec"] == {"policyName": "acme-gateway", "validationActions": ["Deny"]}
    assert env_of(gateway) == {
        "GLIA_GATEWAY_SECRET": secret_ref("glia-gateway-secret", "gateway-secret")
    }
    assert find(docs, "Service", "acme-gateway")["spec"]["ports"][0]["port"] == 8090


def test_overrides(helm: str, tmp_path: Path) -> None:
    """External PostgreSQL and Redis from Secrets of their own, more replicas, TLS, a jobs
    domain, settings as env, another image and gateway."""
    _, docs = rendered(
        helm, tmp_path, VARIANTS["external secrets, redis, replicas, tls, jobs domain"]
    )
    # Nothing given as a value: the chart makes no Secret.
    assert not [d for d in docs if d["kind"] == "Secret"]
    control = find(docs, "Deployment", "acme-glia")
    assert control["spec"]["replicas"] == 3
    (container,) = control["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example.org/glia:1.2.3"
    assert container["resources"]["requests"] == {"cpu": "1", "memory": "1Gi"}
    env = env_of(control)
    assert env["GLIA_DATABASE_URL"] == secret_ref("pg", "url")
    assert env["GLIA_REDIS_URL"] == secret_ref("redis", "url")
    assert env["GLIA_REDIS_PREFIX"] == "acme:"
    assert env["GLIA_PUBLIC_URL"] == "https://glia.example.org"
    assert env["GLIA_JOBS_DOMAIN"] == "jobs.example.org"
    assert env["GLIA_CLUSTER_NAME"] == "main"
    assert env["GLIA_TOKEN_TTL_S"] == "3600"
    volumes = control["spec"]["template"]["spec"]["volumes"]
    assert volumes == [{"name": "data", "persistentVolumeClaim": {"claimName": "glia-data"}}]

    ingress = find(docs, "Ingress", "acme-glia")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert [r["host"] for r in ingress["spec"]["rules"]] == [
        "glia.example.org",
        "*.jobs.example.org",
    ]
    assert ingress["spec"]["tls"] == [
        {"secretName": "tls", "hosts": ["glia.example.org", "*.jobs.example.org"]}
    ]

    gateway = find(docs, "Deployment", "acme-gateway")
    (gateway_container,) = gateway["spec"]["template"]["spec"]["containers"]
    args = gateway_container["args"]
    assert args[args.index("--name") + 1] == "k8s-east"
    assert args[args.index("--port") + 1] == "9000"
    assert args[args.index("--namespace-prefix") + 1] == "jobs-"
    policy = find(docs, "ValidatingAdmissionPolicy", "acme-gateway")
    assert {v["name"]: v["expression"] for v in policy["spec"]["variables"]}["prefix"] == "'jobs-'"
    assert env_of(gateway)["GLIA_GATEWAY_SECRET"] == secret_ref("gw", "gateway-secret")


def test_the_control_planes_own_jobs_as_pods(helm: str, tmp_path: Path) -> None:
    """controlPlane.clusterRuntime=kubernetes: the control plane's pod runs as its own
    ServiceAccount, bound to the jobs' ClusterRole and held by an admission policy of its
    own to its namespaces; with the default (local) it has no token at all."""
    _, docs = rendered(helm, tmp_path, VARIANTS["the control plane's own jobs as pods"])
    control = find(docs, "Deployment", "acme-glia")
    pod = control["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "acme-glia"
    assert pod["automountServiceAccountToken"] is True
    env = env_of(control)
    assert (env["GLIA_CLUSTER_RUNTIME"], env["GLIA_K8S_NAMESPACE_PREFIX"]) == (
        "kubernetes",
        "home-",
    )
    find(docs, "ServiceAccount", "acme-glia")
    binding = find(docs, "ClusterRoleBinding", "acme-glia-jobs")
    assert binding["roleRef"]["name"] == "acme-gateway"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "acme-glia", "namespace": "glia"}
    ]
    policy = find(docs, "ValidatingAdmissionPolicy", "acme-glia-jobs")
    (only,) = policy["spec"]["matchConditions"]
    assert only["expression"].endswith('"system:serviceaccount:glia:acme-glia"')
    assert {v["name"]: v["expression"] for v in policy["spec"]["variables"]}["prefix"] == "'home-'"
    find(docs, "ValidatingAdmissionPolicyBinding", "acme-glia-jobs")
    find(docs, "ValidatingAdmissionPolicy", "acme-gateway")  # the gateway's, beside it

    _, defaults = rendered(helm, tmp_path, REQUIRED)
    default_pod = find(defaults, "Deployment", "acme-glia")["spec"]["template"]["spec"]
    assert default_pod["automountServiceAccountToken"] is False
    assert "serviceAccountName" not in default_pod
    assert "GLIA_CLUSTER_RUNTIME" not in env_of(find(defaults, "Deployment", "acme-glia"))
    assert not [d for d in defaults if d["metadata"]["name"] == "acme-glia-jobs"]
    refused = template(
        helm, tmp_path, _merge(REQUIRED, {"controlPlane": {"clusterRuntime": "k3s"}})
    )
    assert refused.returncode != 0 and "local or kubernetes" in refused.stderr


def test_gateway_and_ingress_disabled(helm: str, tmp_path: Path) -> None:
    _, docs = rendered(helm, tmp_path, VARIANTS["no gateway, no ingress, redis url"])
    assert {d["kind"] for d in docs} <= {"Deployment", "Service", "Secret"} | _RBAC_KINDS
    assert [(d["kind"], d["metadata"]["name"]) for d in docs if d["kind"] in _WORKLOAD] == [
        ("Service", "acme-glia"),
        ("Deployment", "acme-glia"),
    ]
    env = env_of(find(docs, "Deployment", "acme-glia"))
    assert "GLIA_PUBLIC_URL" not in env  # no ingress: the default (what the pod listens on)
    assert env["GLIA_REDIS_URL"] == secret_ref("acme-glia-endpoints", "redis-url")
    secret = find(docs, "Secret", "acme-glia-endpoints")
    assert set(secret["stringData"]) == {"database-url", "redis-url"}


# templates/gateway-rbac.yaml (the gateway's roles) may be there or not: the chart renders
# either way.
_RBAC_KINDS = {"ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
_WORKLOAD = {"Deployment", "Service", "Ingress"}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_each_object_once(helm: str, tmp_path: Path, variant: str) -> None:
    """No two templates make the same object (`helm install` would fail on the second with
    "already exists"; `helm lint` does not see it)."""
    _, docs = rendered(helm, tmp_path, VARIANTS[variant])
    # One release's namespaced objects are all in its namespace, named or not.
    keys = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert sorted(k for k in keys if keys.count(k) > 1) == []


def test_forward_auth_middleware(helm: str, tmp_path: Path) -> None:
    values = _merge(REQUIRED, {"traefik": {"forwardAuth": {"enabled": True}}})
    _, docs = rendered(helm, tmp_path, values, namespace="glia-system")
    middleware = find(docs, "Middleware", "acme-glia-forward-auth")
    assert middleware["apiVersion"] == "traefik.io/v1alpha1"
    forward = middleware["spec"]["forwardAuth"]
    assert forward["address"] == "http://acme-glia.glia-system.svc:80/auth/forward?redirect=1"
    assert forward["authResponseHeaders"] == ["X-Glia-User", "X-Glia-Job"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"secrets": {"existingSecret": "s"}, "gateway": {"existingSecret": "g"}},
            "database.url (postgresql+asyncpg://USER:PASSWORD@HOST:5432/DB) or "
            "database.existingSecret is required",
        ),
        (
            {"database": {"url": DATABASE_URL}, "gateway": {"existingSecret": "g"}},
            "secrets.existingSecret is required",
        ),
        (
            {"database": {"url": DATABASE_URL}, "secrets": {"existingSecret": "s"}},
            "gateway.existingSecret is required while gateway.enabled",
        ),
        (
            _merge(REQUIRED, {"controlPlane": {"replicas": 2}}),
            "redis.url or redis.existingSecret is required with more than one control-plane "
            "replica",
        ),
        (_merge(REQUIRED, {"ingress": {"host": ""}}), "ingress.host is required"),
    ],
    ids=["no database", "no secret key", "no gateway secret", "replicas without redis", "no host"],
)
def test_missing_values_fail_rendering(
    helm: str, tmp_path: Path, values: dict[str, Any], message: str
) -> None:
    done = template(helm, tmp_path, values)
    assert done.returncode != 0
    assert message in done.stderr, done.stderr
    assert done.stdout == ""


# --- against the test API server ----------------------------------------------------------------


def _kubectl(
    cluster: Cluster, *args: str, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [kubectl(), f"--kubeconfig={cluster.kubeconfig}", *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def namespace(k8s_cluster: Cluster) -> Iterator[str]:
    """A namespace of the test's own; removed at the end with everything in it, its pods at
    once (the runtime's tests after these count the nodes' free capacity)."""
    name = f"helm-{uuid.uuid4().hex[:8]}"
    done = _kubectl(k8s_cluster, "create", "namespace", name)
    assert done.returncode == 0, done.stderr
    yield name
    _kubectl(k8s_cluster, "-n", name, "delete", "deployments", "--all", "--wait=false")
    _kubectl(k8s_cluster, "-n", name, "delete", "pods", "--all", "--grace-period=0", "--force")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pods = _kubectl(k8s_cluster, "-n", name, "get", "pods", "-o", "name")
        if pods.returncode == 0 and not pods.stdout.strip():
            break
        _kubectl(k8s_cluster, "-n", name, "delete", "pods", "--all", "--grace-period=0", "--force")
        time.sleep(0.5)
    _kubectl(k8s_cluster, "delete", "namespace", name, "--wait=false")


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_server_dry_run_accepts_every_manifest(
    helm: str, tmp_path: Path, k8s_cluster: Cluster, namespace: str, variant: str
) -> None:
    """`kubectl apply --dry-run=server`: the API server validates (and defaults, and admits)
    each rendered object without storing it."""
    manifests, docs = rendered(helm, tmp_path, VARIANTS[variant], namespace=namespace)
    done = _kubectl(
        k8s_cluster, "apply", "--dry-run=server", "-n", namespace, "-f", "-", input=manifests
    )
    assert done.returncode == 0, done.stderr
    applied = [line for line in done.stdout.splitlines() if line.endswith("(server dry run)")]
    assert len(applied) == len(docs), done.stdout
    # Nothing was stored.
    left = _kubectl(k8s_cluster, "-n", namespace, "get", "deployments,services", "-o", "name")
    assert left.stdout.strip() == ""


def test_server_refuses_an_invalid_override(
    helm: str, tmp_path: Path, k8s_cluster: Cluster, namespace: str
) -> None:
    """The dry run is the API server's validation, not a formality: a value the chart passes
    through but Kubernetes refuses (a port out of range) is caught there."""
    manifests, _ = rendered(
        helm, tmp_path, _merge(REQUIRED, {"gateway": {"port": 70000}}), namespace=namespace
    )
    done = _kubectl(
        k8s_cluster, "apply", "--dry-run=server", "-n", namespace, "-f", "-", input=manifests
    )
    assert done.returncode != 0
    assert "70000" in done.stderr and "Invalid value" in done.stderr, done.stderr


def test_forward_auth_middleware_needs_traefik_crds(
    helm: str, tmp_path: Path, k8s_cluster: Cluster, namespace: str
) -> None:
    """Why the Middleware is off by default: without Traefik's CRDs the API server has no such
    kind (the rest of the chart still goes through)."""
    values = _merge(REQUIRED, {"traefik": {"forwardAuth": {"enabled": True}}})
    manifests, _ = rendered(helm, tmp_path, values, namespace=namespace)
    done = _kubectl(
        k8s_cluster, "apply", "--dry-run=server", "-n", namespace, "-f", "-", input=manifests
    )
    assert done.returncode != 0
    assert 'no matches for kind "Middleware" in version "traefik.io/v1alpha1"' in done.stderr
    assert "deployment.apps/acme-gateway created (server dry run)" in done.stdout


def test_apply_rolls_out(helm: str, tmp_path: Path, k8s_cluster: Cluster, namespace: str) -> None:
    """A real `kubectl apply`: the Deployments, their ReplicaSets and pods (admitted with the
    gateway's ServiceAccount and its token), scheduled onto kwok's nodes. kwok marks them
    Running and Ready without running anything: Glia itself does not start here."""
    manifests, docs = rendered(helm, tmp_path, REQUIRED, namespace=namespace)
    done = _kubectl(k8s_cluster, "apply", "-n", namespace, "-f", "-", input=manifests)
    assert done.returncode == 0, done.stderr
    try:
        for name in ("acme-glia", "acme-gateway"):
            done = _kubectl(
                k8s_cluster,
                "-n",
                namespace,
                "rollout",
                "status",
                f"deployment/{name}",
                "--timeout=60s",
            )
            assert done.returncode == 0, done.stdout + done.stderr

        stored = json.loads(
            _kubectl(k8s_cluster, "-n", namespace, "get", "deployments", "-o", "json").stdout
        )
        by_name = {d["metadata"]["name"]: d for d in stored["items"]}
        assert set(by_name) == {"acme-glia", "acme-gateway"}
        gateway = by_name["acme-gateway"]
        assert gateway["spec"]["template"]["spec"]["serviceAccountName"] == "acme-gateway"
        (container,) = gateway["spec"]["template"]["spec"]["containers"]
        assert container["args"][:4] == ["gateway", "serve", "--runtime", "kubernetes"]
        assert env_of(gateway) == {
            "GLIA_GATEWAY_SECRET": secret_ref("glia-gateway-secret", "gateway-secret")
        }
        control_env = env_of(by_name["acme-glia"])
        assert control_env["GLIA_DATABASE_URL"] == secret_ref("acme-glia-endpoints", "database-url")
        assert control_env["GLIA_SECRET_KEY"] == secret_ref("glia-secrets", "secret-key")

        pods = json.loads(
            _kubectl(
                k8s_cluster,
                "-n",
                namespace,
                "get",
                "pods",
                "-o",
                "json",
                "-l",
                "app.kubernetes.io/component=gateway",
            ).stdout
        )["items"]
        assert len(pods) == 1
        pod = pods[0]
        assert pod["spec"]["serviceAccountName"] == "acme-gateway"
        assert pod["spec"]["nodeName"]  # bound by the scheduler
        # ServiceAccount admission mounted the account's token: the gateway's in-cluster config.
        mounts = pod["spec"]["containers"][0]["volumeMounts"]
        assert "/var/run/secrets/kubernetes.io/serviceaccount" in [m["mountPath"] for m in mounts]
        control_pods = json.loads(
            _kubectl(
                k8s_cluster,
                "-n",
                namespace,
                "get",
                "pods",
                "-o",
                "json",
                "-l",
                "app.kubernetes.io/component=control-plane",
            ).stdout
        )["items"]
        assert len(control_pods) == 1
        control_mounts = control_pods[0]["spec"]["containers"][0]["volumeMounts"]
        assert [m["mountPath"] for m in control_mounts] == ["/var/lib/glia"]  # no token

        # The gateway's Service finds its pod (the address kwok gave it): the control plane's
        # way to the gateway, http://acme-gateway.<namespace>.svc:8090.
        deadline = time.monotonic() + 30
        while True:
            slices = json.loads(
                _kubectl(
                    k8s_cluster,
                    "-n",
                    namespace,
                    "get",
                    "endpointslices",
                    "-o",
                    "json",
                    "-l",
                    "kubernetes.io/service-name=acme-gateway",
                ).stdout
            )["items"]
            addresses = [
                address
                for s in slices
                for endpoint in s.get("endpoints") or []
                if endpoint.get("conditions", {}).get("ready")
                for address in endpoint["addresses"]
            ]
            if addresses or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert addresses == [pod["status"]["podIP"]]
        assert slices[0]["ports"] == [{"name": "gateway", "port": 8090, "protocol": "TCP"}]
    finally:
        # Cluster-scoped objects too (a ClusterRole of templates/gateway-rbac.yaml).
        _kubectl(k8s_cluster, "delete", "-n", namespace, "-f", "-", "--wait=false", input=manifests)
    assert {d["kind"] for d in docs} >= {"Deployment", "Service", "ServiceAccount", "Secret"}


def test_helm_install_dry_run_and_notes(
    helm: str, tmp_path: Path, k8s_cluster: Cluster, namespace: str
) -> None:
    """`helm install --dry-run=server` against the test API server (helm's own checks of the
    manifests with the server's schema), and NOTES.txt, which says how to register the
    gateway's cluster."""
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(REQUIRED))
    done = subprocess.run(
        [helm, "install", RELEASE, str(CHART), "--dry-run=server", "-n", namespace]
        + ["--kubeconfig", str(k8s_cluster.kubeconfig), "-f", str(values_file)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    notes = done.stdout.split("NOTES:", 1)[1]
    assert "glia login http://glia.example.com" in notes
    assert (
        "glia admin add-cluster kubernetes --runtime kubernetes \\\n"
        f"      --gateway http://acme-gateway.{namespace}.svc:8090"
    ) in notes
    assert "create secret generic glia-gateway-secret" in notes
