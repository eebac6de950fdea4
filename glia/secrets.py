"""Secrets: named values kept encrypted for a project's jobs, never shown again.

A secret lives in a project on a cluster, ``secret://CLUSTER/ORG/PROJECT/KEY`` (a user's
personal secrets are those of their personal project, ``secret://default/alice/alice/KEY``).
Permissions are the project's, on ``secret://CLUSTER/ORG/PROJECT`` (`glia.tenancy`): its
readers list the keys, its writers add, replace and remove secrets. No caller ever reads a
value back: only the control plane does, for a job (`SecretsService.reveal_for_job`).

Keys are what Kubernetes allows in a Secret: ``[a-zA-Z0-9_.-]+``, up to 253 characters (not
``.`` or ``..``). A value is any bytes, up to `MAX_VALUE_BYTES`.
"""

from __future__ import annotations

import re
from datetime import datetime

from glia.acl import format_uri, parse_uri
from glia.errors import BadInput
from glia.model import Model

SCHEME = "secret"
KEY_RE = re.compile(r"[a-zA-Z0-9_.-]{1,253}")
MAX_KEY_LENGTH = 253
MAX_VALUE_BYTES = 1024 * 1024


def check_secret_key(key: str, field: str = "key") -> str:
    """``key`` if it can name a secret; else `BadInput` naming ``field``.

    ``check_secret_key("AWS_TOKEN.v2")`` passes; ``""``, ``"a/b"``, ``".."`` and a key of
    254 characters do not. The message quotes at most the key's first 40 characters.
    """
    if not isinstance(key, str) or not KEY_RE.fullmatch(key) or key in (".", ".."):
        shown = repr(key[:40] + ("…" if len(key) > 40 else "")) if isinstance(key, str) else "?"
        raise BadInput(
            f"invalid secret key {shown}: 1-{MAX_KEY_LENGTH} letters, digits, '_', '.' and '-' "
            "(not '.' or '..')",
            fields={field: "invalid"},
        )
    return key


def check_secret_value(value: bytes) -> bytes:
    """``value`` if it fits a secret; else `BadInput` (which never quotes it)."""
    if len(value) > MAX_VALUE_BYTES:
        raise BadInput(
            f"a secret's value is at most {MAX_VALUE_BYTES} bytes (1 MiB)",
            fields={"value": "too large"},
        )
    return value


def secrets_uri(cluster: str, org: str, project: str) -> str:
    """Where a project's secrets live on a cluster: ``secret://default/acme/vision``.
    Every permission on secrets is checked here."""
    return format_uri(SCHEME, (cluster, org, project))


class SecretRef(Model):
    """A secret as its URI names it."""

    cluster: str
    org: str
    project: str
    key: str

    @property
    def uri(self) -> str:
        return f"{self.place_uri}/{self.key}"

    @property
    def place_uri(self) -> str:
        return secrets_uri(self.cluster, self.org, self.project)


def parse_secret_uri(uri: str, field: str = "uri") -> SecretRef:
    """``secret://default/acme/vision/TOKEN`` -> ``SecretRef(default, acme, vision, TOKEN)``."""
    if not isinstance(uri, str) or not uri.startswith(f"{SCHEME}://"):
        raise BadInput(f"not a secret URI: {uri[:80]!r}", fields={field: "expected secret://…"})
    parts = uri[len(SCHEME) + 3 :].split("/")
    if len(parts) != 4:
        raise BadInput(
            "a secret URI is secret://CLUSTER/ORG/PROJECT/KEY",
            fields={field: "expected secret://CLUSTER/ORG/PROJECT/KEY"},
        )
    try:
        parse_uri(format_uri(SCHEME, parts[:3]))
    except BadInput:
        raise BadInput(f"invalid secret URI {uri[:80]!r}", fields={field: "invalid"}) from None
    check_secret_key(parts[3], field)
    return SecretRef(cluster=parts[0], org=parts[1], project=parts[2], key=parts[3])


class Secret(Model):
    """A secret of a project: its key and when it was set (its value is never shown)."""

    key: str
    """Its key, unique in its project on its cluster: letters, digits, '_', '.' and '-'."""
    uri: str
    """`secret://CLUSTER/ORG/PROJECT/KEY`."""
    cluster: str
    """The cluster whose jobs may use it."""
    org: str
    """The org of its project."""
    project: str
    """The project it belongs to."""
    created_at: datetime
    """When it was first added (UTC)."""
    updated_at: datetime
    """When its value was last set (UTC)."""
    updated_by: str | None = None
    """Who last set its value; null when that user is gone."""
    url: str
    """The byte route that sets its value: `PUT <url>` with the value as the body."""


class SecretsRotation(Model):
    """What a rotation of the secrets key re-encrypted under the current key."""

    secrets: int
    """How many secrets' values."""
    bucket_credentials: int
    """How many imported buckets' provider credentials."""
    gateway_secrets: int = 0
    """How many remote clusters' gateway secrets."""
    unreadable: tuple[str, ...] = ()
    """What no key of the keyring could decrypt, left as it was (`secret://…` URIs,
    `blob-credentials:ID` and `gateway-secret:CLUSTER`): add the key it was sealed with and
    rotate again."""
