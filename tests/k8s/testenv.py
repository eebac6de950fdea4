"""A real Kubernetes control plane for the tests: etcd, kube-apiserver, kube-scheduler,
kube-controller-manager and kwok, built from the Go module proxy by deploy/k8s-testenv/build.sh
and started here on free ports with generated certificates and a static admin token.

kwok plays the nodes (it marks the Nodes it manages Ready and keeps their leases) and moves the
pods bound to them through their phases (deploy/k8s-testenv/kwok/stages.yaml); nothing runs.
"""

from __future__ import annotations

import asyncio
import datetime
import fcntl
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from kubernetes_asyncio import client

from tests.contract.harness import GPU_MODEL

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "deploy" / "k8s-testenv" / "build.sh"
KWOK_STAGES = REPO / "deploy" / "k8s-testenv" / "kwok" / "stages.yaml"
KWOK_DEBUGGING = REPO / "deploy" / "k8s-testenv" / "kwok" / "debugging.yaml"
# The pods of this namespace have a log: kwok's kubelet server gives them the lines of
# `Cluster.pod_log` (CRI's format, `kwok_log_line`), and follows it.
LOGS_NAMESPACE = "glia-kwok-logs"
BINARIES = ("etcd", "kube-apiserver", "kube-scheduler", "kube-controller-manager", "kwok")
NODES = ("kwok-node-0", "kwok-node-1")
GPU_NODE = "kwok-gpu-0"  # 2 GPUs of the contract's model (tests.contract.harness.GPU_MODEL)
# The annotation kwok's documentation gives the Nodes it should play.
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"


class TestEnvError(RuntimeError):
    """The test environment could not be built or started (the message says why)."""


@dataclass
class Cluster:
    """How to reach the running API server as its administrator."""

    host: str  # https://127.0.0.1:PORT
    ca_file: Path
    token: str
    kubeconfig: Path
    workdir: Path
    logs: dict[str, Path] = field(default_factory=dict)

    @property
    def pod_log(self) -> Path:
        """The log kwok serves for every pod of `LOGS_NAMESPACE` (append `kwok_log_line`s)."""
        return self.workdir / "kwok-pod.log"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        """A plain GET with the admin token (for readiness checks)."""
        request = urllib.request.Request(
            self.host + path, headers={"Authorization": f"Bearer {self.token}"}
        )
        try:
            with urllib.request.urlopen(
                request, context=self.ssl_context(), timeout=timeout
            ) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _build_lock_held(bin_dir: Path) -> bool:
    lock = bin_dir.parent / ".lock"
    if not lock.exists():
        return False
    with lock.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def binaries(build: bool | None = None) -> Path:
    """The folder holding the binaries. Runs the build script when asked to (GLIA_K8S_BUILD=1,
    as .ci/run does) or when a build is under way (it then waits for that build); otherwise a
    missing binary is an error naming the script."""
    bin_dir = Path(
        subprocess.run(
            [str(BUILD_SCRIPT), "--print-dir"], check=True, capture_output=True, text=True
        ).stdout.strip()
    )
    if build is None:
        build = os.environ.get("GLIA_K8S_BUILD") == "1"
    if build or _build_lock_held(bin_dir):
        done = subprocess.run([str(BUILD_SCRIPT)], capture_output=True, text=True)
        if done.returncode != 0:
            raise TestEnvError(
                f"{BUILD_SCRIPT} failed (exit {done.returncode}):\n"
                f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
            )
    missing = [name for name in BINARIES if not os.access(bin_dir / name, os.X_OK)]
    if missing:
        raise TestEnvError(
            f"the Kubernetes test environment is not built: {', '.join(missing)} missing in "
            f"{bin_dir}. Build it with {BUILD_SCRIPT.relative_to(REPO)} (the first build "
            "compiles kube-apiserver and friends from the Go module proxy and takes a while), "
            "or set GLIA_K8S_BUILD=1 to let the tests run it."
        )
    return bin_dir


