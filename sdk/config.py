"""The CLI's config file: named contexts (a server, a user's token, a default cluster, org
and project), like kubectl's, and which one is in use.

    current-context = "admin@127.0.0.1:8080"

    [contexts."admin@127.0.0.1:8080"]
    server = "http://127.0.0.1:8080"
    username = "admin"
    token = "..."
    cluster = "default"
    org = "acme"
    project = "vision"

The path comes from ``GLIA_CONFIG`` or defaults to ``~/.config/glia/config.toml``. In a job
run with ``--pass-config``, ``GLIA_API_URL`` and ``GLIA_TOKEN`` make a context named ``job``,
in use whatever the file says. Tokens are
secrets: the file is written with mode 0600, atomically (a temporary file renamed over it), so
a crash never leaves half a config behind. A file from before contexts (``server``, ``token``,
``username`` and ``cluster`` at the top) loads as one context, and is saved in the new shape.
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
from urllib.parse import urlsplit

DEFAULT_SERVER = "http://127.0.0.1:8080"


@dataclass(frozen=True)
class Context:
    """One server and who the CLI is there."""

    server: str | None = None
    token: str | None = dataclasses.field(default=None, repr=False)
    username: str | None = None
    cluster: str | None = None
    org: str | None = None
    """The org of `project`; None: the user's personal org."""
    project: str | None = None
    """Where new jobs go and what `glia ps` lists; None: the user's personal project."""

    def replace(self, **changes: Any) -> Context:
        return dataclasses.replace(self, **changes)

    @property
    def server_url(self) -> str:
        """The context's server, or the local default that ``glia up`` listens on."""
        return self.server or DEFAULT_SERVER

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Context:
        """Known string keys only: a config written by a newer CLI still loads."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: str(v) for k, v in data.items() if k in known and v is not None})

    def to_dict(self) -> dict[str, str]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def context_name(server: str, username: str | None) -> str:
    """The name ``glia login`` gives a context, kubectl-style.

    >>> context_name("http://127.0.0.1:8080/", "alice")
    'alice@127.0.0.1:8080'
    """
    host = urlsplit(server).netloc or server.rstrip("/")
    return f"{username}@{host}" if username else host


@dataclass(frozen=True)
class CliConfig:
    """Every context by name, and the one in use. Changes return a new config."""

    contexts: Mapping[str, Context] = dataclasses.field(default_factory=dict)
    current_context: str | None = None

    @classmethod
    def single(cls, **fields: Any) -> CliConfig:
        """A config of one context, in use: ``CliConfig.single(server=..., token=...)``."""
        context = Context(**fields)
        return cls().with_context(context_name(context.server_url, context.username), context)

    @property
    def current(self) -> Context:
        """The context in use; an empty one (the local default server) when there is none."""
        if self.current_context is None:
            return Context()
        return self.contexts.get(self.current_context, Context())

    def context(self, name: str) -> Context:
        """The context called ``name``; raises KeyError naming the known ones."""
        try:
            return self.contexts[name]
        except KeyError:
            known = ", ".join(sorted(self.contexts)) or "none"
            raise KeyError(f"no context {name!r} (known: {known})") from None

    def using(self, name: str) -> CliConfig:
        """This config with ``name`` in use; raises KeyError when there is no such context."""
        self.context(name)
        return dataclasses.replace(self, current_context=name)

    def with_context(self, name: str, context: Context, *, use: bool = True) -> CliConfig:
        """This config with ``name`` added or replaced, and in use unless ``use`` is False."""
        contexts = {**self.contexts, name: context}
        current = name if use else self.current_context
        return dataclasses.replace(self, contexts=contexts, current_context=current)

    def with_current(self, **changes: Any) -> CliConfig:
        """This config with the context in use changed (created when there is none)."""
        name = self.current_context or context_name(
            changes.get("server") or self.current.server_url, changes.get("username")
        )
        return self.with_context(name, self.current.replace(**changes))

    def renamed(self, old: str, new: str) -> CliConfig:
        if new in self.contexts and new != old:
            raise KeyError(f"a context {new!r} exists already")
        contexts = {(new if k == old else k): v for k, v in self.contexts.items()}
        if old not in self.contexts:
            self.context(old)
        current = new if self.current_context == old else self.current_context
        return CliConfig(contexts=contexts, current_context=current)

    def without(self, name: str) -> CliConfig:
        """This config without ``name``; no context is in use when it was the one."""
        self.context(name)
        contexts = {k: v for k, v in self.contexts.items() if k != name}
        current = None if self.current_context == name else self.current_context
        return CliConfig(contexts=contexts, current_context=current)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CliConfig:
        raw = data.get("contexts")
        if not isinstance(raw, Mapping):
            # The file from before contexts: its one server and token become a context.
            old = Context.from_dict(data)
            return cls.single(**old.to_dict()) if old != Context() else cls()
        contexts = {
            str(name): Context.from_dict(value)
            for name, value in raw.items()
            if isinstance(value, Mapping)
        }
        current = data.get("current-context")
        return cls(contexts, str(current) if current in contexts else None)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.current_context is not None:
            data["current-context"] = self.current_context
        data["contexts"] = {name: c.to_dict() for name, c in self.contexts.items()}
        return data


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
        return _with_job_context(CliConfig(), env)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"invalid config file {path}: {exc}") from exc
    return _with_job_context(CliConfig.from_dict(data), env)


# Inside a job run with --pass-config: the API's URL and a token acting for the job's owner,
# valid while the job runs. They make a context of their own, in use.
JOB_CONTEXT = "job"


def _with_job_context(config: CliConfig, env: Mapping[str, str]) -> CliConfig:
    token = env.get("GLIA_TOKEN")
    if not token:
        return config
    context = Context(
        server=env.get("GLIA_API_URL") or None,
        token=token,
        username=env.get("GLIA_JOB_OWNER") or None,
    )
    return config.with_context(JOB_CONTEXT, context)


def save_config(
    config: CliConfig, path: Path | None = None, *, env: Mapping[str, str] = os.environ
) -> Path:
    """Write the config with mode 0600, creating parent directories; returns the path."""
    import tomli_w  # only writers need it: most commands only read the config

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
