"""URIs, actions and the permission index, checked against casbin's own enforce()."""

from __future__ import annotations

import random
from typing import Any

import pytest

from control_plane.services.acl import PermissionIndex, casbin_enforcer
from glia.acl import (
    ALL_URIS,
    Action,
    action_covers,
    parse_grant_uri,
    parse_uri,
    role_subject,
    uri_covers,
    user_subject,
    validate_subject,
)
from glia.errors import BadInput

# -- URIs ---------------------------------------------------------------------------------


def test_parse_uri() -> None:
    assert parse_uri("job://c1/org/proj/42") == ("job", ("c1", "org", "proj", "42"))
    assert parse_uri("job://") == ("job", ())
    assert parse_uri("storage://c/o/p/data-2024_v1.tar.gz") == (
        "storage",
        ("c", "o", "p", "data-2024_v1.tar.gz"),
    )
    assert parse_uri("role://admin") == ("role", ("admin",))


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "job",
        "job:/a",
        "://a",
        "Job://a",
        "1job://a",
        "job://a//b",
        "job://a/",
        "job:///a",
        "job://a/../b",
        "job://a/./b",
        "job://..",
        "job://a b",
        "job://a/\tb",
        "job://a\nb",
        "job://a/*",
        "job://a?x=1",
        "job://a#frag",
        "job://a\\b",
        "*",
        "job://" + "a" * 400,
    ],
)
def test_parse_uri_rejects_malformed(uri: str) -> None:
    with pytest.raises(BadInput):
        parse_uri(uri)


def test_grant_uri_accepts_star() -> None:
    assert parse_grant_uri(ALL_URIS) is None
    assert parse_grant_uri("job://c") == ("job", ("c",))
    with pytest.raises(BadInput):
        parse_grant_uri("**")


@pytest.mark.parametrize(
    ("grant", "uri", "covered"),
    [
        ("job://c/o/alice", "job://c/o/alice", True),
        ("job://c/o/alice", "job://c/o/alice/x", True),
        ("job://c/o/alice", "job://c/o/alice/x/y", True),
        ("job://c/o/alice", "job://c/o/alice2", False),
        ("job://c/o/alice", "job://c/o/alic", False),
        ("job://c/o/alice", "job://c/o", False),
        ("job://c/o/alice", "storage://c/o/alice", False),
        ("job://", "job://c/o/alice", True),
        ("job://", "job://", True),
        ("job://", "storage://c", False),
        ("job://c", "job://", False),
        ("*", "job://c/o/alice", True),
        ("*", "storage://", True),
        ("*", "secret://c/o/p/k", True),
    ],
)
def test_uri_covers(grant: str, uri: str, covered: bool) -> None:
    assert uri_covers(grant, uri) is covered


def test_uri_covers_rejects_malformed() -> None:
    with pytest.raises(BadInput):
        uri_covers("job://a", "job://a//b")
    with pytest.raises(BadInput):
        uri_covers("job://a/", "job://a/b")


# -- actions and subjects -----------------------------------------------------------------


def test_action_ranking_and_parsing() -> None:
    assert Action.LIST < Action.READ < Action.WRITE < Action.MANAGE
    assert [Action.parse(n) for n in ("list", "read", "write", "manage")] == list(Action)
    assert Action.parse(Action.WRITE) is Action.WRITE
    assert Action.READ.label == "read" and str(Action.MANAGE) == "manage"
    for bad in ("", "READ", "delete", "admin", " read"):
        with pytest.raises(BadInput):
            Action.parse(bad)
    assert action_covers("manage", "list")
    assert action_covers("read", "read")
    assert not action_covers("read", "write")


def test_subjects() -> None:
    assert user_subject("alice") == "user:alice"
    assert role_subject("admin") == "role:admin"
    for bad in ("alice", "user:", ":alice", "user:al ice", "", "x" * 300):
        with pytest.raises(BadInput):
            validate_subject(bad)
    with pytest.raises(BadInput):
        user_subject("bad name")


# -- the index ----------------------------------------------------------------------------


def test_check_covers_lower_actions_and_subtrees() -> None:
    index = PermissionIndex([("user:alice", "job://c/o/alice", "write")], [])
    assert index.check("user:alice", "job://c/o/alice", Action.WRITE)
    assert index.check("user:alice", "job://c/o/alice/1", "read")
    assert index.check("user:alice", "job://c/o/alice/1/x", "list")
    assert not index.check("user:alice", "job://c/o/alice/1", "manage")
    assert not index.check("user:alice", "job://c/o/alice2", "list")
    assert not index.check("user:alice", "job://c/o", "list")
    assert not index.check("user:bob", "job://c/o/alice", "list")
    with pytest.raises(BadInput):
        index.check("user:alice", "job://c/o/alice//1", "read")
    with pytest.raises(BadInput):
        index.check("user:alice", "job://c/o/alice", "own")


