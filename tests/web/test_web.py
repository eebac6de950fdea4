"""The web UI in a real browser against a real `glia up`: sign in, run a job and watch it live,
read its logs, kill one, admin pages for admins only, the API explorer."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.web.conftest import Platform, nav, screenshot, sign_in

pytestmark = pytest.mark.web


def test_sign_in_and_out(page: Page, platform: Platform) -> None:
    page.goto(f"{platform.web_url}/jobs")
    page.wait_for_url(re.compile(r".*/login/?$"))  # no session: the login page
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("wrong user name or password")
    sign_in(page, platform, "admin", platform.admin_password)
    expect(page.locator("#current-user")).to_have_text("admin")
    screenshot(page, "jobs-empty")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r".*/login/?$"))
    page.goto(f"{platform.web_url}/jobs")
    page.wait_for_url(re.compile(r".*/login/?$"))


def test_run_a_job_and_watch_it_run_then_succeed_without_reload(
    page: Page, platform: Platform
) -> None:
    sign_in(page, platform, "admin", platform.admin_password)
    nav(page, "Run a job").click()
    page.wait_for_url(re.compile(r".*/run/?$"))
    page.get_by_label("Command").fill("sh -c 'sleep 2; echo \"\\033[32mgreen\\033[0m done\"'")
    page.get_by_label("Name").fill("from-the-web")
    page.get_by_label("Life span").fill("not a duration")
    page.get_by_role("button", name="Run").click()
    expect(page.get_by_role("alert").first).to_be_visible()  # the error at its field
    page.get_by_label("Life span").fill("10m")
    page.get_by_role("button", name="Run").click()
    page.wait_for_url(re.compile(r".*/jobs/job-[0-9a-f-]+/?$"))
    status = page.locator("#job-status")
    expect(status).to_contain_text("running", timeout=20_000)
    expect(status).to_contain_text("succeeded", timeout=20_000)
    expect(page.locator("#exit-code")).to_have_text("0")
    log = page.locator("#log")
    expect(log).to_contain_text("green done")
    # ANSI colours are rendered, not shown as escape codes.
    assert "\\033" not in log.inner_text() and "[32m" not in log.inner_text()
    assert log.locator("span[style*='color']").count() >= 1
    screenshot(page, "job")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the whole log").click()
    saved = download.value.path()
    assert saved.read_bytes() == b"\x1b[32mgreen\x1b[0m done\n"  # the bytes as printed
    # From a time after the output: nothing of it.
    page.get_by_placeholder("from a time (UTC)").fill("2999-01-01T00:00:00Z")
    page.get_by_role("button", name="Show").click()
    expect(log).not_to_contain_text("green done")

    nav(page, "Jobs").click()
    page.wait_for_url(re.compile(r".*/jobs/?$"))
    page.get_by_label("Status").select_option("all")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_text("from-the-web")).to_be_visible()
    screenshot(page, "jobs")


def test_the_jobs_table_follows_a_job_started_elsewhere(page: Page, platform: Platform) -> None:
    sign_in(page, platform, "admin", platform.admin_password)
    job_id = platform.cli.ok("run", "--detach", "--", "sleep", "3").strip()
    row = page.locator(f"#job-{job_id}")
    expect(row).to_be_visible(timeout=10_000)  # appeared without a reload
    expect(row).to_contain_text("running", timeout=15_000)
    page.get_by_label("Status").select_option("all")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator(f"#job-{job_id}")).to_contain_text("succeeded", timeout=20_000)


def test_kill_a_running_job(page: Page, platform: Platform) -> None:
    job_id = platform.cli.ok("run", "--detach", "--", "sleep", "600").strip()
    sign_in(page, platform, "admin", platform.admin_password)
    page.goto(f"{platform.web_url}/jobs/{job_id}")
    expect(page.locator("#job-status")).to_contain_text("running", timeout=15_000)
    page.get_by_role("button", name="Kill").click()
    expect(page.locator("#job-status")).to_contain_text("cancelled", timeout=20_000)
    expect(page.get_by_role("button", name="Kill")).to_be_disabled()


def test_admin_pages_are_for_admins_only(page: Page, platform: Platform) -> None:
    sign_in(page, platform, "admin", platform.admin_password)
    nav(page, "Admin").click()
    page.wait_for_url(re.compile(r".*/admin/?$"))
    # The page has loaded its data (the presets) before the form is used: a load that ends
    # after the name is typed would redraw the form without it.
    expect(page.get_by_role("cell", name="cpu-small", exact=True)).to_be_visible()
    page.get_by_label("Name").fill("webuser")
    page.get_by_role("button", name="Create user").click()
    password = page.locator("#one-time-password").inner_text()
    assert len(password) >= 16
    screenshot(page, "admin")
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, platform, "webuser", password)
    expect(nav(page, "Admin")).to_have_count(0)
    page.goto(f"{platform.web_url}/admin")
    expect(page.locator("#refused")).to_contain_text("admins only")
    expect(page.get_by_role("cell", name="webuser")).to_have_count(0)


def test_the_api_explorer_runs_me_with_the_users_token(page: Page, platform: Platform) -> None:
    sign_in(page, platform, "admin", platform.admin_password)
    nav(page, "API explorer").click()
    page.wait_for_url(re.compile(r".*/explorer/?$"))
    explorer = page.frame_locator("#graphiql")
    explorer.locator(".graphiql-query-editor .CodeMirror").first.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("{ me { name } }")
    explorer.locator(".graphiql-execute-button").click()
    expect(explorer.get_by_role("region", name="Result Window")).to_contain_text('"admin"')
    screenshot(page, "explorer")


def test_a_narrow_window_keeps_the_page_usable(page: Page, platform: Platform) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, platform, "admin", platform.admin_password)
    expect(nav(page, "Run a job")).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, f"the page is {width}px wide on a 390px window"
    screenshot(page, "jobs-narrow")


def test_the_run_form_takes_volumes(page: Page, platform: Platform, tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("mounted from storage\n")
    platform.cli.ok("storage", "cp", str(source), "storage:web-data/in.txt")
    sign_in(page, platform, "admin", platform.admin_password)
    nav(page, "Run a job").click()
    page.wait_for_url(re.compile(r".*/run/?$"))
    page.get_by_label("Command").fill("cat /var/data/in.txt")
    page.get_by_label("Volumes").fill("storage:web-data:/usr/data")
    page.get_by_role("button", name="Run").click()
    expect(page.locator("#volumes").locator("xpath=..")).to_be_visible()
    expect(page.get_by_role("alert").first).to_contain_text("inside /usr")
    page.get_by_label("Volumes").fill("storage:web-data:/var/data:ro")
    page.get_by_role("button", name="Run").click()
    page.wait_for_url(re.compile(r".*/jobs/job-[0-9a-f-]+/?$"))
    expect(page.locator("#job-status")).to_contain_text("succeeded", timeout=20_000)
    expect(page.locator("#log")).to_contain_text("mounted from storage")
