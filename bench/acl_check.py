"""Permission checks per second: the index against casbin's enforce(), on the same policy.

    .venv/bin/python bench/acl_check.py [--users 1000] [--grants 10000] [--checks 100000]

Casbin's enforce() scans every policy, so it gets fewer checks (``--casbin-checks``); both
are timed in the same run, on the same random requests, and their answers compared.
"""

from __future__ import annotations

import argparse
import random
import time
from typing import Any

from control_plane.services.acl import PermissionIndex, casbin_enforcer

ACTIONS = ["list", "read", "write", "manage"]


def build_policy(
    rng: random.Random, users: int, roles: int, grants: int
) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    """Users own jobs and storage under their project; roles (some nested) hold shared
    subtrees; about a fifth of the grants go to roles."""
    user_names = [f"user:u{i}" for i in range(users)]
    role_names = [f"role:r{i}" for i in range(roles)]
    policy: set[tuple[str, str]] = set()
    rules: list[tuple[str, str, str]] = []
    while len(rules) < grants:
        if rng.random() < 0.2:
            subject = rng.choice(role_names)
            uri = f"storage://c{rng.randrange(3)}/org{rng.randrange(20)}/shared{rng.randrange(50)}"
        else:
            i = rng.randrange(users)
            subject = user_names[i]
            scheme = rng.choice(["job", "storage", "secret"])
            uri = f"{scheme}://c{i % 3}/org{i % 20}/p{i}/{rng.randrange(100)}"
        if (subject, uri) not in policy:
            policy.add((subject, uri))
            rules.append((subject, uri, rng.choice(ACTIONS)))
    rules.append(("role:admin", "*", "manage"))
    links = [(user, rng.choice(role_names)) for user in user_names for _ in range(2)]
    links += [(role_names[i], role_names[i + 1]) for i in range(0, roles - 1, 3)]
    links.append(("user:u0", "role:admin"))
    return rules, sorted(set(links))


def requests(
    rng: random.Random, grants: list[tuple[str, str, str]], users: int, count: int
) -> list[tuple[str, str, str]]:
    """Half beneath a URI the user was granted (allowed unless the action is too high),
    half on other users' resources (denied unless a role grants it)."""
    own = [(subject, uri) for subject, uri, _ in grants if subject.startswith("user:")]
    out = []
    for _ in range(count):
        if rng.random() < 0.5:
            subject, uri = rng.choice(own)
            uri += "/x"
        else:
            i, j = rng.randrange(users), rng.randrange(users)
            subject = f"user:u{i}"
            scheme = rng.choice(["job", "storage", "secret"])
            uri = f"{scheme}://c{j % 3}/org{j % 20}/p{j}/{rng.randrange(100)}/x"
        out.append((subject, uri, rng.choice(ACTIONS)))
    return out


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:>12,.0f} checks/s  ({count:,} checks in {seconds:.3f} s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--roles", type=int, default=50)
    parser.add_argument("--grants", type=int, default=10_000)
    parser.add_argument("--checks", type=int, default=100_000)
    parser.add_argument("--casbin-checks", type=int, default=300)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    grants, links = build_policy(rng, args.users, args.roles, args.grants)
    print(f"policy: {len(grants):,} grants, {len(links):,} role links, {args.users:,} users")

    start = time.perf_counter()
    index = PermissionIndex(grants, links)
    print(f"index build:   {time.perf_counter() - start:.3f} s")

    enforcer: Any = casbin_enforcer()
    enforcer.add_policies(grants)
    enforcer.add_grouping_policies(links)

    sample = requests(rng, grants, args.users, args.checks)

    start = time.perf_counter()
    index_answers = [index.check(*request) for request in sample]
    index_seconds = time.perf_counter() - start

    casbin_sample = sample[: args.casbin_checks]
    start = time.perf_counter()
    casbin_answers = [enforcer.enforce(*request) for request in casbin_sample]
    casbin_seconds = time.perf_counter() - start

    allowed = sum(index_answers)
    print(f"requests: {allowed / len(sample):.0%} allowed")
    print(f"index:  {rate(len(sample), index_seconds)}")
    print(f"casbin: {rate(len(casbin_sample), casbin_seconds)}")
    print(f"speed-up: {len(sample) / index_seconds / (len(casbin_sample) / casbin_seconds):,.0f}x")
    mismatches = sum(a != b for a, b in zip(index_answers, casbin_answers, strict=False))
    print(f"answers compared with casbin: {len(casbin_sample):,}, mismatches: {mismatches}")
    if mismatches:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
