"""Access control: the permission checks and the policy they answer from.

The vocabulary (URIs, ranked actions, subjects) is the kernel's, `glia.acl`. Subjects
(``user:alice``, ``role:admin``) inherit the grants of their roles, transitively.

Casbin (``policies/model.conf``) stores the policy and the role links and persists them
through `control_plane.store.acl_adapter.AclAdapter`. Checks do not go through casbin's
``enforce()``, which scans every policy: `PermissionIndex` answers them by walking the
requested URI's prefixes, and is rebuilt from casbin's in-memory model after every change.
The unit tests check on random policies that both give the same answers.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import casbin
from sqlalchemy import ColumnElement, false, or_, true
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.events import EventBus, Message
from control_plane.store.acl_adapter import AclAdapter
from control_plane.store.database import Database
from control_plane.store.models import AclRuleRow
from glia.acl import (
    ALL_URIS,
    Action,
    action_covers,
    check_scheme,
    format_uri,
    parse_grant_uri,
    parse_uri,
    uri_covers,
    validate_subject,
)
from glia.errors import BadInput, Forbidden
from policies import MODEL_PATH

logger = logging.getLogger(__name__)

ACL_CHANNEL = "acl"


def _lenient(check: Callable[[str, str], bool]) -> Callable[[str, str], bool]:
    # Inside casbin's matcher a malformed stored rule or request must not match, not raise.
    def function(a: str, b: str) -> bool:
        try:
            return check(a, b)
        except BadInput:
            return False

    function.__name__ = check.__name__
    return function


MATCHER_FUNCTIONS: dict[str, Callable[[str, str], bool]] = {
    "uri_covers": _lenient(uri_covers),
    "action_covers": _lenient(action_covers),
}


def register_functions(enforcer: Any) -> None:
    """Register the model's custom matcher functions on a casbin enforcer."""
    for name, function in MATCHER_FUNCTIONS.items():
        enforcer.add_function(name, function)


def casbin_enforcer(model_path: str | Path = MODEL_PATH) -> Any:
    """A plain in-memory `casbin.Enforcer` on Glia's model (for tests and benchmarks: it
    scans every policy on each ``enforce()``)."""
    enforcer = casbin.Enforcer(str(model_path))
    register_functions(enforcer)
    return enforcer


# -- subjects -----------------------------------------------------------------------------


def visible_filter(column: Any, prefixes: Collection[str] | None) -> ColumnElement[bool]:
    """The SQL condition for `visible_prefixes`' answer on a URI column:
    ``uri = p OR uri LIKE p || '/%'`` for each prefix (escaping ``%`` and ``_``), true for
    None, false for no prefix."""
    if prefixes is None:
        return true()
    if not prefixes:
        return false()
    conditions: list[ColumnElement[bool]] = []
    for prefix in prefixes:
        conditions.append(column == prefix)
        conditions.append(column.startswith(prefix + "/", autoescape=True))
    return or_(*conditions)


# -- the index ----------------------------------------------------------------------------


