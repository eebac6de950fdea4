"""A job's output on the web UI: ANSI colours become styles, markup stays text."""

from __future__ import annotations

from sdk import LogStream
from web.pages.job import _html


def test_markup_in_a_jobs_output_is_shown_as_text() -> None:
    html = _html('<img src=x onerror="alert(1)"><script>alert(2)</script>\n', LogStream.STDOUT)
    assert "<img" not in html and "<script" not in html
    assert "&lt;img" in html and "&lt;script&gt;" in html


def test_ansi_colours_become_styles_and_streams_are_marked() -> None:
    html = _html("\x1b[31mred\x1b[0m plain\n", LogStream.STDOUT)
    assert "\x1b" not in html and "[31m" not in html
    assert "color" in html and "red" in html
    assert _html("oops\n", LogStream.STDERR).startswith('<span class="log-stderr">')
    assert _html("dropped\n", LogStream.SYSTEM).startswith('<span class="log-system">')