def test_scheme_root_and_star_grants() -> None:
    index = PermissionIndex(
        [("user:ops", "job://", "read"), ("role:admin", "*", "manage")],
        [("user:root", "role:admin")],
    )
    assert index.check("user:ops", "job://any/where", "read")
    assert index.check("user:ops", "job://", "list")
    assert not index.check("user:ops", "storage://any", "list")
    assert index.check("user:root", "storage://x/y", "manage")
    assert index.check("user:root", "role://admin", "manage")


def test_best_action_wins_when_a_uri_holds_several() -> None:
    # Two processes granting at once can leave two actions on one URI: the higher counts.
    index = PermissionIndex([("user:a", "job://c", "read"), ("user:a", "job://c", "manage")], [])
    assert index.check("user:a", "job://c/x", "manage")
    assert index.grants_of("user:a") == [("job://c", Action.MANAGE)]


def test_role_inheritance_two_levels() -> None:
    index = PermissionIndex(
        [
            ("role:ml", "storage://c/o/datasets", "read"),
            ("role:lead", "job://c/o/team", "manage"),
        ],
        [("user:alice", "role:ml"), ("role:ml", "role:lead")],
    )
    assert index.subjects_of("user:alice") == {"user:alice", "role:ml", "role:lead"}
    assert index.check("user:alice", "job://c/o/team/42", "manage")
    assert index.check("user:alice", "storage://c/o/datasets/x", "read")
    assert not index.check("user:alice", "storage://c/o/datasets/x", "write")
    assert not index.check("role:lead", "storage://c/o/datasets", "list")
    assert index.roles_of("user:alice") == ["role:ml"]
    assert index.grants_of("user:alice") == []
    assert index.grants_of("user:alice", inherited=True) == [
        ("job://c/o/team", Action.MANAGE),
        ("storage://c/o/datasets", Action.READ),
    ]


def test_role_cycles_terminate() -> None:
    index = PermissionIndex(
        [("role:c", "job://x", "read")],
        [("role:a", "role:b"), ("role:b", "role:c"), ("role:c", "role:a"), ("user:u", "role:a")],
    )
    assert index.subjects_of("user:u") == {"user:u", "role:a", "role:b", "role:c"}
    assert index.subjects_of("role:b") == {"role:a", "role:b", "role:c"}
    assert index.check("user:u", "job://x/1", "read")
    assert index.check("role:a", "job://x", "list")
    assert index.subjects_of("user:nobody") == {"user:nobody"}


def test_malformed_stored_rules_are_ignored() -> None:
    index = PermissionIndex(
        [("user:a", "job://a//b", "read"), ("user:a", "job://ok", "fly"), ("user:a",)],
        [("user:a",)],
    )
    assert index.grants_of("user:a") == []


def test_visible_prefixes() -> None:
    index = PermissionIndex(
        [
            ("user:alice", "job://c/o/alice", "read"),
            ("user:alice", "job://c/o/alice/sub", "manage"),  # covered by the one above
            ("user:alice", "job://c/o/alice2", "list"),
            ("user:alice", "storage://c/o/alice", "write"),
            ("role:team", "job://c/o/team", "write"),
            ("role:team", "job://c/o/team-b", "list"),
        ],
        [("user:alice", "role:team")],
    )
    assert index.visible_prefixes("user:alice", "job") == [
        "job://c/o/alice",
        "job://c/o/alice2",
        "job://c/o/team",
        "job://c/o/team-b",
    ]
    assert index.visible_prefixes("user:alice", "job", Action.READ) == [
        "job://c/o/alice",
        "job://c/o/team",
    ]
    assert index.visible_prefixes("user:alice", "job", "write") == [
        "job://c/o/alice/sub",
        "job://c/o/team",
    ]
    assert index.visible_prefixes("user:alice", "storage", "manage") == []
    assert index.visible_prefixes("user:bob", "job") == []
    with pytest.raises(BadInput):
        index.visible_prefixes("user:alice", "Job")


def test_visible_prefixes_everything() -> None:
    index = PermissionIndex(
        [("user:ops", "job://", "list"), ("role:admin", "*", "read")],
        [("user:root", "role:admin")],
    )
    assert index.visible_prefixes("user:ops", "job") is None
    assert index.visible_prefixes("user:ops", "storage") == []
    assert index.visible_prefixes("user:ops", "job", "read") == []
    assert index.visible_prefixes("user:root", "secret", "read") is None
    assert index.visible_prefixes("user:root", "secret", "write") == []


