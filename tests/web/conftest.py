"""A real `glia up` with its web UI, and Debian's Chromium driven by Playwright.

Every request the browser makes to an address other than this machine is blocked and
recorded: a page that tries to reach the internet (a CDN, fonts, telemetry) fails its test.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    Route,
    expect,
    sync_playwright,
)

from tests.e2e.conftest import Cli, Server, free_port
from tests.factories import kill_leftover_jobs

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).parent / "screenshots"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
WEB_START_TIMEOUT_S = 300.0
# What an expectation waits for the page (Playwright's default: 5 s). In the full suite on
# two cores the server, the web UI's backend and the browser share them with the rest of
# the tests, and a change took longer than 5 s to show (an org just made, in one CI run).
expect.set_options(timeout=15_000)


@dataclass
class Platform:
    server: Server
    web_url: str
    admin_password: str
    cli: Cli


def start_with_web(root: Path) -> tuple[Server, str]:
    """`glia up` with its web UI, once the UI answers."""
    web_port = free_port()
    server = Server(root, command=("up", "--web-port", str(web_port)))
    server.start()
    web_url = f"http://127.0.0.1:{web_port}"
    deadline = time.monotonic() + WEB_START_TIMEOUT_S
    while True:
        try:
            if httpx.get(f"{web_url}/login", timeout=2).status_code < 400:
                return server, web_url
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or server.process is None or server.process.poll():
            server.stop()
            raise RuntimeError(f"the web UI did not start:\n{server.log_path.read_text()}")
        time.sleep(1)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    server, web_url = start_with_web(tmp_path_factory.mktemp("web"))
    try:
        match = re.search(r"admin password \(shown once\): (\S+)", server.log_path.read_text())
        assert match, server.log_path.read_text()
        cli = Cli(server, server.root / "home" / "config.toml")
        yield Platform(server, web_url, match.group(1), cli)
    finally:
        server.stop()
        kill_leftover_jobs(server.root / "data")


@pytest.fixture(scope="module")
def browser(platform: Platform) -> Iterator[Browser]:
    # After the platform: Playwright's sync API holds an event loop in this thread, and the
    # platform's start waits for the server with asyncio.
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


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    blocked: list[str] = []

    def local_only(route: Route) -> None:
        host = urlparse(route.request.url).hostname or ""
        if host in LOCAL_HOSTS or route.request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.route("**/*", local_only)
    yield context
    context.close()
    assert blocked == [], f"the page tried to reach the internet: {blocked}"


@pytest.fixture
def page(context: BrowserContext) -> Page:
    page = context.new_page()
    page.set_default_timeout(30_000)
    return page


def sign_in(page: Page, platform: Platform, user: str, password: str) -> None:
    page.goto(f"{platform.web_url}/login")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/jobs/?$"))


def nav(page: Page, name: str) -> Locator:
    """A link of the main navigation."""
    return page.get_by_label("Main navigation").get_by_role("link", name=name, exact=True)


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