# --- certificates -------------------------------------------------------------------------------


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def write_certificates(directory: Path) -> dict[str, Path]:
    """A CA, the API server's serving certificate (127.0.0.1, localhost and the in-cluster names)
    signed by it, and the service-account signing key."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "glia-test-ca")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    server_key = _key()
    names: list[x509.GeneralName] = [
        x509.DNSName(name)
        for name in (
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        )
    ]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ("127.0.0.1", "10.0.0.1")]
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = {
        "ca": directory / "ca.crt",
        "ca_key": directory / "ca.key",
        "server": directory / "apiserver.crt",
        "server_key": directory / "apiserver.key",
        "sa_key": directory / "sa.key",
        "sa_pub": directory / "sa.pub",
    }
    paths["ca"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(paths["ca_key"], ca_key)
    paths["server"].write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(paths["server_key"], server_key)
    sa_key = _key()
    _write_key(paths["sa_key"], sa_key)
    paths["sa_pub"].write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return paths


def write_kubeconfig(path: Path, host: str, ca_file: Path, token: str, user: str) -> None:
    path.write_text(
        f"""apiVersion: v1
kind: Config
clusters:
- name: glia-test
  cluster:
    server: {host}
    certificate-authority: {ca_file}
users:
- name: {user}
  user:
    token: {token}
contexts:
- name: glia-test
  context:
    cluster: glia-test
    user: {user}
current-context: glia-test
"""
    )
    path.chmod(0o600)


# --- processes ----------------------------------------------------------------------------------


class Processes:
    """Child processes in their own sessions, stopped (the whole group) in reverse order."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.logs: dict[str, Path] = {}

    def start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = self.log_dir / f"{name}.log"
        self.logs[name] = log
        with log.open("ab") as out:
            process = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.started.append((name, process))
        return process

    def check(self) -> None:
        for name, process in self.started:
            if process.poll() is not None:
                raise TestEnvError(
                    f"{name} exited with {process.returncode}; its log ({self.logs[name]}) "
                    f"ends with:\n{tail(self.logs[name])}"
                )

    def stop(self) -> None:
        """SIGTERM each, clients before servers, then SIGKILL what is left after a while."""
        for name, process in reversed(self.started):
            started = time.monotonic()
            if process.poll() is None:
                with _ignore_missing():
                    os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with _ignore_missing():
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            # Anything left in the group (none of these fork, but make sure).
            with _ignore_missing():
                os.killpg(process.pid, signal.SIGKILL)
            with self.logs[name].open("a") as out:
                out.write(f"\n[testenv] stopped in {time.monotonic() - started:.2f} s\n")


@contextmanager
def _ignore_missing() -> Iterator[None]:
    try:
        yield
    except ProcessLookupError:
        pass


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_until(what: str, check: Callable[[], bool], processes: Processes, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        processes.check()
        try:
            if check():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TestEnvError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)


