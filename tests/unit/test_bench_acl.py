"""bench/acl.py's policy has the shape its figures claim, and the index agrees with casbin on it."""

from __future__ import annotations

import random
from typing import Any

from bench.acl import build_policy, requests, role_depth
from control_plane.services.acl import PermissionIndex, casbin_enforcer
from glia.acl import parse_grant_uri, validate_subject


def test_policy_shape() -> None:
    policy = build_policy(random.Random(1), users=100, roles=1000, grants=3000)
    assert len(policy.grants) == 3000
    assert len(set(policy.roles)) == len(policy.roles) == 1000
    # Casbin's role manager stops at 10 levels: deeper, the two would disagree.
    assert role_depth(policy.links) == 5
    subjects = {subject for subject, _, _ in policy.grants}
    for kind in ("user:", "role:org/", "role:project/"):
        assert any(subject.startswith(kind) for subject in subjects)
    for subject, uri, _ in policy.grants:
        validate_subject(subject)
        parse_grant_uri(uri)
    for member, role in policy.links:
        validate_subject(member)
        validate_subject(role)


def test_index_agrees_with_casbin_on_the_bench_requests() -> None:
    rng = random.Random(2)
    policy = build_policy(rng, users=100, roles=200, grants=1000)
    sample = requests(rng, policy, 300)
    index = PermissionIndex(policy.grants, policy.links)
    enforcer: Any = casbin_enforcer()
    enforcer.add_policies(policy.grants)
    enforcer.add_grouping_policies(policy.links)
    answers = [index.check(*request) for request in sample]
    assert answers == [enforcer.enforce(*request) for request in sample]
    assert 0.2 < sum(answers) / len(answers) < 0.8  # hits and misses both
