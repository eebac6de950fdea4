"""The keyring that seals what the control plane keeps encrypted at rest: secrets' values
(`services.secrets`) and imported buckets' provider credentials (`services.blobs`).

Keys come from the settings, never from the database: ``GLIA_SECRETS_KEYS`` is a
comma-separated list of Fernet keys (``Fernet.generate_key()``: 32 random bytes, URL-safe
base64), the first of which seals everything new; every key of the list opens what it
sealed. Two keys derived from ``GLIA_SECRET_KEY`` are always in the ring too, to open only:
the one that seals when ``GLIA_SECRETS_KEYS`` is unset (the embedded default), and the one
imported buckets' credentials were sealed with before this keyring existed. So moving from
the default to keys of one's own, or adding a new key in front, never makes anything
unreadable; `rotate` then re-seals a token under the current key, and a key may leave the
list once a rotation has moved everything off it (docs/security.md says how).

A token names no key: opening tries the keys in order (`cryptography.fernet.MultiFernet`).
Nothing here ever logs or puts a plaintext or a key in an exception.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class Unreadable(Exception):
    """No key of the ring opens a token (it was sealed with a key no longer configured, or
    it is corrupt). Carries no part of the token."""


def derived_key(secret_key: str, purpose: bytes) -> bytes:
    """A Fernet key derived from the server's secret key for one purpose."""
    digest = hashlib.sha256(purpose + b"\x00" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest)


def parse_keys(listed: str) -> list[bytes]:
    """``"KEY1, KEY2"`` -> the Fernet keys, in order; ValueError naming the position of one
    that is not a Fernet key (never the key itself)."""
    keys = []
    for number, item in enumerate(listed.split(","), start=1):
        key = item.strip()
        if not key:
            continue
        try:
            raw = base64.urlsafe_b64decode(key.encode("ascii"))
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raw = b""
        if len(raw) != 32:
            raise ValueError(
                f"GLIA_SECRETS_KEYS: key {number} is not a Fernet key (32 bytes in URL-safe "
                "base64, as Fernet.generate_key() makes)"
            )
        keys.append(key.encode("ascii"))
    return keys


class Keyring:
    """Seals with the first key, opens with any."""

    def __init__(self, keys: Sequence[bytes], *, openers: Sequence[bytes] = ()) -> None:
        if not keys:
            raise ValueError("a keyring needs a key to seal with")
        ordered = list(dict.fromkeys([*keys, *openers]))
        self._current = Fernet(keys[0])
        self._all = MultiFernet([Fernet(key) for key in ordered])

    @classmethod
    def from_config(cls, *, secret_key: str, secrets_keys: str | None) -> Keyring:
        """The ring of `Settings`: ``GLIA_SECRETS_KEYS`` (if set) before the derived keys."""
        default = derived_key(secret_key, b"glia-secrets")
        legacy_blobs = derived_key(secret_key, b"glia-blob-secrets")
        configured = parse_keys(secrets_keys) if secrets_keys else []
        if configured:
            return cls(configured, openers=[default, legacy_blobs])
        return cls([default], openers=[legacy_blobs])

    def seal(self, plaintext: bytes) -> str:
        return self._current.encrypt(plaintext).decode("ascii")

    def open(self, token: str) -> bytes:
        try:
            return self._all.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError):
            raise Unreadable("no key of the keyring opens this value") from None

    def is_current(self, token: str) -> bool:
        """Whether the current key sealed ``token``."""
        try:
            self._current.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError):
            return False
        return True

    def rotate(self, token: str) -> str:
        """``token`` sealed again under the current key (`Unreadable` if no key opens it)."""
        try:
            return self._all.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeEncodeError):
            raise Unreadable("no key of the keyring opens this value") from None