class PermissionIndex:
    """An immutable answer table for one version of the policy.

    Grants are indexed by URI then subject (the best action per pair), and each subject's
    roles are resolved transitively once, so `check` costs one dict lookup per prefix of the
    URI and subject, whatever the number of policies. Unlike casbin's role manager (which
    stops after 10 levels), inheritance has no depth limit; cycles are harmless.
    Malformed stored rules are skipped with a warning, as casbin's matcher never matches them.
    """

    def __init__(
        self,
        grants: Iterable[Sequence[str]] = (),
        links: Iterable[Sequence[str]] = (),
    ) -> None:
        self._by_uri: dict[str, dict[str, Action]] = {}
        self._by_subject: dict[str, dict[str, Action]] = {}
        for rule in grants:
            try:
                subject, uri, action_name = rule[0], rule[1], rule[2]
                parse_grant_uri(uri)
                action = Action.parse(action_name)
            except (BadInput, IndexError):
                logger.warning("acl: ignoring a malformed grant %r", list(rule))
                continue
            by_subject = self._by_uri.setdefault(uri, {})
            if action > by_subject.get(subject, 0):
                by_subject[subject] = action
                self._by_subject.setdefault(subject, {})[uri] = action

        self._direct_roles: dict[str, set[str]] = {}
        self._direct_members: dict[str, set[str]] = {}
        for link in links:
            if len(link) < 2:
                logger.warning("acl: ignoring a malformed role link %r", list(link))
                continue
            self._direct_roles.setdefault(link[0], set()).add(link[1])
            self._direct_members.setdefault(link[1], set()).add(link[0])
        self._subjects: dict[str, frozenset[str]] = {
            member: self._closure(member) for member in self._direct_roles
        }

    def _closure(self, member: str) -> frozenset[str]:
        seen = {member}
        stack = [member]
        while stack:
            for role in self._direct_roles.get(stack.pop(), ()):
                if role not in seen:
                    seen.add(role)
                    stack.append(role)
        return frozenset(seen)

    def with_grants(self, grants: Iterable[Sequence[str]]) -> PermissionIndex:
        """A new index: this one plus ``grants`` (no role link changes). It shares every
        part the grants do not touch, so adding a job owner's grant costs a copy of two
        dicts' top levels, not a rebuild from every rule."""
        index = object.__new__(PermissionIndex)
        index._by_uri = dict(self._by_uri)
        index._by_subject = dict(self._by_subject)
        index._direct_roles = self._direct_roles
        index._direct_members = self._direct_members
        index._subjects = self._subjects
        copied_uris: set[str] = set()
        copied_subjects: set[str] = set()
        for subject, uri, action_name in grants:
            action = Action.parse(action_name)
            if uri not in copied_uris:
                index._by_uri[uri] = dict(index._by_uri.get(uri, {}))
                copied_uris.add(uri)
            if action > index._by_uri[uri].get(subject, 0):
                index._by_uri[uri][subject] = action
                if subject not in copied_subjects:
                    index._by_subject[subject] = dict(index._by_subject.get(subject, {}))
                    copied_subjects.add(subject)
                index._by_subject[subject][uri] = action
        return index

    def subjects_of(self, subject: str) -> frozenset[str]:
        """The subject and every role it holds, directly or through other roles."""
        return self._subjects.get(subject) or frozenset((subject,))

    def roles_of(self, member: str) -> list[str]:
        """The roles a member holds directly."""
        return sorted(self._direct_roles.get(member, ()))

    def members_of(self, role: str) -> list[str]:
        """The users and roles that hold ``role`` directly."""
        return sorted(self._direct_members.get(role, ()))

    def grants_on(self, uri_prefix: str) -> list[tuple[str, str, Action]]:
        """Every grant ``(subject, uri, action)`` on ``uri_prefix`` or beneath it (segment by
        segment), sorted by URI then subject."""
        covers = MATCHER_FUNCTIONS["uri_covers"]
        found = [
            (subject, uri, action)
            for uri, by_subject in self._by_uri.items()
            if uri != ALL_URIS and covers(uri_prefix, uri)
            for subject, action in by_subject.items()
        ]
        return sorted(found, key=lambda grant: (grant[1], grant[0]))

    def all_grants(self) -> Iterable[tuple[str, str, Action]]:
        """Every grant ``(subject, uri, action)``, by URI."""
        for uri in sorted(self._by_uri):
            for subject, action in sorted(self._by_uri[uri].items()):
                yield subject, uri, action

    def has_grant(self, subject: str, uri: str) -> Action | None:
        """The action ``subject`` holds on exactly ``uri`` by a grant of its own, if any."""
        return self._by_uri.get(uri, {}).get(subject)

    def check(self, subject: str, uri: str, action: str | Action) -> bool:
        """Whether ``subject`` may do ``action`` on ``uri``. `BadInput` on a malformed URI or
        action."""
        needed = Action.parse(action)
        scheme, segments = parse_uri(uri)
        subjects = self.subjects_of(subject)
        by_uri = self._by_uri
        prefix = f"{scheme}://"
        for key in _prefixes(prefix, segments):
            grants = by_uri.get(key)
            if grants is None:
                continue
            if len(subjects) <= len(grants):
                for candidate in subjects:
                    granted = grants.get(candidate)
                    if granted is not None and granted >= needed:
                        return True
            else:
                for candidate, granted in grants.items():
                    if granted >= needed and candidate in subjects:
                        return True
        return False

    def visible_prefixes(
        self, subject: str, scheme: str, action: str | Action = Action.LIST
    ) -> list[str] | None:
        """The URI prefixes under which ``subject`` may do ``action`` (by default, list) on
        resources of ``scheme``: None for all of them (a ``*`` or ``scheme://`` grant), else a
        sorted list of prefixes none of which covers another (empty: nothing visible).
        Turn it into SQL with `visible_filter`."""
        needed = Action.parse(action)
        check_scheme(scheme)
        root = f"{scheme}://"
        found: set[tuple[str, ...]] = set()
        for candidate in self.subjects_of(subject):
            for uri, granted in self._by_subject.get(candidate, {}).items():
                if granted < needed:
                    continue
                if uri == ALL_URIS or uri == root:
                    return None
                if uri.startswith(root):
                    found.add(parse_uri(uri)[1])
        kept = [
            segments
            for segments in found
            if not any(segments[:depth] in found for depth in range(1, len(segments)))
        ]
        return sorted(format_uri(scheme, segments) for segments in kept)

    def grants_of(self, subject: str, *, inherited: bool = False) -> list[tuple[str, Action]]:
        """The subject's own grants as ``(uri, action)``, sorted by URI; with
        ``inherited=True``, also those of its roles (the best action per URI)."""
        subjects: Iterable[str] = self.subjects_of(subject) if inherited else (subject,)
        merged: dict[str, Action] = {}
        for candidate in subjects:
            for uri, granted in self._by_subject.get(candidate, {}).items():
                if granted > merged.get(uri, 0):
                    merged[uri] = granted
        return sorted(merged.items())


