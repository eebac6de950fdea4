"""Sharing in the web UI: a job shared from its page, a role that shares one with its members
until the grant is revoked, and the server's warnings and errors as it says them."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.web.conftest import Platform, nav, screenshot, sign_in

pytestmark = pytest.mark.web

ALICE = ("alice", "alice-password-1234")
BOB = ("bob", "bob-password-1234")
TEAM = "role://user/alice/team"


@pytest.fixture(scope="module", autouse=True)
def users(platform: Platform) -> None:
    for name, password in (ALICE, BOB):
        platform.cli.ok("admin", "add-user", name, "--password-stdin", input=password + "\n")


def sign_in_as(page: Page, platform: Platform, user: tuple[str, str]) -> None:
    if page.url.startswith(platform.web_url) and not page.url.rstrip("/").endswith("/login"):
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(re.compile(r".*/login/?$"))
    sign_in(page, platform, *user)


def run_job(page: Page, name: str) -> tuple[str, str]:
    """Run a job from the run page; its page's URL and the job's URI."""
    nav(page, "Run a job").click()
    page.wait_for_url(re.compile(r".*/run/?$"))
    page.get_by_label("Command").fill("sleep 300")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_role("button", name="Run").click()
    page.wait_for_url(re.compile(r".*/jobs/job-[0-9a-f-]+/?$"))
    uri = page.locator("#job-uri")
    expect(uri).to_have_text(re.compile(r"^job://"))
    return page.url, uri.inner_text()


def test_alice_shares_a_job_with_bob_from_its_page_and_bob_sees_it(
    page: Page, platform: Platform
) -> None:
    sign_in_as(page, platform, ALICE)
    job_url, uri = run_job(page, "for-bob")
    share = page.locator("#job-share")

    # A user who does not exist: the server's error, as it says it.
    share.get_by_label("Share with").fill("nobody")
    share.get_by_role("button", name="Share").click()
    expect(page.get_by_role("alert").first).to_contain_text("user 'nobody' not found")
    page.get_by_role("button", name="Dismiss").click()

    share.get_by_label("Share with").fill("bob")
    share.get_by_role("combobox", name="Action").click()
    page.get_by_role("option", name="read", exact=True).click()
    share.get_by_role("button", name="Share").click()
    expect(share).to_contain_text("Shared with bob (read).")
    screenshot(page, "job-shared")

    sign_in_as(page, platform, BOB)
    page.goto(job_url)
    expect(page.locator("#job-project")).to_have_text("alice/alice")
    expect(page.locator("#job-status")).to_contain_text("running", timeout=20_000)
    nav(page, "Sharing").click()
    page.wait_for_url(re.compile(r".*/sharing/?$"))
    row = page.locator("#permissions tr", has_text=uri)
    expect(row).to_contain_text("read")
    expect(row).to_contain_text("you")
    row.get_by_role("link", name=uri).click()  # a job's URI leads to its page
    page.wait_for_url(job_url)
    expect(page.locator("#job-project")).to_have_text("alice/alice")


def test_a_role_shares_a_job_with_its_members_until_the_grant_is_revoked(
    page: Page, platform: Platform
) -> None:
    sign_in_as(page, platform, ALICE)
    job_url, uri = run_job(page, "for-the-team")
    nav(page, "Sharing").click()
    page.wait_for_url(re.compile(r".*/sharing/?$"))
    page.locator("#create-role-form").get_by_label("Role name").fill("team")
    page.get_by_role("button", name="Create role").click()
    expect(page.locator("#role-team")).to_contain_text(TEAM)

    form = page.locator("#share-form")
    form.get_by_label("URI").fill(uri)
    form.get_by_label("User or role").fill(TEAM)
    form.get_by_role("button", name="Share").click()
    expect(page.get_by_role("status")).to_contain_text(f"Shared {uri} with {TEAM} (read).")
    expect(page.locator("#shared tr", has_text=uri)).to_contain_text(TEAM)

    members = page.locator("#role-members-form")
    expect(members.get_by_role("combobox", name="Role")).to_contain_text(TEAM)
    members.get_by_label("Member").fill("bob")
    members.get_by_role("button", name="Add member").click()
    expect(page.get_by_role("status")).to_contain_text(f"Added bob to {TEAM}.")
    expect(page.locator("#role-team .role-members")).to_have_text("bob")

    # A URI that names nothing (yet): granted, with the server's warning.
    ghost = uri.rsplit("/", 1)[0] + "/job-00000000-0000-0000-0000-000000000000"
    form.get_by_label("URI").fill(ghost)
    form.get_by_label("User or role").fill("bob")
    form.get_by_role("button", name="Share").click()
    expect(page.locator("#share-warnings")).to_contain_text("names nothing that exists yet")
    # A URI that is not one: the server's error at its field.
    form.get_by_label("URI").fill("not a uri")
    form.get_by_role("button", name="Share").click()
    expect(form.get_by_role("alert")).to_contain_text("scheme://")
    screenshot(page, "sharing")

    sign_in_as(page, platform, BOB)
    page.goto(job_url)
    expect(page.locator("#job-project")).to_have_text("alice/alice")
    nav(page, "Sharing").click()
    page.wait_for_url(re.compile(r".*/sharing/?$"))
    expect(page.locator("#held-roles")).to_contain_text(TEAM)
    expect(page.locator("#permissions tr", has_text=uri)).to_contain_text(TEAM)

    sign_in_as(page, platform, ALICE)
    nav(page, "Sharing").click()
    page.wait_for_url(re.compile(r".*/sharing/?$"))
    shared = page.locator("#shared tr", has_text=uri)
    shared.get_by_role("button", name=f"Revoke {TEAM} on {uri}").click()
    expect(shared).to_have_count(0)
    # Bob leaves the role, and the role goes.
    members.get_by_label("Member").fill("bob")
    members.get_by_role("button", name="Remove member").click()
    expect(page.get_by_role("status")).to_contain_text(f"Removed bob from {TEAM}.")
    expect(page.locator("#role-team .role-members")).to_have_text("-")
    page.locator("#role-team").get_by_role("button", name="Delete").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Delete").click()
    expect(page.locator("#role-team")).to_have_count(0)

    sign_in_as(page, platform, BOB)
    page.goto(job_url)
    expect(page.get_by_role("alert").first).to_contain_text("not found")
    expect(page.locator("#job-project")).not_to_have_text("alice/alice")
    nav(page, "Sharing").click()
    page.wait_for_url(re.compile(r".*/sharing/?$"))
    expect(page.locator("#held-roles")).not_to_contain_text(TEAM)
    expect(page.locator("#permissions tr", has_text=uri)).to_have_count(0)
