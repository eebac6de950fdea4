"""Service accounts in the web UI: the token shown once works, leaving the page forgets it, and
deleting the account ends it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Page, expect

from sdk import GliaClient, Unauthenticated, User
from tests.web.conftest import Platform, nav, screenshot, sign_in

pytestmark = pytest.mark.web

T = TypeVar("T")
CAROL_PASSWORD = "carol-password-1234"


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` in a thread of its own: Playwright's sync API holds this thread's
    event loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def me(platform: Platform, token: str) -> User:
    async with GliaClient(platform.server.url, token, timeout=30) as client:
        return await client.auth.me()


def test_a_service_account_token_is_shown_once_works_and_ends_with_the_account(
    page: Page, platform: Platform
) -> None:
    platform.cli.ok("admin", "add-user", "carol", "--password-stdin", input=CAROL_PASSWORD + "\n")
    sign_in(page, platform, "carol", CAROL_PASSWORD)
    nav(page, "Service accounts").click()
    page.wait_for_url(re.compile(r".*/service-accounts/?$"))
    form = page.locator("#service-account-form")
    form.get_by_label("Name", exact=True).fill("ci")
    form.get_by_role("button", name="Create service account").click()
    shown = page.locator("#service-account-token")
    expect(shown).to_have_value(re.compile(r"\S{16,}"))
    expect(page.locator("#new-token")).to_contain_text("shown once")
    expect(page.locator("#service-account-carol-ci")).to_contain_text("carol/ci")
    token = shown.input_value()
    screenshot(page, "service-accounts")
    assert run_async(me(platform, token)).name == "carol/ci"

    # A reload connects the page again and runs its load again, as a network blip does:
    # the token stays.
    page.reload()
    expect(shown).to_have_value(token)

    # Leaving the page forgets the token: back on it, it is gone.
    nav(page, "Jobs").click()
    page.wait_for_url(re.compile(r".*/jobs/?$"))
    nav(page, "Service accounts").click()
    page.wait_for_url(re.compile(r".*/service-accounts/?$"))
    expect(page.locator("#service-account-carol-ci")).to_be_visible()
    expect(shown).to_have_count(0)

    # One in a project, with a role there.
    form.get_by_label("Name", exact=True).fill("deployer")
    form.get_by_label("Org", exact=True).fill("carol")
    form.get_by_label("Project", exact=True).fill("carol")
    form.get_by_role("combobox", name="Role in the project").click()
    page.get_by_role("option", name="reader", exact=True).click()
    form.get_by_role("button", name="Create service account").click()
    expect(page.locator("#service-account-carol-deployer")).to_contain_text("carol/carol")
    expect(shown).to_have_value(re.compile(r"\S{16,}"))
    page.get_by_role("button", name="Done").click()
    expect(shown).to_have_count(0)

    # Leaving by a whole new page (no unmount on this one) and coming back forgets it too.
    form.get_by_label("Name", exact=True).fill("builder")
    form.get_by_role("button", name="Create service account").click()
    expect(shown).to_have_value(re.compile(r"\S{16,}"))
    page.goto(f"{platform.web_url}/orgs")
    expect(page.locator("#org-carol")).to_be_visible()  # that page has loaded
    page.goto(f"{platform.web_url}/service-accounts")
    expect(page.locator("#service-account-carol-builder")).to_be_visible()
    expect(shown).to_have_count(0)

    # A name taken: the server's error.
    form.get_by_label("Name", exact=True).fill("ci")
    form.get_by_role("button", name="Create service account").click()
    expect(page.get_by_role("alert").first).to_contain_text("ci")
    expect(shown).to_have_count(0)

    row = page.locator("#service-account-carol-ci")
    row.get_by_role("button", name="Delete").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Delete").click()
    expect(row).to_have_count(0)
    with pytest.raises(Unauthenticated):
        run_async(me(platform, token))