def _prefixes(root: str, segments: Sequence[str]) -> Iterable[str]:
    """``"*"``, ``"job://"``, ``"job://a"``, ``"job://a/b"``, … for ``job://a/b``."""
    yield ALL_URIS
    yield root
    if segments:
        key = root + segments[0]
        yield key
        for segment in segments[1:]:
            key = f"{key}/{segment}"
            yield key


# -- the service --------------------------------------------------------------------------

# A change of more rules than this is announced without them: other processes reload.
MAX_DELTA_RULES = 500


@dataclass
class _Delta:
    """The rules one change added and removed, as casbin lists them."""

    grants: Sequence[Sequence[str]] = ()
    links: Sequence[Sequence[str]] = ()
    removed_grants: Sequence[Sequence[str]] = ()
    removed_links: Sequence[Sequence[str]] = ()

    @property
    def size(self) -> int:
        return sum(map(len, (self.grants, self.links, self.removed_grants, self.removed_links)))

    def to_wire(self) -> dict[str, list[list[str]]]:
        return {
            "grants": [list(r) for r in self.grants],
            "links": [list(r) for r in self.links],
            "removed_grants": [list(r) for r in self.removed_grants],
            "removed_links": [list(r) for r in self.removed_links],
        }

    @classmethod
    def from_wire(cls, wire: object) -> _Delta | None:
        """The delta of a signal; None for none, or for one that is not well formed."""
        if not isinstance(wire, dict):
            return None
        parts: dict[str, list[list[str]]] = {}
        for key, width in (
            ("grants", 3),
            ("links", 2),
            ("removed_grants", 3),
            ("removed_links", 2),
        ):
            rules = wire.get(key, [])
            if not isinstance(rules, list) or not all(
                isinstance(rule, list)
                and len(rule) == width
                and all(isinstance(value, str) for value in rule)
                for rule in rules
            ):
                return None
            parts[key] = rules
        return cls(**parts)


