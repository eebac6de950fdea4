"""End to end: `glia run --http-port`, its URL in `glia status`, the job reached through that
URL, and `glia job generate-run-command`."""

from __future__ import annotations

import asyncio
import shlex
import tomllib

import httpx
import pytest

from tests.e2e.conftest import Cli, Server, free_port
from tests.polling import eventually

pytestmark = pytest.mark.e2e


def test_an_exposed_job_is_reached_at_the_url_glia_status_shows(server: Server, cli: Cli) -> None:
    port = free_port()
    cli.ok(
        "run", "--detach", "--name", "lab", "--http-port", str(port), "-e", "GREETING=hi there",
        "--", "python3", "-m", "http.server", str(port), "--bind", "127.0.0.1",
    )  # fmt: skip
    cli.wait_status("lab", "running")
    url = f"http://lab--admin.jobs.localhost:{server.port}/"
    assert f"URL          {url}" in cli.ok("status", "lab")
    assert cli.json("status", "lab")["httpUrl"] == url

    config = tomllib.loads(cli.config.read_text())
    token = config["contexts"][config["current-context"]]["token"]
    host = {"Host": f"lab--admin.jobs.localhost:{server.port}"}

    async def listing() -> httpx.Response | None:
        async with httpx.AsyncClient(base_url=server.url) as http:
            answer = await http.get(
                "/", headers={**host, "Authorization": f"Bearer {token}"}, timeout=5
            )
        return answer if answer.status_code == 200 else None

    answer = asyncio.run(eventually(listing, within=20))
    assert "Directory listing" in answer.text
    assert httpx.get(f"{server.url}/", headers=host, timeout=5).status_code == 401

    again = shlex.split(cli.ok("job", "generate-run-command", "lab"))
    assert again[:2] == ["glia", "run"]
    assert again[again.index("--http-port") + 1] == str(port)
    assert again[again.index("-e") + 1] == "GREETING=hi there"
    assert again[again.index("--") + 1 :] == [
        "python3", "-m", "http.server", str(port), "--bind", "127.0.0.1",
    ]  # fmt: skip
    cli.ok("kill", "lab")
