"""Where Glia keeps what it can download again: the user's cache (XDG_CACHE_HOME)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/glia``, else ``~/.cache/glia``: tools and assets installed from the
    npm registry (bun for the web UI's build, GraphiQL's files)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "glia"
