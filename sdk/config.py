"""The CLI's config file: which server, which token, which user and default cluster.

The path comes from ``GLIA_CONFIG`` or defaults to ``~/.config/glia/config.toml``. The token
is a secret: the file is written with mode 0600, atomically (a temporary file renamed over it),
so a crash never leaves half a config behind.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

DEFAULT_SERVER = "http://127.0.0.1:8080"


@dataclass(frozen=True)
class CliConfig:
    server: str | None = None
    token: str | None = dataclasses.field(default=None, repr=False)
    username: str | None = None
    cluster: str | None = None

    def with_server(self, server: str | None) -> CliConfig:
        return dataclasses.replace(self, server=server)

    def with_token(self, token: str | None) -> CliConfig:
        return dataclasses.replace(self, token=token)

    def with_username(self, username: str | None) -> CliConfig:
        return dataclasses.replace(self, username=username)

    def with_cluster(self, cluster: str | None) -> CliConfig:
        return dataclasses.replace(self, cluster=cluster)

    def replace(self, **changes: Any) -> CliConfig:
        return dataclasses.replace(self, **changes)

    @property
    def server_url(self) -> str:
        """The configured server, or the local default that ``glia up`` listens on."""
        return self.server or DEFAULT_SERVER

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CliConfig:
        """Known string keys only: a config written by a newer CLI still loads."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: str(v) for k, v in data.items() if k in known and v is not None})

    def to_dict(self) -> dict[str, str]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def config_path(env: Mapping[str, str] = os.environ) -> Path:
    """``$GLIA_CONFIG`` if set and not empty, else ``~/.config/glia/config.toml``."""
    explicit = env.get("GLIA_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    return Path.home() / ".config" / "glia" / "config.toml"


def load_config(path: Path | None = None, *, env: Mapping[str, str] = os.environ) -> CliConfig:
    """The saved config, or an empty one when the file does not exist yet.

    Raises ValueError naming the file when it is not valid TOML.
    """
    path = path or config_path(env)
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        return CliConfig()
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"invalid config file {path}: {exc}") from exc
    return CliConfig.from_dict(data)


def save_config(
    config: CliConfig, path: Path | None = None, *, env: Mapping[str, str] = os.environ
) -> Path:
    """Write the config with mode 0600, creating parent directories; returns the path."""
    path = path or config_path(env)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp already creates the file 0600; chmod in case the umask or platform differ.
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            tomli_w.dump(config.to_dict(), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path
