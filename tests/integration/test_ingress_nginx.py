"""`/auth/forward` behind a real nginx (Debian's package; `.ci/run` installs it): nginx's
auth_request asks Glia before it lets a request through to a job's HTTP server, here a job
running ``python3 -m http.server``, as docs/security.md shows to set it up."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sdk import GliaClient, Job, JobStatus
from tests.factories import ServedApi, make_settings, serving_api
from tests.polling import eventually

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
pytestmark = pytest.mark.skipif(
    not Path(NGINX).exists(), reason="nginx is not installed (.ci/run installs it)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def nginx_config(root: Path, *, listen: int, glia: str, job: Job) -> str:
    """One server in front of one job, asking Glia about each request (docs/security.md)."""
    return textwrap.dedent(
        f"""
        daemon off;
        user root;
        pid {root}/nginx.pid;
        error_log {root}/error.log;
        events {{ worker_connections 64; }}
        http {{
          access_log off;
          client_body_temp_path {root}/body;
          proxy_temp_path {root}/proxy;
          fastcgi_temp_path {root}/fastcgi;
          uwsgi_temp_path {root}/uwsgi;
          scgi_temp_path {root}/scgi;
          server {{
            listen 127.0.0.1:{listen};
            location / {{
              auth_request /_glia_auth;
              auth_request_set $glia_user $upstream_http_x_glia_user;
              proxy_set_header X-Glia-User $glia_user;
              proxy_set_header Authorization "";
              proxy_pass http://127.0.0.1:{job.http_port};
            }}
            location = /_glia_auth {{
              internal;
              proxy_pass {glia}/auth/forward?job={job.id};
              proxy_method GET;
              proxy_pass_request_body off;
              proxy_set_header Content-Length "";
              proxy_set_header X-Forwarded-Host $host;
              proxy_set_header X-Forwarded-Uri $request_uri;
            }}
          }}
        }}
        """
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApi]:
    with serving_api(make_settings(tmp_path_factory.mktemp("nginx-glia"))) as served:
        yield served


def _serve_files(server: ServedApi, token: str, *, http_auth: bool) -> Job:
    port = free_port()

    async def submit() -> Job:
        async with GliaClient(server.url, token) as client:
            job = await client.jobs.submit(
                ["python3", "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                http_port=port,
                http_auth=http_auth,
            )

            async def running() -> Job | None:
                found = await client.jobs.get(job.id)
                return found if found.status is JobStatus.RUNNING else None

            started: Job = await eventually(running, within=30)

            async def listening() -> bool:
                try:
                    async with httpx.AsyncClient() as http:
                        await http.get(f"http://127.0.0.1:{port}/", timeout=1)
                    return True
                except httpx.HTTPError:
                    return False

            await eventually(listening, within=30)
            return started

    return asyncio.run(submit())


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    yield tmp_path, free_port()


def _start_nginx(root: Path, config: str) -> subprocess.Popen[bytes]:
    (root / "nginx.conf").write_text(config)
    process = subprocess.Popen(
        [NGINX, "-c", str(root / "nginx.conf"), "-p", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return process


def _through_nginx(port: int, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def up() -> int | None:
        try:
            async with httpx.AsyncClient() as http:
                answer = await http.get(f"http://127.0.0.1:{port}/", headers=headers, timeout=5)
                return answer.status_code
        except httpx.ConnectError:
            return None

    status: int = asyncio.run(eventually(up, within=10))
    return status


@pytest.mark.parametrize("http_auth", [True, False], ids=["http-auth", "no-http-auth"])
def test_nginx_auth_request_lets_through_whom_glia_says(
    server: ServedApi, nginx: tuple[Path, int], http_auth: bool
) -> None:
    name = "owner" if http_auth else "owner2"
    owner = server.user(name)
    stranger = server.user(f"stranger{'' if http_auth else '2'}")
    job = _serve_files(server, owner, http_auth=http_auth)
    root, port = nginx
    process = _start_nginx(root, nginx_config(root, listen=port, glia=server.url, job=job))
    try:
        if http_auth:
            assert _through_nginx(port) == 401  # anonymous
            assert _through_nginx(port, owner) == 200
            assert _through_nginx(port, stranger) == 403
        else:
            assert _through_nginx(port) == 200
            assert _through_nginx(port, stranger) == 200
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

        async def kill() -> None:
            async with GliaClient(server.url, owner) as client:
                await client.jobs.kill(job.id)

        asyncio.run(kill())
