"""The job page charts what the job uses: live, then over its life, through a real `glia up`
with the local runtime sampling a busy job."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.web.conftest import Platform, screenshot, sign_in

pytestmark = pytest.mark.web

BUSY = "while True: pass"


# A drawn line of at least two points (a flat one has no height: Playwright calls it hidden).
LINE = re.compile(r"^M[\d.]+,[\d.]+[LC]")


def _line(page: Page, chart: str, timeout: float = 30_000) -> None:
    curve = page.locator(f"#{chart} .recharts-line-curve")
    expect(curve).to_have_attribute("d", LINE, timeout=timeout)


def _percent(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)%", text.strip())
    return float(match.group(1)) if match else -1.0


def test_the_job_page_charts_cpu_and_memory(page: Page, platform: Platform) -> None:
    job_id = platform.cli.ok(
        "run", "--detach", "--preset", "cpu-medium", "--", "python3", "-c", BUSY
    ).strip()
    sign_in(page, platform, "admin", platform.admin_password)
    page.goto(f"{platform.web_url}/jobs/{job_id}")
    expect(page.locator("#job-status")).to_contain_text("running", timeout=15_000)
    # The live charts draw their lines once samples come, about one a second.
    _line(page, "telemetry-live-cpu")
    _line(page, "telemetry-live-memory")
    cpu = page.locator("#telemetry-cpu")
    page.wait_for_function(
        "() => parseFloat(document.querySelector('#telemetry-cpu').textContent) > 50",
        timeout=20_000,
    )
    assert _percent(cpu.inner_text()) > 50
    expect(page.locator("#telemetry-memory")).to_contain_text("MiB")
    # The controller writes samples every few seconds; then the life chart has them.
    page.wait_for_timeout(6_000)
    page.get_by_role("button", name="Kill").click()
    expect(page.locator("#job-status")).to_contain_text("cancelled", timeout=20_000)
    _line(page, "telemetry-cpu-life")
    _line(page, "telemetry-memory-life")
    screenshot(page, "job-telemetry")
    # Opened again after its end: the life chart from the history, no live one.
    page.reload()
    _line(page, "telemetry-cpu-life")
    expect(page.locator("#telemetry-live-cpu")).to_have_count(0)