# -- equivalence with casbin --------------------------------------------------------------

_USERS = [f"user:u{i}" for i in range(8)]
# Few enough roles that no inheritance chain reaches casbin's 10-level limit.
_ROLES = [f"role:r{i}" for i in range(6)]
_SCHEMES = ["job", "storage"]
_SEGMENTS = ["a", "b", "a2", "ab"]
_ACTIONS = ["list", "read", "write", "manage"]


def _random_uri(rng: random.Random, max_depth: int) -> str:
    depth = rng.randint(0, max_depth)
    return f"{rng.choice(_SCHEMES)}://" + "/".join(rng.choices(_SEGMENTS, k=depth))


def _random_policy(rng: random.Random) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    grants = []
    for _ in range(rng.randint(0, 25)):
        subject = rng.choice(_USERS + _ROLES)
        uri = ALL_URIS if rng.random() < 0.03 else _random_uri(rng, 3)
        grants.append((subject, uri, rng.choice(_ACTIONS)))
    links = []
    for _ in range(rng.randint(0, 12)):
        member = rng.choice(_USERS + _ROLES)
        role = rng.choice(_ROLES)
        if member != role:
            links.append((member, role))
    return grants, links


def _enforcer_with(grants: list[tuple[str, str, str]], links: list[tuple[str, str]]) -> Any:
    enforcer = casbin_enforcer()
    for grant in grants:
        enforcer.add_policy(*grant)
    for link in links:
        enforcer.add_grouping_policy(*link)
    return enforcer


@pytest.mark.parametrize("seed", range(12))
def test_index_answers_exactly_as_casbin_enforce(seed: int) -> None:
    rng = random.Random(seed)
    grants, links = _random_policy(rng)
    index = PermissionIndex(grants, links)
    enforcer = _enforcer_with(grants, links)
    for _ in range(60):
        subject = rng.choice([*_USERS, *_ROLES, "user:stranger"])
        uri = _random_uri(rng, 4)
        action = rng.choice(_ACTIONS)
        expected = enforcer.enforce(subject, uri, action)
        assert index.check(subject, uri, action) is expected, (subject, uri, action, grants, links)


@pytest.mark.parametrize("seed", range(6))
def test_an_index_extended_with_grants_answers_as_one_built_whole(seed: int) -> None:
    rng = random.Random(500 + seed)
    grants, links = _random_policy(rng)
    split = len(grants) // 2
    base = PermissionIndex(grants[:split], links)
    extended = base.with_grants(grants[split:])
    whole = PermissionIndex(grants, links)
    for _ in range(80):
        subject = rng.choice([*_USERS, *_ROLES])
        uri = _random_uri(rng, 4)
        action = rng.choice(_ACTIONS)
        assert extended.check(subject, uri, action) is whole.check(subject, uri, action)
        # The index it was made from is left as it was.
        assert base.check(subject, uri, action) is PermissionIndex(grants[:split], links).check(
            subject, uri, action
        )
    for subject in [*_USERS, *_ROLES]:
        assert extended.grants_of(subject, inherited=True) == whole.grants_of(
            subject, inherited=True
        )


def test_random_policies_exercise_both_answers() -> None:
    # So that the comparison with casbin above means something.
    rng = random.Random(1234)
    answers = set()
    for _ in range(20):
        grants, links = _random_policy(rng)
        index = PermissionIndex(grants, links)
        for _ in range(20):
            answers.add(index.check(rng.choice(_USERS), _random_uri(rng, 4), "read"))
    assert answers == {True, False}


@pytest.mark.parametrize("seed", range(6))
def test_visible_prefixes_agree_with_check(seed: int) -> None:
    rng = random.Random(1000 + seed)
    grants, links = _random_policy(rng)
    index = PermissionIndex(grants, links)
    for _ in range(40):
        subject = rng.choice(_USERS + _ROLES)
        scheme = rng.choice(_SCHEMES)
        action = rng.choice(_ACTIONS)
        prefixes = index.visible_prefixes(subject, scheme, action)
        for _ in range(10):
            depth = rng.randint(1, 4)
            uri = f"{scheme}://" + "/".join(rng.choices(_SEGMENTS, k=depth))
            listed = prefixes is None or any(
                uri == prefix or uri.startswith(prefix + "/") for prefix in prefixes
            )
            assert listed is index.check(subject, uri, action), (subject, uri, prefixes)
