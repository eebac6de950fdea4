"""Access control: permission checks per second, and how soon a grant reaches another process.

1. `PermissionIndex.check` on 10,000 grants and 1,000 org and project roles nested 5 deep
   (roles holding roles, users holding roles, grants spread over users and roles), on random
   requests that hit and miss. Target: >= 200,000 checks/s. Baseline: casbin's own
   `enforce()` on the same policy, over the first of the same requests; the answers must agree.
2. Two API processes, each with its own `Database` on one throwaway PostgreSQL database
   holding that policy, its own Redis bus and `AclService` watching for changes: one grants,
   the other polls `index.check` every ~0.5 ms until the grant allows. Target: <= 100 ms.
   Baseline: a raw Redis publish -> receive between the same two processes, alternated with
   the grants.

    python -m bench.acl [--grants 10000] [--roles 1000] [--checks 200000] [--changes 50]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import multiprocessing
import random
import statistics
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from control_plane.events import create_bus
from control_plane.services.acl import AclService, PermissionIndex, casbin_enforcer
from control_plane.store.acl_adapter import AclAdapter
from control_plane.store.database import Database

CLUSTERS = ("c0", "c1", "c2")
SCHEMES = ("job", "storage", "secret")
ACTIONS = ("list", "read", "write", "manage")
# Each role holds the next: a project admin is also its manager, writer and reader.
PROJECT_ROLES = ("admin", "manager", "writer", "reader")
ORG_ROLES = ("admin", "manager", "user")
Grant = tuple[str, str, str]


@dataclass(frozen=True)
class Project:
    cluster: str
    org: str
    name: str

    def uri(self, scheme: str) -> str:
        return f"{scheme}://{self.cluster}/{self.org}/{self.name}"

    def role(self, name: str) -> str:
        return f"role:project/{self.org}/{self.name}/{name}"


def org_role(org: str, name: str) -> str:
    return f"role:org/{org}/{name}"


@dataclass
class Policy:
    grants: list[Grant] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    projects: list[Project] = field(default_factory=list)
    # The projects each user holds a role in.
    member_of: dict[str, list[Project]] = field(default_factory=dict)
    _granted: set[tuple[str, str]] = field(default_factory=set)

    def grant(self, subject: str, uri: str, action: str) -> None:
        # One action per subject and URI, as `AclService.grant` keeps it.
        if (subject, uri) not in self._granted:
            self._granted.add((subject, uri))
            self.grants.append((subject, uri, action))


def build_policy(rng: random.Random, users: int, roles: int, grants: int) -> Policy:
    """Orgs (one per 50 roles) with admin > manager > user roles, projects with admin >
    manager > writer > reader roles, an org's admin and manager holding its projects' admin
    and manager: the longest chain is 5 roles (org admin, project admin, manager, writer,
    reader). Each user is in one org and holds 1-3 project roles there (some are org managers
    or admins). The roles' grants are on their projects' and orgs' URIs; the rest are
    shares to roles and users, and users' own jobs and files, until ``grants``."""
    policy = Policy()
    orgs = [f"org{i}" for i in range(max(1, roles // 50))]
    count = max(1, (roles - len(ORG_ROLES) * len(orgs)) // len(PROJECT_ROLES))
    policy.projects = [
        Project(CLUSTERS[j % len(CLUSTERS)], orgs[j % len(orgs)], f"proj{j}") for j in range(count)
    ]
    by_org: dict[str, list[Project]] = {org: [] for org in orgs}
    for project in policy.projects:
        by_org[project.org].append(project)

    for org in orgs:
        admin, manager, user = (org_role(org, name) for name in ORG_ROLES)
        policy.roles += [admin, manager, user]
        policy.links += [(admin, manager), (manager, user)]
        for cluster in CLUSTERS:
            policy.grant(user, f"storage://{cluster}/{org}/shared", "read")
            policy.grant(manager, f"job://{cluster}/{org}", "list")
            policy.grant(admin, f"secret://{cluster}/{org}", "manage")
    for project in policy.projects:
        chain = [project.role(name) for name in PROJECT_ROLES]
        policy.roles += chain
        policy.links += list(zip(chain, chain[1:], strict=False))
        policy.links += [
            (org_role(project.org, "admin"), project.role("admin")),
            (org_role(project.org, "manager"), project.role("manager")),
        ]
        policy.grant(project.role("reader"), project.uri("job"), "read")
        policy.grant(project.role("reader"), project.uri("storage"), "read")
        policy.grant(project.role("writer"), project.uri("job"), "write")
        policy.grant(project.role("writer"), project.uri("storage"), "write")
        policy.grant(project.role("manager"), project.uri("job"), "manage")
        policy.grant(project.role("admin"), project.uri("storage"), "manage")
        policy.grant(project.role("admin"), project.uri("secret"), "manage")

    for i in range(users):
        user = f"user:u{i}"
        org = orgs[i % len(orgs)]
        policy.users.append(user)
        policy.links.append((user, org_role(org, "user")))
        if rng.random() < 0.02:
            policy.links.append((user, org_role(org, "admin")))
        elif rng.random() < 0.05:
            policy.links.append((user, org_role(org, "manager")))
        mine = rng.sample(by_org[org], min(len(by_org[org]), rng.randint(1, 3)))
        policy.member_of[user] = mine
        for project in mine:
            role = rng.choices(PROJECT_ROLES, weights=(1, 2, 5, 4))[0]
            policy.links.append((user, project.role(role)))

    while len(policy.grants) < grants:
        project = rng.choice(policy.projects)
        if rng.random() < 0.15:  # a dataset shared with another project's members
            subject = rng.choice(policy.projects).role(rng.choice(("reader", "writer")))
            uri = f"{project.uri('storage')}/datasets/d{rng.randrange(100)}"
            policy.grant(subject, uri, rng.choice(("read", "write")))
            continue
        user = rng.choice(policy.users)
        if rng.random() < 0.5:  # the user's own job or files, in a project of theirs
            project = rng.choice(policy.member_of[user])
            name = user.removeprefix("user:")
            uri = rng.choice(
                [
                    f"{project.uri('job')}/j{rng.randrange(10**6)}",
                    f"{project.uri('storage')}/users/{name}/f{rng.randrange(1000)}",
                ]
            )
            policy.grant(user, uri, "manage")
        else:  # someone else's job or files shared with the user
            scheme = rng.choice(("job", "storage"))
            policy.grant(user, f"{project.uri(scheme)}/x{rng.randrange(10**6)}", "read")
    return policy


def role_depth(links: list[tuple[str, str]]) -> int:
    """The most roles in one chain a subject holds through (the links have no cycles)."""
    holds: dict[str, list[str]] = {}
    for member, role in links:
        holds.setdefault(member, []).append(role)
    depth: dict[str, int] = {}

    def of(subject: str) -> int:
        if subject not in depth:
            depth[subject] = max((1 + of(role) for role in holds.get(subject, ())), default=0)
        return depth[subject]

    return max(of(subject) for subject in holds)


def requests(rng: random.Random, policy: Policy, count: int) -> list[Grant]:
    """A third beneath a user's own grant, a third in one of the user's projects (allowed
    through their roles, or not for a higher action), a quarter for a user on any project
    (mostly denied), a tenth for a role; the action drawn from all four."""
    own = [(subject, uri) for subject, uri, _ in policy.grants if subject.startswith("user:")]
    out = []
    for _ in range(count):
        draw = rng.random()
        if draw < 0.33:
            subject, uri = rng.choice(own)
            if rng.random() < 0.5:
                uri += "/x"
        elif draw < 0.66:
            subject = rng.choice(policy.users)
            project = rng.choice(policy.member_of[subject])
            uri = f"{project.uri(rng.choice(SCHEMES))}/r{rng.randrange(1000)}"
        elif draw < 0.9:
            subject = rng.choice(policy.users)
            project = rng.choice(policy.projects)
            uri = f"{project.uri(rng.choice(SCHEMES))}/r{rng.randrange(1000)}"
        else:
            subject = rng.choice(policy.roles)
            project = rng.choice(policy.projects)
            uri = f"{project.uri(rng.choice(SCHEMES))}/r{rng.randrange(1000)}"
        out.append((subject, uri, rng.choice(ACTIONS)))
    return out


def checks(
    policy: Policy, sample: list[Grant], rounds: int, casbin_checks: int
) -> tuple[PermissionIndex, Any]:
    start = time.perf_counter()
    index = PermissionIndex(policy.grants, policy.links)
    print(f"index build: {(time.perf_counter() - start) * 1000:.1f} ms")

    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        answers = [index.check(*request) for request in sample]
        rates.append(len(sample) / (time.perf_counter() - start))

    enforcer: Any = casbin_enforcer()
    enforcer.add_policies(policy.grants)
    enforcer.add_grouping_policies(policy.links)
    casbin_sample = sample[: max(1, casbin_checks)]
    start = time.perf_counter()
    casbin_answers = [enforcer.enforce(*request) for request in casbin_sample]
    casbin_rate = len(casbin_sample) / (time.perf_counter() - start)

    print(f"requests: {len(sample):,}, {sum(answers) / len(sample):.0%} allowed")
    print(
        f"index     {statistics.median(rates):>12,.0f} checks/s median of {rounds} rounds "
        f"({min(rates):,.0f}-{max(rates):,.0f})"
    )
    print(f"casbin    {casbin_rate:>12,.0f} checks/s   (enforce(), {len(casbin_sample):,} checks)")
    mismatches = sum(a != b for a, b in zip(answers, casbin_answers, strict=False))
    print(f"answers compared with casbin: {len(casbin_sample):,}, mismatches: {mismatches}")
    if mismatches:
        raise SystemExit(1)
    return index, enforcer


# -- a grant reaching a second process ----------------------------------------------------


def api_process(conn: Connection, database_url: str, redis_url: str, prefix: str) -> None:
    """One API process's policy (its own database engine, bus and `AclService`), driven by
    commands on ``conn``."""
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_serve(conn, database_url, redis_url, prefix))


async def _serve(conn: Connection, database_url: str, redis_url: str, prefix: str) -> None:
    import redis.asyncio as redis

    db = Database(database_url)
    bus = create_bus(redis_url, prefix=prefix)
    acl = AclService(db, bus)
    loads = []
    for _ in range(3):
        start = time.perf_counter()
        await acl.load()
        loads.append(time.perf_counter() - start)
    watcher = asyncio.create_task(acl.watch_changes())
    await asyncio.wait_for(acl.watching.wait(), 30)
    raw = redis.Redis.from_url(redis_url)
    ping = raw.pubsub(ignore_subscribe_messages=True)
    await ping.subscribe(prefix + "ping")
    conn.send(("ready", statistics.median(loads)))
    try:
        while True:
            command, *params = await asyncio.to_thread(conn.recv)
            if command == "grant":
                start = time.perf_counter()
                await acl.grant(*params)
                conn.send((start, time.perf_counter()))
            elif command == "ping":
                start = time.perf_counter()
                await raw.publish(prefix + "ping", "ping")
                conn.send((start,))
            elif command == "expect":  # poll until allowed
                if acl.index.check(*params):
                    raise RuntimeError(f"already allowed: {params}")
                conn.send("armed")
                # As API requests would see it: the index, not an event.
                allowed, deadline = None, time.perf_counter() + 10
                while allowed is None and time.perf_counter() < deadline:
                    if acl.index.check(*params):
                        allowed = time.perf_counter()
                    else:
                        await asyncio.sleep(0.0005)
                conn.send(allowed)
            elif command == "listen":
                conn.send("armed")
                deadline = time.perf_counter() + 10
                message = None  # None also for the subscription's confirmation, skipped
                while message is None and time.perf_counter() < deadline:
                    message = await ping.get_message(ignore_subscribe_messages=True, timeout=10)
                conn.send(time.perf_counter() if message else None)
            else:
                break
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await ping.aclose()
        await raw.aclose()
        await bus.close()
        await db.dispose()


@dataclass(frozen=True)
class Peer:
    """An `api_process` and the parent's end of its pipe."""

    conn: Connection
    process: BaseProcess

    def send(self, *command: str) -> None:
        self.conn.send(command)

    def receive(self, timeout: float = 60) -> Any:
        deadline = time.monotonic() + timeout
        while not self.conn.poll(0.5):
            if not self.process.is_alive():
                raise RuntimeError(f"an API process ended (exit code {self.process.exitcode})")
            if time.monotonic() > deadline:
                raise RuntimeError(f"an API process did not answer in {timeout:.0f} s")
        return self.conn.recv()


@contextlib.contextmanager
def throwaway_database(admin_dsn: str) -> Iterator[str]:
    """A new, empty PostgreSQL database (as tests/conftest.py makes them), dropped after."""
    name = f"glia_bench_acl_{uuid.uuid4().hex[:12]}"

    async def execute(sql: str) -> None:
        admin = await asyncpg.connect(admin_dsn)
        try:
            await admin.execute(sql)
        finally:
            await admin.close()

    asyncio.run(execute(f'CREATE DATABASE "{name}"'))
    base = admin_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _seed(database_url: str, enforcer: Any) -> None:
    db = Database(database_url)
    try:
        await db.migrate()
        await AclAdapter(db).save_policy(enforcer.get_model())
    finally:
        await db.dispose()


def propagation(
    policy: Policy,
    index: PermissionIndex,
    enforcer: Any,
    rng: random.Random,
    args: argparse.Namespace,
) -> None:
    with throwaway_database(args.postgres) as database_url:
        asyncio.run(_seed(database_url, enforcer))
        prefix = f"glia-bench-{uuid.uuid4().hex[:8]}:"
        context = multiprocessing.get_context("spawn")
        peers = []
        for _ in range(2):
            conn, child = context.Pipe()
            process = context.Process(
                target=api_process, args=(child, database_url, args.redis, prefix), daemon=True
            )
            process.start()
            peers.append(Peer(conn, process))
        granter, watcher = peers
        try:
            loads = [peer.receive()[1] for peer in peers]
            print(
                f"two API processes: the whole policy loads in {loads[0] * 1000:.0f} / "
                f"{loads[1] * 1000:.0f} ms (median of 3 loads each)"
            )
            delays, grant_calls, pings = [], [], []
            warm_up = 3
            for round_ in range(warm_up + args.changes):
                watcher.send("listen")
                watcher.receive()
                granter.send("ping")
                (sent,) = granter.receive()
                received = watcher.receive()
                # A user and a storage path that nothing allows them yet.
                while True:
                    user = rng.choice(policy.users)
                    uri = f"{rng.choice(policy.projects).uri('storage')}/bench/g{round_}"
                    if not index.check(user, uri, "read"):
                        break
                watcher.send("expect", user, uri, "read")
                watcher.receive()
                granter.send("grant", user, uri, "read")
                started, granted = granter.receive()
                allowed = watcher.receive()
                if received is None or allowed is None:
                    raise RuntimeError("a ping or a grant did not arrive in 10 s")
                # perf_counter is CLOCK_MONOTONIC on Linux: one clock for both processes.
                if round_ >= warm_up:
                    pings.append(received - sent)
                    delays.append(allowed - started)
                    grant_calls.append(granted - started)
                time.sleep(0.05)  # let both processes settle between rounds
        finally:
            for peer in peers:
                with contextlib.suppress(OSError):
                    peer.send("stop")
            for peer in peers:
                peer.process.join(10)
                if peer.process.is_alive():
                    peer.process.kill()
    print(f"grant seen by the other process  {spread(delays)}")
    print(f"  of which AclService.grant()    {spread(grant_calls)}")
    print(f"raw Redis publish -> receive     {spread(pings)}")


def spread(samples_s: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples_s)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return (
        f"median {statistics.median(ms):7.2f} ms   p95 {p95:7.2f} ms   max {ms[-1]:7.2f} ms"
        f"   (n={len(ms)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--roles", type=int, default=1000)
    parser.add_argument("--grants", type=int, default=10_000)
    parser.add_argument("--checks", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5, help="passes over the checks")
    parser.add_argument("--casbin-checks", type=int, default=300)
    parser.add_argument("--changes", type=int, default=50, help="grants timed (0: skip part 2)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    policy = build_policy(rng, args.users, args.roles, args.grants)
    print(
        f"policy: {len(policy.grants):,} grants, {len(policy.roles):,} roles nested "
        f"{role_depth(policy.links)} deep, {len(policy.links):,} role links, "
        f"{len(policy.users):,} users"
    )
    sample = requests(rng, policy, args.checks)
    index, enforcer = checks(policy, sample, args.rounds, args.casbin_checks)
    if args.changes:
        propagation(policy, index, enforcer, rng, args)


if __name__ == "__main__":
    main()
