"""The Clusters admin page: a second local cluster registered, listed deployed with its
heartbeat and capacity, a bad gateway refused at its field, and the cluster decommissioned,
through a real browser against a real `glia up`."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.web.conftest import Platform, nav, screenshot, sign_in

pytestmark = pytest.mark.web


def test_clusters_admin_page(page: Page, platform: Platform) -> None:
    sign_in(page, platform, "admin", platform.admin_password)
    nav(page, "Clusters").click()
    page.wait_for_url(re.compile(r".*/admin/clusters/?$"))
    clusters = page.locator("#clusters")
    expect(clusters).to_contain_text("default")  # loaded before the form is used
    form = page.locator("#cluster-form")
    form.get_by_label("Name").fill("webcluster")
    form.get_by_label("Gateway").fill("ftp://nowhere")
    form.get_by_role("button", name="Add cluster").click()
    expect(form.get_by_role("alert")).to_contain_text("http")

    form.get_by_label("Gateway").fill("local")
    form.get_by_role("button", name="Add cluster").click()
    row = clusters.get_by_role("row").filter(has_text="webcluster")
    expect(row).to_contain_text("deployed")
    expect(row).to_contain_text("CPU")  # its capacity, from its heartbeat
    expect(page.locator("#gateway-secret")).to_have_count(0)  # a local gateway has none
    screenshot(page, "clusters")

    row.get_by_role("button", name="Remove").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Remove").click()
    expect(page.locator("#removed-note")).to_contain_text("webcluster removed")
    expect(clusters).not_to_contain_text("webcluster")
