"""The signed-in session every page shares: the token (kept in the browser's local storage,
so a reload keeps the session), who it is, and the cluster, org and project chosen (the
header's switchers): jobs are listed from, and run in, the chosen org's chosen project.

Every call to the platform goes through `SessionState.client()` (the SDK's `GliaClient`);
an expired or revoked token ends the session and sends the browser to the login page.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import reflex as rx

from sdk import GliaClient, GliaError, Quota, Unauthenticated

T = TypeVar("T")

# A page follows a stream (a subscription) while it is open, for this long at most: a browser
# that went away sends no more events, and its followers must not hold their connections
# forever. Every wait wakes up this often to check that the page is still the one open.
FOLLOW_FOR_S = 30 * 60.0
RECHECK_S = 30.0

# Where the web backend reaches the API (set by `glia web --api` and `glia up`), and where a
# browser reaches it (the API explorer's frame): the same unless a proxy says otherwise.
API_URL = os.environ.get("GLIA_API_URL", "http://127.0.0.1:8080").rstrip("/")
PUBLIC_API_URL = os.environ.get("GLIA_PUBLIC_API_URL", API_URL).rstrip("/")


def plain_error(error: GliaError) -> str:
    return " ".join(str(error.message).split()) or type(error).__name__


class SessionState(rx.State):
    token: str = rx.LocalStorage("", name="glia_token", sync=True)
    user_name: str = ""
    is_admin: bool = False
    cluster: str = ""
    clusters: list[str] = []
    # The org and project the jobs page lists and the run page submits into: at first the
    # user's personal ones (named after them), or the first the user may see.
    org: str = ""
    orgs: list[str] = []
    project: str = ""
    projects: list[str] = []
    # The caller's tightest running-jobs quota and lowest credit balance where their jobs
    # would run (the chosen org on the chosen cluster): "Jobs 2/10 · Credits 98.50".
    quota_summary: str = ""
    error: str = ""
    busy: bool = False
    # The path of the page whose on_load ran last (`opened_again`).
    _opened_path: str = ""

    @asynccontextmanager
    async def client(self) -> AsyncIterator[GliaClient]:
        async with GliaClient(API_URL, self.token or None, timeout=30) as client:
            yield client

    @rx.event
    async def login(self, form: dict[str, Any]) -> Any:
        self.error = ""
        username = str(form.get("username", "")).strip()
        password = str(form.get("password", ""))
        if not username or not password:
            self.error = "Enter your user name and password."
            return None
        try:
            async with GliaClient(API_URL, None, timeout=30) as client:
                token, user = await client.auth.login(username, password)
        except GliaError as error:
            self.error = plain_error(error)
            return None
        self.token = token
        self.user_name, self.is_admin = user.name, user.is_admin
        return rx.redirect("/jobs")

    @rx.event
    async def logout(self) -> Any:
        if self.token:
            try:
                async with self.client() as client:
                    await client.auth.logout()
            except GliaError:
                pass  # an expired token is as good as revoked
        return self._signed_out("")

    def _signed_out(self, why: str) -> Any:
        self.token = ""
        self.user_name, self.is_admin = "", False
        self.org, self.orgs, self.project, self.projects = "", [], "", []
        self.error = why
        return rx.redirect("/login")

    def opened_again(self) -> bool:
        """Record the page being loaded as the one open; True when it already was.

        Reflex runs a page's on_load whenever the page's socket connects: when it is opened
        from another page, and also when the socket connects again (a network blip, a
        reload). A page that forgets something when it is opened anew (a token shown once)
        tells the two apart with this."""
        path = self.router.url.path.rstrip("/")
        again = path == self._opened_path
        self._opened_path = path
        return again

    @rx.event
    async def require_login(self) -> Any:
        """Every page's on_load: the session's user, clusters, orgs and projects, or the
        login page."""
        self.opened_again()
        if not self.token:
            return rx.redirect("/login")
        try:
            async with self.client() as client:
                user = await client.auth.me()
                clusters = [c.name for c in await client.clusters.list()]
                self.user_name, self.is_admin = user.name, user.is_admin
                await self._load_orgs(client)
        except Unauthenticated:
            return self._signed_out("Your session has ended: sign in again.")
        except GliaError as error:
            self.error = plain_error(error)
            return None
        self.clusters = clusters
        if self.cluster not in clusters:
            self.cluster = clusters[0] if clusters else ""
        return await self._load_quotas()

    async def _load_quotas(self) -> Any:
        if not (self.org and self.cluster):
            self.quota_summary = ""
            return None
        try:
            async with self.client() as client:
                quotas = await client.quotas.mine(org=self.org, cluster=self.cluster)
        except GliaError as error:
            return self.handle(error)
        self.quota_summary = quota_summary(quotas)
        return None

    async def _load_orgs(self, client: GliaClient) -> None:
        """The orgs and the chosen org's projects; a choice gone (an org left, a project
        deleted) falls back to the personal one."""
        self.orgs = [org.name for org in await client.orgs.list()]
        if self.org not in self.orgs:
            self.org = _default(self.orgs, self.user_name)
        await self._load_projects(client)

    async def _load_projects(self, client: GliaClient) -> None:
        found = await client.projects.list(self.org) if self.org else []
        self.projects = [project.name for project in found]
        if self.project not in self.projects:
            self.project = _default(self.projects, self.org)

    @rx.event
    async def choose_cluster(self, name: str) -> Any:
        if name in self.clusters:
            self.cluster = name
            return await self._load_quotas()
        return None

    @rx.event
    async def choose_org(self, name: str) -> Any:
        """Switch to an org, and to its first project (the personal one in a personal org)."""
        if name not in self.orgs or name == self.org:
            return None
        self.org, self.project = name, ""
        try:
            async with self.client() as client:
                await self._load_projects(client)
        except GliaError as error:
            return self.handle(error)
        return await self._load_quotas()

    @rx.event
    def choose_project(self, name: str) -> None:
        if name in self.projects:
            self.project = name

    @rx.var
    def where(self) -> str:
        """The chosen project as `ORG/PROJECT`."""
        return f"{self.org}/{self.project}" if self.org and self.project else ""

    def handle(self, error: GliaError) -> Any:
        """Show an error on the page; an ended session goes to the login page."""
        if isinstance(error, Unauthenticated):
            return self._signed_out("Your session has ended: sign in again.")
        self.error = plain_error(error)
        return None

    @rx.event
    def dismiss_error(self) -> None:
        self.error = ""


def quota_summary(quotas: list[Quota]) -> str:
    """The tightest running-jobs quota (fewest seats left) and the lowest balance;
    empty where no level has a limit."""
    parts = []
    limited = [q for q in quotas if q.max_running_jobs is not None]
    if limited:
        tightest = min(limited, key=lambda q: (q.max_running_jobs or 0) - q.running_jobs)
        parts.append(f"Jobs {tightest.running_jobs}/{tightest.max_running_jobs}")
    balances = [q.credits for q in quotas if q.credits is not None]
    if balances:
        parts.append(f"Credits {min(balances):,.2f}")
    return " · ".join(parts)


def _default(names: list[str], preferred: str) -> str:
    if preferred in names:
        return preferred
    return names[0] if names else ""


async def follow_while_open(
    items: AsyncIterator[T],
    *,
    still_open: Callable[[], Awaitable[bool]],
    on_item: Callable[[T], Awaitable[None]],
    on_quiet: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Hand each item of ``items`` to ``on_item`` while ``still_open()`` says the page that
    started it is open, for `FOLLOW_FOR_S` at most; ``on_quiet`` runs after each `RECHECK_S`
    without an item (a re-read, as a safety net for a missed message)."""
    started = time.monotonic()
    pending = asyncio.ensure_future(anext(items))
    try:
        while time.monotonic() - started < FOLLOW_FOR_S:
            done, _ = await asyncio.wait({pending}, timeout=RECHECK_S)
            if not await still_open():
                return
            if not done:
                if on_quiet is not None:
                    await on_quiet()
                continue
            try:
                item = pending.result()
            except StopAsyncIteration:
                return
            pending = asyncio.ensure_future(anext(items))
            await on_item(item)
    finally:
        pending.cancel()
