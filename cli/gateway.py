"""`glia gateway serve`: run a cluster gateway as its own process, next to its cluster.

The one command that reaches into ``cluster_gateway.server``, and only when it runs (the
import is inside the command): ``glia --help`` stays light.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from cli.options import GliaCommand

gateway_app = typer.Typer(
    help="A cluster gateway: the process that runs a cluster's jobs for a control plane.",
    invoke_without_command=True,
)

# The shared secret's variable: an environment variable or a file, never an argument (those
# show in shell histories and in `ps`).
SECRET_ENV = "GLIA_GATEWAY_SECRET"


@gateway_app.callback()
def _gateway(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit()


def register(app: typer.Typer) -> None:
    app.add_typer(gateway_app, name="gateway")
    gateway_app.command("serve", cls=GliaCommand)(serve)


def serve(
    name: str = typer.Option(
        ..., "--name", metavar="CLUSTER", help="The cluster's name, as the control plane has it."
    ),
    data_dir: Path = typer.Option(
        Path("~/.local/share/glia-gateway"),
        "--data-dir",
        metavar="DIR",
        help="Where the gateway keeps its jobs, their logs and files.",
    ),
    host: str = typer.Option(
        "127.0.0.1", "--host", metavar="ADDRESS", help="Address to listen on."
    ),
    port: int = typer.Option(8090, "--port", metavar="PORT", help="Port to listen on."),
    secret_file: Path | None = typer.Option(
        None,
        "--secret-file",
        metavar="FILE",
        help=f"A file holding the secret shared with the control plane (else env {SECRET_ENV}).",
    ),
    runtime: str = typer.Option(
        "local",
        "--runtime",
        metavar="local|kubernetes",
        help="What runs the jobs: processes on this machine, or pods on a Kubernetes cluster.",
    ),
    kubeconfig: Path | None = typer.Option(
        None,
        "--kubeconfig",
        metavar="FILE",
        help="With --runtime kubernetes: the kubeconfig to reach the API server with "
        "(its current context); without it, the in-cluster config of the pod it runs in.",
    ),
    namespace_prefix: str = typer.Option(
        "glia-",
        "--namespace-prefix",
        metavar="PREFIX",
        help="With --runtime kubernetes: a namespace per project, PREFIX + org-project.",
    ),
    image: str | None = typer.Option(
        None,
        "--image",
        metavar="IMAGE",
        help="With --runtime kubernetes: the image the jobs' pods run.",
    ),
    pod_annotations: list[str] = typer.Option(
        [],
        "--pod-annotation",
        metavar="KEY=VALUE",
        help="With --runtime kubernetes: an annotation every job's pod gets (repeatable).",
    ),
    storage_claim: str | None = typer.Option(
        None,
        "--storage-claim",
        metavar="PVC",
        help="With --runtime kubernetes: the PersistentVolumeClaim holding the cluster's "
        "storage, mounted into jobs by subPath (without it, storage volumes are refused).",
    ),
    forward_auth_url: str | None = typer.Option(
        None,
        "--forward-auth-url",
        metavar="URL",
        help="With --runtime kubernetes: the control plane's /auth/forward, which the "
        "Ingress of an exposed job asks (Traefik ForwardAuth).",
    ),
) -> None:
    """Serve a cluster's gateway (its jobs on this machine) to its control plane, which
    calls it with claims signed with the secret given when the cluster was registered.

    Its jobs outlive it: a gateway started again on the same --data-dir finds them.

    \b
    Examples:
      GLIA_GATEWAY_SECRET=... glia gateway serve --name gpu-box --host 0.0.0.0 --port 8090
      glia gateway serve --name gpu-box --secret-file /etc/glia/gateway-secret
      glia gateway serve --name k8s --runtime kubernetes --host 0.0.0.0
    """
    if secret_file is not None:
        try:
            secret = secret_file.read_text().strip()
        except OSError as error:
            typer.echo(f"error: cannot read the secret file: {error.strerror}", err=True)
            raise typer.Exit(66) from None
    else:
        secret = os.environ.get(SECRET_ENV, "").strip()
    if not secret:
        typer.echo(f"error: give the shared secret in {SECRET_ENV} or --secret-file", err=True)
        raise typer.Exit(65)
    if runtime not in ("local", "kubernetes"):
        typer.echo(f"error: unknown runtime {runtime!r}: local or kubernetes", err=True)
        raise typer.Exit(64)
    annotations: dict[str, str] = {}
    for pair in pod_annotations:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            typer.echo(f"error: a pod annotation is KEY=VALUE, not {pair!r}", err=True)
            raise typer.Exit(64)
        annotations[key] = value
    import logging

    from cluster_gateway.server.app import serve as run

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        run(
            name=name,
            data_dir=data_dir.expanduser(),
            host=host,
            port=port,
            secret=secret,
            runtime_kind=runtime,
            kubeconfig=kubeconfig.expanduser() if kubeconfig else None,
            namespace_prefix=namespace_prefix,
            pod_annotations=annotations,
            image=image,
            storage_claim=storage_claim,
            forward_auth_url=forward_auth_url,
        )
    except ValueError as error:
        # A secret too short, a data dir in use, no way to the API server: never the secret.
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(65) from None
