"""Orgs and projects in the web UI: the header's project switcher decides which jobs the jobs
page lists and where a run lands; an admin makes an org, a project and members; a member who
manages nothing gets no controls, and what the server refuses shows as its error."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.web.conftest import Platform, nav, screenshot, sign_in

pytestmark = pytest.mark.web

CAROL_PASSWORD = "carol-password-1234"


def choose(page: Page, label: str, option: str) -> None:
    """Pick ``option`` in the select labelled ``label`` (a Radix select: a button and a list)."""
    page.get_by_role("combobox", name=label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()


def test_the_project_switcher_decides_the_jobs_listed_and_where_a_run_lands(
    page: Page, platform: Platform
) -> None:
    platform.cli.ok("run", "--detach", "--name", "in-personal", "--", "sleep", "300")
    sign_in(page, platform, "admin", platform.admin_password)
    current = page.locator("#current-project")
    expect(current).to_have_text("admin/admin")  # the personal org's personal project
    expect(page.get_by_text("in-personal")).to_be_visible()

    page.goto(f"{platform.web_url}/orgs/admin")
    page.get_by_label("Project name").fill("vision")
    page.get_by_role("button", name="Create project").click()
    expect(page.locator("#project-vision")).to_be_visible()
    choose(page, "Project", "vision")

    nav(page, "Run a job").click()
    page.wait_for_url(re.compile(r".*/run/?$"))
    expect(current).to_have_text("admin/vision")
    page.get_by_label("Command").fill("sleep 300")
    page.get_by_label("Name", exact=True).fill("in-vision")
    page.get_by_role("button", name="Run").click()
    page.wait_for_url(re.compile(r".*/jobs/job-[0-9a-f-]+/?$"))
    expect(page.locator("#job-project")).to_have_text("admin/vision")

    nav(page, "Jobs").click()
    page.wait_for_url(re.compile(r".*/jobs/?$"))
    expect(current).to_have_text("admin/vision")
    expect(page.get_by_text("in-vision")).to_be_visible()
    expect(page.get_by_text("in-personal")).to_have_count(0)
    screenshot(page, "jobs-of-a-project")

    choose(page, "Project", "admin")  # on the jobs page: the table follows at once
    expect(current).to_have_text("admin/admin")
    expect(page.get_by_text("in-personal")).to_be_visible()
    expect(page.get_by_text("in-vision")).to_have_count(0)


def test_an_admin_makes_an_org_with_a_project_and_a_member_who_manages_nothing(
    page: Page, platform: Platform
) -> None:
    platform.cli.ok("admin", "add-user", "carol", "--password-stdin", input=CAROL_PASSWORD + "\n")
    sign_in(page, platform, "admin", platform.admin_password)
    nav(page, "Orgs").click()
    page.wait_for_url(re.compile(r".*/orgs/?$"))
    expect(page.locator("#org-carol")).to_be_visible()  # the page has loaded its orgs
    name = page.get_by_label("Name", exact=True)
    name.fill("acme")
    expect(name).to_have_value("acme")
    page.get_by_role("button", name="Create org").click()
    expect(page.locator("#org-acme")).to_contain_text("default")  # the default cluster
    # The server's error, as it says it: org names and user names are one namespace.
    page.get_by_label("Name", exact=True).fill("carol")
    page.get_by_role("button", name="Create org").click()
    expect(page.get_by_role("alert")).to_contain_text("'carol' is taken")
    page.get_by_role("button", name="Dismiss").click()
    screenshot(page, "orgs")

    page.locator("#org-acme").get_by_role("link", name="acme").click()
    page.wait_for_url(re.compile(r".*/orgs/acme/?$"))
    members = page.locator("#org-member-form")
    members.get_by_label("User", exact=True).fill("carol")
    members.get_by_role("button", name="Add member").click()
    expect(page.locator("#member-carol")).to_contain_text("user")
    page.get_by_label("Project name").fill("vision")
    page.get_by_role("button", name="Create project").click()
    expect(page.locator("#project-vision")).to_be_visible()
    screenshot(page, "org")
    page.locator("#project-vision").get_by_role("link", name="vision").click()
    page.wait_for_url(re.compile(r".*/orgs/acme/vision/?$"))
    members = page.locator("#project-member-form")
    members.get_by_label("User", exact=True).fill("carol")
    members.get_by_role("combobox", name="Role").click()
    page.get_by_role("option", name="reader", exact=True).click()
    members.get_by_role("button", name="Add member").click()
    expect(page.locator("#member-carol")).to_contain_text("reader")
    screenshot(page, "project")
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, platform, "carol", CAROL_PASSWORD)
    choose(page, "Org", "acme")
    expect(page.locator("#current-project")).to_have_text("acme/vision")
    # A reader may not run a job in the project: the server says so.
    nav(page, "Run a job").click()
    page.wait_for_url(re.compile(r".*/run/?$"))
    page.get_by_label("Command").fill("true")
    page.get_by_role("button", name="Run").click()
    expect(page.get_by_role("alert").first).to_be_visible()
    expect(page).to_have_url(re.compile(r".*/run/?$"))

    nav(page, "Orgs").click()
    page.wait_for_url(re.compile(r".*/orgs/?$"))
    expect(page.locator("#org-acme")).to_be_visible()
    expect(page.get_by_role("button", name="Create org")).to_have_count(0)
    expect(page.locator("#org-acme").get_by_role("button")).to_have_count(0)
    page.locator("#org-acme").get_by_role("link", name="acme").click()
    page.wait_for_url(re.compile(r".*/orgs/acme/?$"))
    expect(page.locator("#org-role")).to_have_text("user")
    expect(page.locator("#member-admin")).to_be_visible()
    expect(page.locator("#org-member-form")).to_have_count(0)
    expect(page.get_by_role("button", name="Create project")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("^(Remove|Delete)"))).to_have_count(0)
    page.locator("#project-vision").get_by_role("link", name="vision").click()
    page.wait_for_url(re.compile(r".*/orgs/acme/vision/?$"))
    expect(page.locator("#project-role")).to_have_text("reader")
    expect(page.locator("#project-member-form")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("^Remove"))).to_have_count(0)


def test_cluster_users_on_the_admin_page(page: Page, platform: Platform) -> None:
    platform.cli.ok("admin", "add-user", "dave", "--password-stdin", input="dave-password-1234\n")
    sign_in(page, platform, "admin", platform.admin_password)
    nav(page, "Admin").click()
    page.wait_for_url(re.compile(r".*/admin/?$"))
    form = page.locator("#cluster-user-form")
    form.get_by_label("User", exact=True).fill("dave")
    form.get_by_role("combobox", name="Role").click()
    page.get_by_role("option", name="manager", exact=True).click()
    form.get_by_role("button", name="Add member").click()
    row = page.locator("#cluster-users #member-dave")
    expect(row).to_contain_text("manager")
    row.get_by_role("button", name="Remove dave").click()
    expect(row).to_have_count(0)
    # A user who does not exist: the server's error.
    form.get_by_label("User", exact=True).fill("nobody")
    form.get_by_role("button", name="Add member").click()
    expect(page.get_by_role("alert").first).to_contain_text("nobody")


def test_an_admin_gives_an_org_clusters_and_deletes_it_once_its_projects_are_gone(
    page: Page, platform: Platform
) -> None:
    sign_in(page, platform, "admin", platform.admin_password)
    page.goto(f"{platform.web_url}/orgs")
    page.get_by_label("Name", exact=True).fill("doomed")
    page.get_by_role("button", name="Create org").click()
    row = page.locator("#org-doomed")
    expect(row).to_contain_text("default")
    row.get_by_role("button", name="Remove cluster default from doomed").click()
    expect(row).not_to_contain_text("default")
    choose(page, "Add a cluster to doomed", "default")
    expect(row).to_contain_text("default")

    page.goto(f"{platform.web_url}/orgs/doomed")
    page.get_by_label("Project name").fill("short-lived")
    page.get_by_role("button", name="Create project").click()
    expect(page.locator("#project-short-lived")).to_be_visible()

    page.goto(f"{platform.web_url}/orgs")
    row.get_by_role("button", name="Delete").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Delete").click()
    expect(page.get_by_role("alert")).to_contain_text("still has projects (short-lived)")
    page.get_by_role("button", name="Dismiss").click()

    page.goto(f"{platform.web_url}/orgs/doomed")
    page.locator("#project-short-lived").get_by_role("button", name="Delete").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Delete").click()
    expect(page.locator("#project-short-lived")).to_have_count(0)

    page.goto(f"{platform.web_url}/orgs")
    row.get_by_role("button", name="Delete").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Delete").click()
    expect(row).to_have_count(0)


def test_an_admin_sets_quotas_and_the_header_shows_the_tightest_and_the_balance(
    page: Page, platform: Platform
) -> None:
    sign_in(page, platform, "admin", platform.admin_password)
    page.goto(f"{platform.web_url}/admin")
    expect(page.get_by_role("cell", name="cpu-small", exact=True)).to_be_visible()
    form = page.locator("#quota-form")
    form.locator("#quota-org").fill("admin")
    form.locator("#quota-running_jobs").fill("50")
    form.locator("#quota-credits").fill("75")
    form.get_by_role("button", name="Set quota").click()
    expect(page.locator("#quota-result")).to_contain_text(
        re.compile(r"org admin: Jobs \d+/50 · Credits 75\.00")
    )
    form.locator("#quota-running_jobs").fill("lots")
    form.get_by_role("button", name="Set quota").click()
    expect(form.get_by_role("alert")).to_have_text("not a whole number")
    platform.cli.ok(
        "admin", "set-quota", "--cluster", "default", "--user", "admin", "--running-jobs", "40"
    )
    try:
        page.reload()
        badge = page.locator("#quota-summary")
        # The cluster-user level leaves fewer seats than the org's: it is the one shown.
        expect(badge).to_contain_text(re.compile(r"Jobs \d+/40"))
        expect(badge).to_contain_text("Credits 75.00")
        screenshot(page, "quota-in-header")
    finally:
        for level in (["--org", "admin"], ["--cluster", "default", "--user", "admin"]):
            platform.cli.ok(
                "admin",
                "set-quota",
                *level,
                "--running-jobs",
                "unlimited",
                "--credits",
                "unlimited",
            )
    page.reload()
    expect(page.locator("#quota-summary")).to_have_count(0)