@contextmanager
def running_cluster(workdir: Path, bin_dir: Path | None = None) -> Iterator[Cluster]:
    """Starts the control plane in `workdir` and stops it (every process) on exit."""
    bin_dir = bin_dir or binaries()
    workdir.mkdir(parents=True, exist_ok=True)
    pki = workdir / "pki"
    pki.mkdir()
    certs = write_certificates(pki)
    token = secrets.token_hex(24)
    component_token = secrets.token_hex(24)
    tokens = workdir / "tokens.csv"
    # token,user,uid,"group1,group2": the administrator is in system:masters (RBAC lets it do
    # anything); the scheduler and controller manager get their own users and RBAC's
    # bootstrap roles for them.
    tokens.write_text(
        f'{token},glia-admin,glia-admin,"system:masters"\n'
        f"{component_token}-s,system:kube-scheduler,kube-scheduler\n"
        f"{component_token}-c,system:kube-controller-manager,kube-controller-manager\n"
    )
    tokens.chmod(0o600)
    logs = workdir / "logs"
    logs.mkdir()
    processes = Processes(logs)
    try:
        etcd_client, etcd_peer = free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{etcd_client}"
        processes.start(
            "etcd",
            [
                str(bin_dir / "etcd"),
                "--name=glia-test",
                f"--data-dir={workdir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
                f"--initial-cluster=glia-test=http://127.0.0.1:{etcd_peer}",
                "--listen-metrics-urls=",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )
        wait_until("etcd's /health", lambda: _http_ok(etcd_url + "/health"), processes, 60)

        port = free_port()
        host = f"https://127.0.0.1:{port}"
        processes.start(
            "kube-apiserver",
            [
                str(bin_dir / "kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                # A loopback address cannot be the kubernetes Service's endpoint: none kept.
                "--endpoint-reconciler-type=none",
                f"--secure-port={port}",
                f"--cert-dir={pki}",
                f"--tls-cert-file={certs['server']}",
                f"--tls-private-key-file={certs['server_key']}",
                f"--client-ca-file={certs['ca']}",
                f"--token-auth-file={tokens}",
                "--authorization-mode=Node,RBAC",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={certs['sa_pub']}",
                f"--service-account-signing-key-file={certs['sa_key']}",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--allow-privileged=true",
                "--profiling=false",
                # kwok answers as every node's kubelet (its server, below): logs, exec and
                # port-forward go from the API server to it, over TLS checked with our CA.
                "--kubelet-preferred-address-types=InternalIP",
                f"--kubelet-certificate-authority={certs['ca']}",
                "--v=1",
            ],
        )
        cluster = Cluster(
            host=host,
            ca_file=certs["ca"],
            token=token,
            kubeconfig=workdir / "admin.kubeconfig",
            workdir=workdir,
            logs=processes.logs,
        )
        write_kubeconfig(cluster.kubeconfig, host, certs["ca"], token, "glia-admin")
        wait_until(
            "kube-apiserver's /readyz", lambda: cluster.get("/readyz")[0] == 200, processes, 120
        )

        scheduler_kubeconfig = workdir / "scheduler.kubeconfig"
        write_kubeconfig(
            scheduler_kubeconfig,
            host,
            certs["ca"],
            component_token + "-s",
            "system:kube-scheduler",
        )
        processes.start(
            "kube-scheduler",
            [
                str(bin_dir / "kube-scheduler"),
                f"--kubeconfig={scheduler_kubeconfig}",
                f"--authentication-kubeconfig={scheduler_kubeconfig}",
                f"--authorization-kubeconfig={scheduler_kubeconfig}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
                f"--cert-dir={workdir / 'scheduler-certs'}",
            ],
        )
        manager_kubeconfig = workdir / "controller-manager.kubeconfig"
        write_kubeconfig(
            manager_kubeconfig,
            host,
            certs["ca"],
            component_token + "-c",
            "system:kube-controller-manager",
        )
        processes.start(
            "kube-controller-manager",
            [
                str(bin_dir / "kube-controller-manager"),
                f"--kubeconfig={manager_kubeconfig}",
                f"--authentication-kubeconfig={manager_kubeconfig}",
                f"--authorization-kubeconfig={manager_kubeconfig}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
                f"--cert-dir={workdir / 'controller-manager-certs'}",
                f"--service-account-private-key-file={certs['sa_key']}",
                f"--root-ca-file={certs['ca']}",
                f"--cluster-signing-cert-file={certs['ca']}",
                f"--cluster-signing-key-file={certs['ca_key']}",
                "--use-service-account-credentials=true",
            ],
        )
        # kwok's config: the stages, and what its kubelet server does for a pod's exec (runs
        # the command on this host) and port-forward (`cat`: an echo of what is sent).
        kwok_config = workdir / "kwok.yaml"
        (workdir / "kwok-pod.log").touch()
        pod_logs = {
            "apiVersion": "kwok.x-k8s.io/v1alpha1",
            "kind": "ClusterLogs",
            "metadata": {"name": "glia-test-logs"},
            "spec": {
                "selector": {"matchNamespaces": [LOGS_NAMESPACE]},
                "logs": [{"logsFile": str(workdir / "kwok-pod.log"), "follow": True}],
            },
        }
        # attach (a terminal job's input) streams a file's lines as the container's output:
        # an empty one; what is written to the terminal goes nowhere (kwok drops it).
        (workdir / "kwok-attach.log").touch()
        pod_attach = {
            "apiVersion": "kwok.x-k8s.io/v1alpha1",
            "kind": "ClusterAttach",
            "metadata": {"name": "glia-test-attach"},
            "spec": {"attaches": [{"logsFile": str(workdir / "kwok-attach.log")}]},
        }
        kwok_config.write_text(
            "\n---\n".join(
                (
                    KWOK_STAGES.read_text(),
                    KWOK_DEBUGGING.read_text(),
                    json.dumps(pod_logs),
                    json.dumps(pod_attach),
                )
            )
        )
        kubelet_port = free_port()
        processes.start(
            "kwok",
            [
                str(bin_dir / "kwok"),
                f"--kubeconfig={cluster.kubeconfig}",
                f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake",
                "--node-lease-duration-seconds=40",
                f"--server-address=127.0.0.1:{kubelet_port}",
                f"--tls-cert-file={certs['server']}",
                f"--tls-private-key-file={certs['server_key']}",
                "--node-ip=127.0.0.1",
                f"--node-port={kubelet_port}",
                f"--config={kwok_config}",
            ],
        )
        # The controller manager creates each namespace's "default" ServiceAccount, which the
        # ServiceAccount admission plugin needs before a pod is accepted there.
        wait_until(
            "the default namespace's ServiceAccount",
            lambda: cluster.get("/api/v1/namespaces/default/serviceaccounts/default")[0] == 200,
            processes,
            90,
        )
        yield cluster
    finally:
        processes.stop()


def fake_node(name: str, cpu: str = "32", memory: str = "256Gi", gpus: int = 0) -> dict:
    """A Node for kwok to play, as its documentation writes one (without the NoSchedule taint:
    every node of this cluster is kwok's)."""
    capacity = {"cpu": cpu, "memory": memory, "pods": "110"}
    if gpus:
        capacity["nvidia.com/gpu"] = str(gpus)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {
                KWOK_NODE_ANNOTATION: "fake",
                "node.alpha.kubernetes.io/ttl": "0",
            },
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/role": "agent",
                "node-role.kubernetes.io/agent": "",
                "type": "kwok",
            },
        },
        "status": {"allocatable": dict(capacity), "capacity": dict(capacity)},
    }


