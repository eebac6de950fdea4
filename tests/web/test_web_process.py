"""The web UI's process ends with `glia up`, however `glia up` ends."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.web.conftest import start_with_web

pytestmark = pytest.mark.web


def _answers(url: str) -> bool:
    try:
        httpx.get(f"{url}/login", timeout=1)
    except httpx.HTTPError:
        return False
    return True


def test_a_terminated_glia_up_takes_its_web_ui_with_it(tmp_path: Path) -> None:
    server, web_url = start_with_web(tmp_path)
    try:
        assert _answers(web_url)
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)  # not Ctrl-C: no clean-up code runs
        server.process.wait(timeout=30)
        deadline = time.monotonic() + 20
        while _answers(web_url) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _answers(web_url), "the web UI outlived glia up"
    finally:
        server.stop()
