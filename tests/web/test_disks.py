"""The Disks page: create a disk, see it listed with its size and use, a size out of range
refused at its field, delete it, through a real browser against a real `glia up`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from cluster_gateway.disks import LocalDisks
from tests.web.conftest import Platform, nav, screenshot, sign_in

pytestmark = [
    pytest.mark.web,
    pytest.mark.skipif(
        LocalDisks(Path("/nonexistent")).problem() is not None,
        reason="making disks needs root, mkfs.ext4 and loop devices, as CI has",
    ),
]


def test_disks(page: Page, platform: Platform) -> None:
    sign_in(page, platform, "admin", platform.admin_password)
    nav(page, "Disks").click()
    page.wait_for_url(re.compile(r".*/disks/?$"))
    form = page.locator("#disk-form")
    form.get_by_label("Size (GiB)").fill("0.001")  # 1 MiB: the server's limits, at the field
    form.get_by_role("button", name="Create disk").click()
    expect(form.get_by_role("alert")).to_contain_text("16 MiB to 4 TiB")

    form.get_by_label("Size (GiB)").fill("0.25")
    form.get_by_label("Name", exact=True).fill("scratch")
    form.get_by_label("Delete when unused for").fill("7d")
    form.get_by_role("button", name="Create disk").click()
    disks = page.locator("#disks")
    expect(disks).to_contain_text("scratch")
    expect(disks).to_contain_text("256.0 MiB")
    expect(disks).to_contain_text("ready")
    [listed] = platform.cli.json("disk", "ls")
    assert listed["name"] == "scratch" and listed["timeoutUnusedSeconds"] == 7 * 86400
    screenshot(page, "disks")

    page.locator(f"#disk-{listed['id']}").get_by_role("button", name="Delete").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Delete").click()
    expect(disks).not_to_contain_text("scratch")
    assert platform.cli.json("disk", "ls") == []
