"""The Buckets page: create a bucket, upload into it, browse by prefix, download through a
signed URL and delete, through a real browser against a real `glia up`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.web.conftest import Platform, nav, screenshot, sign_in

pytestmark = pytest.mark.web


def test_buckets_and_objects(page: Page, platform: Platform, tmp_path: Path) -> None:
    source = tmp_path / "hello.txt"
    source.write_text("hello from a bucket\n")
    sign_in(page, platform, "admin", platform.admin_password)
    nav(page, "Buckets").click()
    page.wait_for_url(re.compile(r".*/buckets/?$"))

    form = page.locator("#bucket-form")
    form.get_by_label("Name", exact=True).fill("pics")
    form.get_by_role("button", name="Create bucket").click()
    row = page.locator("#bucket-default-admin-admin-pics")
    expect(row).to_contain_text("pics")
    platform.cli.ok("blob", "cp", str(source), "blob:pics/albums/one.txt")

    row.get_by_role("button", name="pics").click()
    objects = page.locator("#objects")
    expect(objects.locator("[data-name='albums/']")).to_be_visible()
    page.locator("#blob-upload input[type=file]").set_input_files(str(source))
    page.get_by_role("button", name="Upload here").click()
    uploaded = objects.locator("[data-name='hello.txt']")
    expect(uploaded).to_contain_text("20 B")
    assert platform.cli.ok("blob", "cp", "blob:pics/hello.txt", "-") == source.read_text()
    screenshot(page, "buckets")

    with page.expect_popup() as popup:
        uploaded.get_by_role("button", name="Download").click()
    expect(popup.value.locator("body")).to_contain_text("hello from a bucket")
    popup.value.close()

    objects.locator("[data-name='albums/']").get_by_role("button", name="albums/").click()
    expect(objects.locator("[data-name='one.txt']")).to_be_visible()
    page.get_by_role("button", name="Up", exact=True).click()
    uploaded.get_by_role("button", name="Delete").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Delete").click()
    expect(objects.locator("[data-name='hello.txt']")).to_have_count(0)
    assert "hello.txt" not in platform.cli.ok("blob", "ls", "blob:pics")
