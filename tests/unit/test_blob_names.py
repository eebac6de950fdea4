"""Bucket names, object keys and bucket URIs, checked once in the kernel for every provider;
the glob patterns of `blobGlob`."""

from __future__ import annotations

import pytest

from control_plane.services.blobs import _glob_regex, _literal_prefix
from glia.blobs import check_bucket_name, check_key, parse_blob_uri
from glia.errors import BadInput


@pytest.mark.parametrize("name", ["data", "a1b", "my-bucket", "x" * 63])
def test_bucket_names(name: str) -> None:
    assert check_bucket_name(name) == name


@pytest.mark.parametrize("name", ["ab", "Data", "-ab", "ab-", "a--b", "a.b", "x" * 64, "a_b"])
def test_bad_bucket_names(name: str) -> None:
    with pytest.raises(BadInput):
        check_bucket_name(name)


@pytest.mark.parametrize("key", ["a", "a/b.csv", "é/ü", "a b/c", ".hidden", "a..b"])
def test_keys(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/a",
        "a/",
        "a//b",
        ".",
        "..",
        "a/../b",
        "a/./b",
        "a\x00b",
        "a\nb",
        "\x7f",
        "x" * 1025,
        "y" * 241,
        "\udc80",
    ],
)
def test_hostile_keys(key: str) -> None:
    with pytest.raises(BadInput):
        check_key(key)


def test_blob_uris() -> None:
    ref = parse_blob_uri("blob://default/acme/vision/data/a/b.csv")
    assert (ref.cluster, ref.org, ref.project, ref.bucket, ref.key) == (
        "default",
        "acme",
        "vision",
        "data",
        "a/b.csv",
    )
    assert ref.bucket_uri == "blob://default/acme/vision/data"
    assert parse_blob_uri("blob://c/o/p/data/").key is None
    for bad in (
        "blob://c/o/p",
        "storage://c/o/p/b",
        "blob://c/../p/data",
        "blob://c/o/p/data/../x",
    ):
        with pytest.raises(BadInput):
            parse_blob_uri(bad)
    with pytest.raises(BadInput):
        parse_blob_uri("blob://c/o/p/data", key=True)
    with pytest.raises(BadInput):
        parse_blob_uri("blob://c/o/p/data/k", key=False)


@pytest.mark.parametrize(
    ("pattern", "matches", "misses"),
    [
        ("*.csv", ["a.csv"], ["d/a.csv", "a.csvx"]),
        ("**/*.csv", ["a.csv", "d/a.csv", "d/e/a.csv"], ["a.txt"]),
        ("d/?.txt", ["d/a.txt"], ["d/ab.txt", "d/a/b.txt"]),
        ("[ab]*", ["a1", "b"], ["c", "a/b"]),
        ("logs/**", ["logs/1", "logs/a/b"], ["log/1"]),
    ],
)
def test_glob_patterns(pattern: str, matches: list[str], misses: list[str]) -> None:
    matcher = _glob_regex(pattern)
    assert all(matcher(key) for key in matches)
    assert not any(matcher(key) for key in misses)


def test_a_glob_lists_from_its_literal_prefix() -> None:
    assert _literal_prefix("data/2026-*/x.csv") == "data/2026-"
    assert _literal_prefix("plain") == "plain"


def test_an_import_names_an_http_endpoint_and_an_s3_bucket() -> None:
    from pydantic import SecretStr

    from glia.blobs import ImportedBucket
    from glia.model import parse_input

    base = {
        "name": "ext",
        "remote_name": "my.bucket",
        "access_key_id": "id",
        "secret_access_key": SecretStr("hush-hush"),
    }
    made = parse_input(ImportedBucket, {**base, "endpoint_url": "https://s3.example.com/"})
    assert made.endpoint_url == "https://s3.example.com"
    assert "hush-hush" not in repr(made)
    for bad in ({"endpoint_url": "file:///etc"}, {"endpoint_url": "http://"}, {"remote_name": "A"}):
        with pytest.raises(BadInput):
            parse_input(ImportedBucket, {**base, **bad})


def test_a_pattern_no_regex_can_hold_is_bad_input() -> None:
    for pattern in ("[", "a[b", "[z-a]", "[]]", "\\"):
        try:
            _glob_regex(pattern)
        except BadInput:
            pass  # refused as the caller's input, never a server error
