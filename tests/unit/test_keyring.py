"""The keyring: the first key seals, every key opens, rotation moves a token to the current
key, and nothing it raises holds a plaintext or a key."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from control_plane.keyring import Keyring, Unreadable, derived_key, parse_keys


def test_the_first_key_seals_and_every_key_opens() -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    sealed_old = Keyring([old]).seal(b"\x00binary\xff")
    ring = Keyring([new, old])
    assert ring.open(sealed_old) == b"\x00binary\xff"
    assert not ring.is_current(sealed_old)
    rotated = ring.rotate(sealed_old)
    assert ring.is_current(rotated)
    assert Fernet(new).decrypt(rotated.encode()) == b"\x00binary\xff"
    assert Keyring([new]).open(ring.seal(b"x")) == b"x"


def test_the_derived_keys_always_open() -> None:
    default = Keyring.from_config(secret_key="server", secrets_keys=None)
    sealed = default.seal(b"from the default")
    legacy = Fernet(derived_key("server", b"glia-blob-secrets")).encrypt(b"bucket").decode()
    own = Keyring.from_config(secret_key="server", secrets_keys=Fernet.generate_key().decode())
    assert own.open(sealed) == b"from the default"
    assert own.open(legacy) == b"bucket"
    assert not own.is_current(sealed)
    other_server = Keyring.from_config(secret_key="another", secrets_keys=None)
    with pytest.raises(Unreadable) as caught:
        other_server.open(sealed)
    assert "default" not in str(caught.value) and sealed not in str(caught.value)


def test_a_bad_key_is_named_by_its_place_only() -> None:
    good = Fernet.generate_key().decode()
    assert parse_keys(f" {good} , ,{good}") == [good.encode(), good.encode()]
    for bad in ("short", "é" * 44, good[:-2] + "!!"):
        with pytest.raises(ValueError) as caught:
            parse_keys(f"{good},{bad}")
        assert "key 2" in str(caught.value) and bad not in str(caught.value)


def test_garbage_is_unreadable_not_a_crash() -> None:
    ring = Keyring([Fernet.generate_key()])
    for token in ("", "not a token", "é"):
        with pytest.raises(Unreadable):
            ring.open(token)
        with pytest.raises(Unreadable):
            ring.rotate(token)
        assert not ring.is_current(token)
