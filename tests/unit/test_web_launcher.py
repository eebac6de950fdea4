"""Starting the web UI: bun only from the npm registry, and no web UI is no reason to fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli import server as commands
from web import launcher
from web.launcher import WebError


def test_without_npm_the_web_ui_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # no bun installed yet
    monkeypatch.setattr(launcher.shutil, "which", lambda _name: None)
    with pytest.raises(WebError, match="install Node.js and npm"):
        launcher.ensure_bun()


def test_glia_up_serves_the_api_when_the_web_ui_cannot_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(**_: object) -> None:
        raise WebError("no npm here")

    monkeypatch.setattr(launcher, "start", refuse)
    served: list[bool] = []

    def run() -> int:
        served.append(True)
        return 0

    code = commands._with_web(run, enabled=True, api_host="127.0.0.1", api_port=1, web_port=None)
    assert (code, served) == (0, [True])
    assert "the web UI is not served: no npm here" in capsys.readouterr().err