class AclService:
    """The policy of one process: casbin holds and persists it, `PermissionIndex` answers.

    Writes are serialized by a lock, persisted, then the index is rebuilt and
    ``{"event": "changed", "origin": …}`` is published on the bus channel ``acl``;
    `watch_changes` (a background task) reloads the policy when another process changed it.
    Call `load` once before use.
    """

    def __init__(self, db: Database, bus: EventBus, model_path: str | Path = MODEL_PATH) -> None:
        self._bus = bus
        self._enforcer: Any = casbin.AsyncEnforcer(str(model_path), AclAdapter(db))
        register_functions(self._enforcer)
        self._index = PermissionIndex()
        self._lock = asyncio.Lock()
        self.origin = uuid.uuid4().hex
        # Set while `watch_changes` is subscribed (a change made after it is set is seen).
        self.watching = asyncio.Event()

    @property
    def index(self) -> PermissionIndex:
        """The current index, for synchronous callers; replaced (never mutated) on change."""
        return self._index

    async def load(self) -> None:
        """(Re)load the whole policy from the database."""
        async with self._lock:
            await self._load_locked()

    async def _load_locked(self) -> None:
        await self._enforcer.load_policy()
        self._rebuild()

    def _rebuild(self) -> None:
        self._index = PermissionIndex(
            self._enforcer.get_policy(), self._enforcer.get_grouping_policy()
        )

    # -- checks --

    async def check(self, subject: str, uri: str, action: str | Action) -> bool:
        return self._index.check(subject, uri, action)

    async def require(self, subject: str, uri: str, action: str | Action) -> None:
        """Raise `Forbidden` unless ``subject`` may do ``action`` on ``uri``."""
        needed = Action.parse(action)
        if not self._index.check(subject, uri, needed):
            raise Forbidden(
                f"{subject} may not {needed.label} {uri}: no {needed.label} (or higher) "
                "permission on it or on a parent",
                details={"subject": subject, "uri": uri, "action": needed.label},
            )

    def visible_prefixes(
        self, subject: str, scheme: str, action: str | Action = Action.LIST
    ) -> list[str] | None:
        return self._index.visible_prefixes(subject, scheme, action)

    def subjects_of(self, subject: str) -> frozenset[str]:
        return self._index.subjects_of(subject)

    async def grants_of(self, subject: str, *, inherited: bool = False) -> list[tuple[str, Action]]:
        return self._index.grants_of(subject, inherited=inherited)

    async def roles_of(self, member: str) -> list[str]:
        return self._index.roles_of(member)

    def members_of(self, role: str) -> list[str]:
        return self._index.members_of(role)

    # -- batches (the rules membership means: see glia.tenancy) --

    async def add_rules(
        self, grants: Iterable[tuple[str, str, Action]], links: Iterable[tuple[str, str]]
    ) -> int:
        """Add the grants and role links not there yet, in one write and one rebuild; returns
        how many were added. Unlike `grant`, it leaves other actions on the same URI alone."""
        async with self._lock:
            rules = {(s, u, Action.parse(a).label) for s, u, a in grants}
            new_grants = [list(r) for r in sorted(rules) if not self._enforcer.has_policy(*r)]
            new_links = [
                list(link)
                for link in sorted(set(links))
                if not self._enforcer.has_grouping_policy(*link)
            ]
            for subject, uri, _ in new_grants:
                validate_subject(subject)
                parse_grant_uri(uri)
            for member, role in new_links:
                validate_subject(member)
                validate_subject(role)
            if not new_grants and not new_links:
                return 0
            if new_links:
                await self._apply(self._add_batch(new_grants, new_links))
            else:
                # Only grants (a job owner's): extend the index instead of rebuilding it.
                await self._apply(self._add_batch(new_grants, []), rebuild=False)
                self._index = self._index.with_grants(new_grants)
        await self._notify(_Delta(grants=new_grants, links=new_links))
        return len(new_grants) + len(new_links)

    def stage_grants(
        self, session: AsyncSession, grants: Iterable[tuple[str, str, Action]]
    ) -> list[list[str]]:
        """Add grants on a URI made in ``session``'s transaction (a job's, at its submission)
        to that transaction: they commit with what they are on, in one commit, and no lock
        is held meanwhile. Once it is committed, pass the result to `grants_committed`."""
        rules = sorted({(s, u, Action.parse(a).label) for s, u, a in grants})
        for subject, uri, _ in rules:
            validate_subject(subject)
            parse_grant_uri(uri)
        session.add_all(AclRuleRow(ptype="p", v0=s, v1=u, v2=a) for s, u, a in rules)
        return [list(rule) for rule in rules]

    async def grants_committed(self, grants: Sequence[Sequence[str]]) -> None:
        """Apply grants `stage_grants` added, now committed: to casbin's model and the index
        of this process (extended, not rebuilt), and to the others through the signal."""
        async with self._lock:
            model = self._enforcer.get_model()
            new = [list(rule) for rule in grants if not model.has_policy("p", "p", list(rule))]
            for rule in new:
                model.add_policy("p", "p", rule)
            self._index = self._index.with_grants(new)
        await self._notify(_Delta(grants=[list(rule) for rule in grants]))

    async def _add_batch(self, grants: list[list[str]], links: list[list[str]]) -> None:
        if grants:
            await self._enforcer.add_policies(grants)
        if links:
            await self._enforcer.add_grouping_policies(links)

    async def remove_rules(
        self, grants: Iterable[tuple[str, str, Action]], links: Iterable[tuple[str, str]]
    ) -> int:
        """Remove these exact grants and role links where they exist, in one write."""
        async with self._lock:
            rules = {(s, u, Action.parse(a).label) for s, u, a in grants}
            old_grants = [list(r) for r in sorted(rules) if self._enforcer.has_policy(*r)]
            old_links = [
                list(link)
                for link in sorted(set(links))
                if self._enforcer.has_grouping_policy(*link)
            ]
            if not old_grants and not old_links:
                return 0
            await self._apply(self._remove_batch(old_grants, old_links))
        await self._notify(_Delta(removed_grants=old_grants, removed_links=old_links))
        return len(old_grants) + len(old_links)

    async def remove_subjects(self, subjects: Collection[str]) -> int:
        """Remove every grant held by, every link from or to, and every grant on the role URI
        of ``subjects`` (roles of a deleted project, a deleted user); returns how many rules
        went."""
        wanted = set(subjects)
        role_uris = {f"role://{s.partition(':')[2]}" for s in wanted if s.startswith("role:")}
        async with self._lock:
            grants = [
                rule
                for rule in self._enforcer.get_policy()
                if rule[0] in wanted or rule[1] in role_uris
            ]
            links = [
                link
                for link in self._enforcer.get_grouping_policy()
                if link[0] in wanted or link[1] in wanted
            ]
            if not grants and not links:
                return 0
            await self._apply(self._remove_batch(grants, links))
        await self._notify(_Delta(removed_grants=grants, removed_links=links))
        return len(grants) + len(links)

    async def _remove_batch(self, grants: list[list[str]], links: list[list[str]]) -> None:
        if grants:
            await self._enforcer.remove_policies(grants)
        if links:
            await self._enforcer.remove_grouping_policies(links)

    # -- changes --

    async def grant(self, subject: str, uri: str, action: str | Action) -> bool:
        """Grant ``action`` on ``uri``, replacing any other action the subject held on this
        very URI. Idempotent; returns whether the policy changed."""
        validate_subject(subject)
        parse_grant_uri(uri)
        rule = [subject, uri, Action.parse(action).label]
        async with self._lock:
            existing = self._enforcer.get_filtered_policy(0, subject, uri)
            if existing == [rule]:
                return False
            if not existing:
                await self._apply(self._enforcer.add_policy(*rule), rebuild=False)
                self._index = self._index.with_grants([rule])
            elif len(existing) == 1:
                await self._apply(self._enforcer.update_policy(existing[0], rule))
            else:  # several actions on one URI: left by two processes granting at once
                await self._apply(self._replace_all(subject, uri, rule))
        await self._notify(_Delta(grants=[rule], removed_grants=existing))
        return True

    async def _replace_all(self, subject: str, uri: str, rule: list[str]) -> None:
        await self._enforcer.remove_filtered_policy(0, subject, uri)
        await self._enforcer.add_policy(*rule)

    async def revoke(self, subject: str, uri: str) -> bool:
        """Remove the subject's grant on ``uri`` (not those beneath it); returns whether there
        was one."""
        async with self._lock:
            existing = self._enforcer.get_filtered_policy(0, subject, uri)
            if not existing:
                return False
            await self._apply(self._enforcer.remove_filtered_policy(0, subject, uri))
        await self._notify(_Delta(removed_grants=existing))
        return True

    async def add_role(self, member: str, role: str) -> bool:
        """Make ``member`` (a user or a role) hold ``role``; returns whether it is new."""
        validate_subject(member)
        validate_subject(role)
        if member == role:
            raise BadInput(f"{member} cannot hold itself", fields={"role": "holds itself"})
        async with self._lock:
            if self._enforcer.has_grouping_policy(member, role):
                return False
            await self._apply(self._enforcer.add_grouping_policy(member, role))
        await self._notify(_Delta(links=[[member, role]]))
        return True

    async def remove_role(self, member: str, role: str) -> bool:
        async with self._lock:
            if not self._enforcer.has_grouping_policy(member, role):
                return False
            await self._apply(self._enforcer.remove_grouping_policy(member, role))
        await self._notify(_Delta(removed_links=[[member, role]]))
        return True

    async def _apply(self, change: Awaitable[object], *, rebuild: bool = True) -> None:
        """Run a casbin change (holding the lock) and rebuild the index (unless the caller
        updates it itself). Casbin updates its
        model and the database in two steps; if either fails, reload so the memory matches
        the database again."""
        try:
            await change
        except BaseException:
            try:
                await self._load_locked()
            except Exception:
                logger.exception("acl: reloading the policy after a failed change failed")
            raise
        if rebuild:
            self._rebuild()

    async def _notify(self, delta: _Delta) -> None:
        # The change is committed; a lost signal only delays other processes, so it must not
        # turn a successful change into an error. A small change travels with the signal, so
        # that other processes apply it instead of reloading the whole policy.
        message: dict[str, Any] = {"event": "changed", "origin": self.origin}
        if delta.size <= MAX_DELTA_RULES:
            message["delta"] = delta.to_wire()
        try:
            await self._bus.publish(ACL_CHANNEL, message)
        except Exception:
            logger.exception("acl: could not publish the change signal")

    async def _apply_foreign(self, delta: _Delta) -> None:
        """Apply another process's change to the in-memory policy and the index (no database
        read); idempotent, so a change also seen by a concurrent reload is harmless."""
        async with self._lock:
            model = self._enforcer.get_model()
            for rule in delta.removed_grants:
                if model.has_policy("p", "p", rule):
                    model.remove_policy("p", "p", rule)
            for link in delta.removed_links:
                if model.has_policy("g", "g", link):
                    model.remove_policy("g", "g", link)
            for rule in delta.grants:
                if not model.has_policy("p", "p", rule):
                    model.add_policy("p", "p", rule)
            for link in delta.links:
                if not model.has_policy("g", "g", link):
                    model.add_policy("g", "g", link)
            if delta.removed_grants or delta.removed_links or delta.links:
                self._rebuild()
            else:
                self._index = self._index.with_grants(delta.grants)

    # -- other processes' changes --

    def _is_foreign_change(self, message: Message) -> bool:
        return message.get("event") == "changed" and message.get("origin") != self.origin

    async def watch_changes(self, *, retry_delay: float = 1.0) -> None:
        """Reload the policy whenever another process changes it (run as a background task;
        it returns only when cancelled). Bursts of signals coalesce into one reload; on
        (re)subscribing it reloads once, so a change made while it was not subscribed is
        not missed."""
        dirty = asyncio.Event()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._reload_when(dirty))
            while True:
                try:
                    async with self._bus.subscribe(ACL_CHANNEL) as subscription:
                        dirty.set()
                        self.watching.set()
                        async for message in subscription:
                            if not self._is_foreign_change(message):
                                continue
                            delta = _Delta.from_wire(message.get("delta"))
                            if delta is None:
                                dirty.set()
                                continue
                            try:
                                await self._apply_foreign(delta)
                            except Exception:
                                logger.exception("acl: applying a change failed; reloading")
                                dirty.set()
                except Exception:
                    logger.exception("acl: the change subscription failed; resubscribing")
                finally:
                    self.watching.clear()
                await asyncio.sleep(retry_delay)

    async def _reload_when(self, dirty: asyncio.Event) -> None:
        while True:
            await dirty.wait()
            dirty.clear()
            try:
                await self.load()
            except Exception:
                logger.exception("acl: reloading the policy failed")
