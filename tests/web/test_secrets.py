"""The Secrets page: add a secret from typed text and from a file, replace one, a bad key
shown at its field, delete one, and the values never on the page, through a real browser
against a real `glia up`."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.web.conftest import Platform, nav, screenshot, sign_in

pytestmark = pytest.mark.web

VALUE = "glia-web-value-" + uuid.uuid4().hex


def test_secrets_are_added_and_deleted_and_never_shown(
    page: Page, platform: Platform, tmp_path: Path
) -> None:
    source = tmp_path / "key.pem"
    source.write_text(f"-----BEGIN KEY-----\n{VALUE}-file\n-----END KEY-----\n")
    sign_in(page, platform, "admin", platform.admin_password)
    nav(page, "Secrets").click()
    page.wait_for_url(re.compile(r".*/secrets/?$"))

    form = page.locator("#secret-form")
    form.get_by_label("Key").fill("API_TOKEN")
    form.get_by_label("Value").fill(VALUE)
    form.get_by_role("button", name="Add secret").click()
    rows = page.locator("#secrets")
    expect(rows.locator("[data-key='API_TOKEN']")).to_contain_text("admin")
    expect(page.get_by_role("status")).to_contain_text("Added API_TOKEN")
    expect(form.get_by_label("Value")).to_have_value("")

    form.get_by_label("Key").fill("TLS_KEY")
    page.locator("#secret-file input[type=file]").set_input_files(str(source))
    form.get_by_role("button", name="Add from file").click()
    expect(rows.locator("[data-key='TLS_KEY']")).to_be_visible()

    form.get_by_label("Key").fill("API_TOKEN")
    form.get_by_label("Value").fill(VALUE + "-again")
    form.get_by_role("button", name="Add secret").click()
    expect(page.get_by_role("status")).to_contain_text("Replaced API_TOKEN")

    form.get_by_label("Key").fill("not a key")
    form.get_by_label("Value").fill(VALUE)
    form.get_by_role("button", name="Add secret").click()
    expect(form.get_by_role("alert")).to_contain_text("invalid")
    screenshot(page, "secrets")

    listed = platform.cli.json("secret", "ls")
    assert [s["key"] for s in listed] == ["API_TOKEN", "TLS_KEY"]
    assert VALUE not in page.content()

    rows.locator("[data-key='API_TOKEN']").get_by_role("button", name="Delete").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Delete").click()
    expect(rows.locator("[data-key='API_TOKEN']")).to_have_count(0)
    assert [s["key"] for s in platform.cli.json("secret", "ls")] == ["TLS_KEY"]
    assert VALUE not in page.content()
    assert VALUE not in platform.server.log_path.read_text()
