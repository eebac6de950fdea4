"""Users, passwords and tokens through the SDK against a real server: what admins may do to
users, what each user may do to their own password and tokens, and short job ids."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster_gateway.runtimes.fake import FakeRuntime
from sdk import (
    Ambiguous,
    BadInput,
    Conflict,
    Forbidden,
    GliaClient,
    JobStatus,
    NotFound,
    Unauthenticated,
    UserRole,
)
from tests.factories import ServedApi, make_settings, serving_api


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServedApi]:
    # Jobs stay running until killed: a deleted user's jobs are there to be stopped.
    with serving_api(make_settings(tmp_path), FakeRuntime()) as server:
        yield server


async def test_admins_list_change_and_delete_users(server: ServedApi) -> None:
    root = server.user("root", role="admin")
    alice = server.user("alice")
    server.user("bob")
    async with GliaClient(server.url, root) as admin, GliaClient(server.url, alice) as user:
        assert [u.name for u in await admin.users.list()] == ["alice", "bob", "root"]
        with pytest.raises(Forbidden):
            await user.users.list()
        # Anyone may look a user up, to share with them; the email is theirs and admins'.
        await admin.users.update("bob", email="bob@example.com")
        assert (await user.users.get("bob")).email is None
        assert (await admin.users.get("bob")).email == "bob@example.com"
        with pytest.raises(NotFound):
            await user.users.get("nobody")
        with pytest.raises(Forbidden):
            await user.users.update("bob", role=UserRole.ADMIN)

        promoted = await admin.users.update("alice", role=UserRole.ADMIN)
        assert promoted.role is UserRole.ADMIN
        assert len(await user.users.list()) == 3  # her grants follow her role at once
        with pytest.raises(Conflict, match="your own role"):
            await user.users.update("alice", role=UserRole.USER)
        with pytest.raises(Conflict, match="yourself"):
            await admin.users.delete("root")
        with pytest.raises(BadInput):
            await admin.users.update("bob", email="not an address")


async def test_deleting_a_user_stops_their_jobs_and_ends_their_sessions(
    server: ServedApi,
) -> None:
    root = server.user("root", role="admin")
    carol = server.user("carol")
    async with GliaClient(server.url, root) as admin, GliaClient(server.url, carol) as user:
        jobs = [await user.jobs.submit(["sleep", "1000"]) for _ in range(3)]
        for job in jobs:
            async for update in user.jobs.watch_status(job.id):
                if update.status is JobStatus.RUNNING:
                    break
        assert await admin.users.delete("carol") == 3
        for job in jobs:
            assert (await admin.jobs.get(job.id)).status is JobStatus.CANCELLED
        with pytest.raises(Unauthenticated):
            await user.auth.me()
        with pytest.raises(NotFound):
            await admin.users.get("carol")
        # The name stays taken: a new carol would inherit the URIs of the old one's jobs.
        with pytest.raises(Conflict, match="deleted user"):
            await admin.auth.create_user("carol")
    async with GliaClient(server.url, None) as anonymous:
        with pytest.raises(Unauthenticated):
            await anonymous.auth.login("carol", "whatever-password")


async def test_passwords_change_with_the_current_one_and_resets_sign_out(
    server: ServedApi,
) -> None:
    root = server.user("root", role="admin")
    server.user("dave", password="first-password")
    async with GliaClient(server.url, None) as laptop, GliaClient(server.url, None) as desktop:
        await laptop.auth.login("dave", "first-password")
        await desktop.auth.login("dave", "first-password")
        with pytest.raises(Forbidden, match="current password"):
            await laptop.auth.change_password("wrong-password", "second-password")
        with pytest.raises(BadInput, match="8 to 1024"):
            await laptop.auth.change_password("first-password", "short")
        await laptop.auth.change_password("first-password", "second-password")
        assert (await laptop.auth.me()).name == "dave"  # the token that changed it still works
        with pytest.raises(Unauthenticated):
            await desktop.auth.me()  # whoever knew the old password is signed out
        async with GliaClient(server.url, root) as admin:
            new_password = await admin.users.reset_password("dave")
        with pytest.raises(Unauthenticated):
            await laptop.auth.me()
        with pytest.raises(Unauthenticated):
            await desktop.auth.login("dave", "second-password")
        await desktop.auth.login("dave", new_password)


async def test_users_see_and_revoke_their_own_tokens_only(server: ServedApi) -> None:
    first = server.user("erin", password="erin-password")  # a token of its own
    frank = server.user("frank")
    async with GliaClient(server.url, None) as one, GliaClient(server.url, None) as two:
        await one.auth.login("erin", "erin-password")
        await two.auth.login("erin", "erin-password")
        tokens = await one.auth.tokens()
        assert len(tokens) == 3 and [t.current for t in tokens].count(True) == 1
        other = tokens[0]  # newest first: the login of `two`
        assert not other.current
        async with GliaClient(server.url, frank) as stranger:
            with pytest.raises(NotFound):
                await stranger.auth.revoke_token(other.id)
            with pytest.raises(NotFound):
                await stranger.auth.revoke_token("not-a-uuid")
        await one.auth.revoke_token(other.id)
        with pytest.raises(Unauthenticated):
            await two.auth.me()
        assert [t.current for t in await one.auth.tokens()] == [True, False]
        async with GliaClient(server.url, first) as oldest:
            assert (await oldest.auth.me()).name == "erin"


async def test_jobs_are_found_by_a_unique_prefix_of_their_id(server: ServedApi) -> None:
    token = server.user("gina")
    async with GliaClient(server.url, token) as client:
        jobs = [await client.jobs.submit(["true"]) for _ in range(20)]
        job = jobs[0]
        assert (await client.jobs.get(job.id[:13])).id == job.id
        assert await client.jobs.resolve(job.id) == job.id
        with pytest.raises(Ambiguous) as ambiguous:
            await client.jobs.get("job-")
        assert len(ambiguous.value.candidates) == 10 and "20 job ids" in ambiguous.value.message
        with pytest.raises(NotFound):
            await client.jobs.get("job-ffffffff-ffff")
        with pytest.raises(NotFound):
            await client.jobs.get("job-not-hex")
        killed, already = await client.jobs.kill_job(job.id[:13])
        assert killed.id == job.id
    other = server.user("hank")
    async with GliaClient(server.url, other) as stranger:
        with pytest.raises(NotFound):  # a prefix finds only jobs the caller may read
            await stranger.jobs.get(job.id[:13])
