"""The file browser: navigate, make a directory, upload, download, rename and remove, on the
chosen project's storage, through a real browser against a real `glia up`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.web.conftest import Platform, nav, screenshot, sign_in

pytestmark = pytest.mark.web


def _storage_dir(platform: Platform) -> Path:
    return platform.server.root / "data" / "clusters" / "default" / "storage" / "admin" / "admin"


def test_the_file_browser(page: Page, platform: Platform, tmp_path: Path) -> None:
    platform.cli.ok("storage", "mkdir", "storage:datasets/v1")
    source = tmp_path / "hello.txt"
    source.write_text("hello from the browser\n")
    sign_in(page, platform, "admin", platform.admin_password)
    nav(page, "Storage").click()
    page.wait_for_url(re.compile(r".*/storage/?$"))
    entries = page.locator("#storage-entries")
    expect(entries).to_contain_text("datasets/")

    # Into a directory and back by the path above the table.
    entries.get_by_role("link", name="datasets/").click()
    expect(entries).to_contain_text("v1/")
    page.locator("#storage-path").get_by_role("link", name="/", exact=True).click()
    expect(entries).to_contain_text("datasets/")

    page.get_by_placeholder("New directory").fill("models")
    page.get_by_role("button", name="Make directory").click()
    expect(entries).to_contain_text("models/")
    assert (_storage_dir(platform) / "models").is_dir()

    page.locator("#storage-upload input[type=file]").set_input_files(str(source))
    page.get_by_role("button", name="Upload", exact=True).click()
    row = entries.locator("[data-name='hello.txt']")
    expect(row).to_contain_text("23 B")
    assert (_storage_dir(platform) / "hello.txt").read_text() == source.read_text()
    screenshot(page, "storage")

    with page.expect_download() as download:
        row.get_by_role("button", name="Download").click()
    saved = tmp_path / "downloaded.txt"
    download.value.save_as(saved)
    assert saved.read_text() == source.read_text()

    row.get_by_role("button", name="Rename").click()
    renamed = entries.get_by_label("New name")
    renamed.fill("greeting.txt")
    entries.locator("form").get_by_role("button", name="Rename", exact=True).click()
    expect(entries.locator("[data-name='greeting.txt']")).to_be_visible()
    assert (_storage_dir(platform) / "greeting.txt").exists()

    entries.locator("[data-name='models']").get_by_role("button", name="Remove").click()
    expect(entries.locator("[data-name='models']")).to_have_count(0)
    assert not (_storage_dir(platform) / "models").exists()
