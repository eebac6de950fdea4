"""GraphiQL at `/graphql` in a browser, from files this server serves: no CDN at run time.

The files come from the npm registry (`graphiql`, `react`, `react-dom`), installed once into
the user's cache by `ensure_assets` when the server starts. Without them (no npm, offline on a
first start) the page says how to get them instead of loading forever.

The page takes a token from its URL fragment (``/graphql#token=…``, which browsers never send
to a server), removes it from the address bar and sends it as ``Authorization: Bearer``: the
web UI's API explorer opens it so, already signed in.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

from glia.paths import cache_dir

logger = logging.getLogger(__name__)

GRAPHIQL_VERSION = "3.8.3"
PACKAGES = (f"graphiql@{GRAPHIQL_VERSION}", "react@18.3.1", "react-dom@18.3.1")
# What the page loads, by the name it is served under.
ASSETS = {
    "react.js": "react/umd/react.production.min.js",
    "react-dom.js": "react-dom/umd/react-dom.production.min.js",
    "graphiql.js": "graphiql/graphiql.min.js",
    "graphiql.css": "graphiql/graphiql.min.css",
}


def assets_dir() -> Path:
    return cache_dir() / f"graphiql-{GRAPHIQL_VERSION}"


def _installed(directory: Path) -> bool:
    return all((directory / "node_modules" / path).is_file() for path in ASSETS.values())


def ensure_assets(directory: Path | None = None) -> bool:
    """Install GraphiQL's files from the npm registry unless they are there; False (and a
    warning in the log) when that cannot be done."""
    directory = directory or assets_dir()
    if _installed(directory):
        return True
    npm = shutil.which("npm")
    if npm is None:
        logger.warning("GraphiQL's files are not installed and npm is not there to get them")
        return False
    directory.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [npm, "install", "--prefix", str(directory), "--no-fund", "--no-audit", *PACKAGES],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if done.returncode != 0 or not _installed(directory):
        logger.warning("could not install GraphiQL from the npm registry: %s", done.stderr[-300:])
        return False
    return True


def routes(directory: Path | None = None) -> list[Route]:
    base = directory or assets_dir()

    async def asset(request: Request) -> Response:
        relative = ASSETS.get(request.path_params["name"])
        path = base / "node_modules" / relative if relative else None
        if path is None or not path.is_file():
            return PlainTextResponse("not found", status_code=404)
        return FileResponse(path, headers={"Cache-Control": "public, max-age=86400"})

    return [Route("/graphiql/{name}", asset, methods=["GET"])]


def page_html(directory: Path | None = None) -> str:
    if not _installed(directory or assets_dir()):
        return _MISSING
    return _PAGE


_MISSING = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Glia API</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 3em auto">
<h1>GraphiQL is not installed</h1>
<p>Its files come from the npm registry when the server starts; this server could not get
them (is npm installed and the registry reachable?). Restart the server once it can, or send
queries to this URL with any GraphQL client: <code>POST /graphql</code>.</p>
</body></html>
"""

_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Glia API</title>
  <link rel="stylesheet" href="/graphiql/graphiql.css">
  <style>body { margin: 0; height: 100vh; } #graphiql { height: 100vh; }</style>
</head>
<body>
  <div id="graphiql">Loading…</div>
  <script src="/graphiql/react.js"></script>
  <script src="/graphiql/react-dom.js"></script>
  <script src="/graphiql/graphiql.js"></script>
  <script>
    const fragment = new URLSearchParams(location.hash.slice(1));
    const token = fragment.get("token");
    if (token !== null) history.replaceState(null, "", location.pathname + location.search);
    const headers = token ? { Authorization: "Bearer " + token } : {};
    const fetcher = GraphiQL.createFetcher({ url: location.pathname, headers });
    ReactDOM.createRoot(document.getElementById("graphiql")).render(
      React.createElement(GraphiQL, {
        fetcher,
        defaultEditorToolsVisibility: false,
        defaultQuery: "{ me { name role } }\\n",
      }),
    );
  </script>
</body>
</html>
"""
