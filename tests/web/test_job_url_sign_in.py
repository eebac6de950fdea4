"""A browser reaches an exposed job at its own host name: sent to sign in there, given the
session cookie, and let through to the job (Debian's Chromium, which resolves *.localhost to
this machine by itself; no web UI needed)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest
from playwright.sync_api import Browser, Route, sync_playwright

from tests.e2e.conftest import Cli, Server, free_port
from tests.factories import kill_leftover_jobs
from tests.web.conftest import CHROMIUM

pytestmark = pytest.mark.web


@pytest.fixture(scope="module")
def job_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("job-url"), command=("up", "--no-web"))
    server.start()
    try:
        yield server
    finally:
        server.stop()
        kill_leftover_jobs(server.root / "data")


@pytest.fixture(scope="module")
def lab(job_server: Server) -> Iterator[str]:
    """The URL of a job serving its files, exposed; made before the browser starts (the
    CLI's waits use asyncio, Playwright's sync API holds an event loop in this thread)."""
    cli = Cli(server=job_server, config=job_server.root / "home" / "config.toml")
    port = free_port()
    cli.ok(
        "run", "--detach", "--name", "lab", "--http-port", str(port),
        "--", "python3", "-m", "http.server", str(port), "--bind", "127.0.0.1",
    )  # fmt: skip
    cli.wait_status("lab", "running")
    url: str = cli.json("status", "lab")["httpUrl"]
    yield url
    cli("kill", "lab")


@pytest.fixture(scope="module")
def chromium(lab: str) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


def test_a_browser_signs_in_on_the_jobs_host_and_reaches_the_job(
    job_server: Server, chromium: Browser, lab: str
) -> None:
    url = lab
    host = urlparse(url).hostname
    assert host == "lab--admin.jobs.localhost"

    blocked: list[str] = []

    def local_only(route: Route) -> None:
        name = urlparse(route.request.url).hostname or ""
        if name in ("127.0.0.1", "localhost") or name.endswith(".localhost"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context = chromium.new_context()
    context.route("**/*", local_only)
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(url + "?from=test")
        page.wait_for_url(re.compile(r".*/\.glia/login\?rd=.*"))
        assert urlparse(page.url).hostname == host
        page.get_by_label("User name").fill("admin")
        page.get_by_label("Password").fill(job_server.admin_password())
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(url + "?from=test")
        assert "Directory listing" in page.content()
        cookies = {c["name"]: c for c in context.cookies()}
        session = cookies["glia_session"]
        assert session["domain"] == host and session["httpOnly"]
        assert session["sameSite"] == "Lax"
        # The job's own pages load with the cookie, which the job itself never sees.
        page.goto(url)
        assert "Directory listing" in page.content()
    finally:
        context.close()
    assert blocked == []