def kubectl() -> str:
    path = shutil.which("kubectl")
    if not path:
        raise TestEnvError("kubectl is missing: apt-get install kubernetes-client")
    return path


def kwok_log_line(text: str, at: datetime.datetime | None = None, stream: str = "stdout") -> str:
    """A line of a container log in CRI's format, as kwok reads `Cluster.pod_log`."""
    stamp = (at or datetime.datetime.now(datetime.UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"{stamp} {stream} F {text}\n"


def api_client(cluster: Cluster, token: str | None = None) -> client.ApiClient:
    configuration = client.Configuration()
    configuration.host = cluster.host
    configuration.ssl_ca_cert = str(cluster.ca_file)
    configuration.api_key = {"BearerToken": token or cluster.token}
    configuration.api_key_prefix = {"BearerToken": "Bearer"}
    return client.ApiClient(configuration)


async def add_nodes(cluster: Cluster) -> None:
    """kwok's nodes: two of 32 cpus, and a tainted one with 2 GPUs; back once they are Ready."""
    async with api_client(cluster) as api:
        core = client.CoreV1Api(api)
        for name in NODES:
            await core.create_node(fake_node(name))
        gpu_node = fake_node(GPU_NODE, gpus=2)
        gpu_node["metadata"]["labels"]["nvidia.com/gpu.product"] = GPU_MODEL
        # As GPU nodes usually are: only pods that tolerate it (those asking GPUs) go there.
        gpu_node["spec"] = {"taints": [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}]}
        await core.create_node(gpu_node)
        deadline = time.monotonic() + 60
        while True:
            nodes = (await core.list_node()).items
            ready = [
                node.metadata.name
                for node in nodes
                if any(
                    c.type == "Ready" and c.status == "True" for c in node.status.conditions or []
                )
            ]
            if {*NODES, GPU_NODE} <= set(ready):
                return
            if time.monotonic() > deadline:
                raise TestEnvError(f"kwok did not make the nodes Ready (ready: {ready})")
            await asyncio.sleep(0.2)
