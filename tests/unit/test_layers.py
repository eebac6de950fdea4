"""The layers hold at import time too: a client or a gateway loads no server module."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SERVER_SIDE = ("control_plane", "server", "graph", "resolvers")
SERVER_LIBRARIES = ("sqlalchemy", "strawberry", "starlette", "uvicorn", "casbin", "asyncpg")


def loaded_after(statement: str) -> set[str]:
    """The top-level packages a fresh interpreter has loaded after ``statement``."""
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    return {name.split(".")[0] for name in json.loads(out)}


@pytest.mark.parametrize("package", ["sdk", "glia", "cli.main"])
def test_clients_and_the_kernel_load_nothing_of_the_server(package: str) -> None:
    loaded = loaded_after(f"import {package}")
    assert not loaded & {*SERVER_SIDE, *SERVER_LIBRARIES, "cluster_gateway"}


def test_the_gateway_loads_nothing_of_the_control_plane() -> None:
    loaded = loaded_after(
        "import cluster_gateway.gateway, cluster_gateway.embedded, cluster_gateway.runtimes.local,"
        " cluster_gateway.remote, cluster_gateway.remote_bytes, cluster_gateway.trust"
    )
    assert "cluster_gateway" in loaded
    assert not loaded & {*SERVER_SIDE, "sdk", "cli", "sqlalchemy", "strawberry", "starlette"}


def test_the_kernel_loads_no_library_that_does_io() -> None:
    loaded = loaded_after("import glia.acl, glia.auth, glia.clusters, glia.jobs, glia.monitoring")
    assert not loaded & {"httpx", "gql", "websockets", "redis", "psutil", "sqlalchemy"}
