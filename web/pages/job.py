"""A job's page: its status and history, live logs (with ANSI colours), download, kill, and
sharing it with a user (a grant on the job's URI)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

import reflex as rx
from ansi2html import Ansi2HTMLConverter

from sdk import GliaError, Job, LogStream, LogText
from web.layout import field, page, relative_time, status_badge
from web.pages.job_telemetry import JobTelemetryState, telemetry_section
from web.pages.orgs import narrow
from web.pages.sharing import action_select, grant, notice_text, warnings_callout
from web.session import SessionState, follow_while_open

HISTORY_COLUMNS = ("Status", "Reason", "Description", "Exit code", "At")
# The page keeps the newest output only (the download has all of it).
SHOWN_BYTES = 1024 * 1024
# A download goes through the web backend's memory: bounded.
DOWNLOAD_BYTES = 64 * 1024 * 1024

_ANSI = Ansi2HTMLConverter(inline=True, escaped=True)


def _html(text: str, stream: LogStream) -> str:
    html = _ANSI.convert(text, full=False)
    if stream is LogStream.STDOUT:
        return html
    kind = "stderr" if stream is LogStream.STDERR else "system"
    return f'<span class="log-{kind}">{html}</span>'


class JobState(SessionState):
    job: dict[str, str] = {}
    history: list[dict[str, str]] = []
    log_html: str = ""
    log_size: int = 0
    truncated: bool = False
    following: bool = False
    since: str = ""
    watcher: int = 0
    share_errors: dict[str, str] = {}
    share_warnings: list[str] = []
    share_notice: str = ""

    @rx.var
    def job_ref(self) -> str:
        """The job of the page's URL (/jobs/<id>)."""
        return self.router.url.path.rstrip("/").rsplit("/", 1)[-1]

    def _show(self, job: Job) -> None:
        self.job = {
            "id": job.id,
            "uri": job.uri,
            "name": job.name or "",
            "status": job.status.value,
            "reason": job.reason.value if job.reason else "",
            "description": job.status_description or "",
            "exit_code": "" if job.exit_code is None else str(job.exit_code),
            "preset": job.preset,
            "owner": job.owner.name,
            "project": f"{job.org}/{job.project}",
            "command": " ".join(job.command),
            "created": job.created_at.isoformat(),
            "url": job.http_url or "",
            "finished": "" if job.status.is_finished is False else "yes",
        }
        self.history = [
            {
                "status": item.status.value,
                "reason": item.reason.value if item.reason else "",
                "description": item.description or "",
                "exit_code": "" if item.exit_code is None else str(item.exit_code),
                "at": item.at.isoformat(),
            }
            for item in job.history
        ]

    @rx.event
    async def open(self) -> Any:
        redirect = await self.require_login()
        if redirect is not None:
            return redirect
        # Nothing of the job this tab showed before (another user's, maybe): its followers
        # stop, and its details and output go before this one loads.
        self.watcher += 1
        self.job, self.history = {}, []
        self.log_html, self.log_size, self.truncated = "", 0, False
        self.share_errors, self.share_warnings, self.share_notice = {}, [], ""
        try:
            async with self.client() as client:
                self._show(await client.jobs.get(self.job_ref))
        except GliaError as error:
            return self.handle(error)
        return [JobState.watch_status, JobState.follow_logs, JobTelemetryState.start]

    @rx.event
    async def share(self, form: dict[str, Any]) -> Any:
        """Let a user do an action on this job (the server's warnings and errors show)."""
        self.share_errors, self.share_warnings, self.share_notice = {}, [], ""
        user = str(form.get("user") or "").strip()
        action = str(form.get("action") or "read")
        try:
            self.share_warnings, errors = await grant(self, self.job["uri"], user, action)
        except GliaError as error:
            return self.handle(error)
        self.share_errors = {"user" if name == "subject" else name: e for name, e in errors.items()}
        if not errors:
            self.share_notice = f"Shared with {user} ({action})."
        return None

    @rx.event
    async def show_since(self, form: dict[str, Any]) -> Any:
        self.since = str(form.get("since") or "").strip()
        self.log_html, self.log_size, self.truncated = "", 0, False
        self.watcher += 1
        return [JobState.watch_status, JobState.follow_logs]

    async def _still_open(self, me: int) -> bool:
        async with self:
            return self.watcher == me

    @rx.event(background=True)
    async def watch_status(self) -> None:
        async with self:
            me, job_id = self.watcher, self.job_ref

        async def show(job: Job) -> None:
            async with self:
                self._show(job)

        with contextlib.suppress(GliaError):
            async with self.client() as client:
                await follow_while_open(
                    aiter(client.jobs.watch_status(job_id)),
                    still_open=lambda: self._still_open(me),
                    on_item=show,
                )

    @rx.event(background=True)
    async def follow_logs(self) -> None:
        async with self:
            me, job_id, since = self.watcher, self.job_ref, self.since
            self.following = True
        start = None
        if since:
            try:
                start = datetime.fromisoformat(since)
                if start.tzinfo is None:
                    start = start.replace(tzinfo=UTC)
            except ValueError:
                async with self:
                    self.error = f"not a time: {since!r} (use 2026-01-31T12:00:00Z)"
                    self.following = False
                return

        async def append(chunk: LogText) -> None:
            async with self:
                self._append(chunk.text, chunk.stream)

        try:
            async with self.client() as client:
                await follow_while_open(
                    aiter(client.jobs.log_text(job_id, start, follow=True)),
                    still_open=lambda: self._still_open(me),
                    on_item=append,
                )
        except GliaError as error:
            async with self:
                if self.watcher == me:
                    self.handle(error)
        finally:
            async with self:
                if self.watcher == me:
                    self.following = False

    def _append(self, text: str, stream: LogStream) -> None:
        self.log_html += _html(text, stream)
        self.log_size += len(text)
        if len(self.log_html) > 2 * SHOWN_BYTES:
            self.log_html = self.log_html[-SHOWN_BYTES:]
            self.log_html = self.log_html[self.log_html.find("\n") + 1 :]
            self.truncated = True

    @rx.event
    async def kill(self) -> Any:
        try:
            async with self.client() as client:
                job, _already = await client.jobs.kill_job(self.job_ref)
        except GliaError as error:
            return self.handle(error)
        self._show(job)
        return None

    @rx.event
    async def download(self) -> Any:
        data = bytearray()
        try:
            async with self.client() as client:
                async for chunk in client.jobs.read_log(self.job_ref):
                    data += chunk
                    if len(data) > DOWNLOAD_BYTES:
                        self.error = (
                            f"the log is over {DOWNLOAD_BYTES >> 20} MiB: download it with "
                            f"glia logs {self.job_ref} > output.log"
                        )
                        return None
        except GliaError as error:
            return self.handle(error)
        return rx.download(data=bytes(data), filename=f"{self.job_ref}.log")


def _detail(label: str, value: Any) -> rx.Component:
    return rx.data_list.item(rx.data_list.label(label), rx.data_list.value(value))


def _history_row(item: dict[str, str]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(status_badge(item["status"])),
        rx.table.cell(item["reason"]),
        rx.table.cell(item["description"]),
        rx.table.cell(item["exit_code"]),
        rx.table.cell(relative_time(item["at"])),
    )


def _share_form() -> rx.Component:
    return rx.vstack(
        rx.form(
            rx.flex(
                narrow(
                    field(
                        "Share with",
                        rx.input(name="user", id="share-user", placeholder="a user name"),
                        JobState.share_errors["user"],
                    )
                ),
                narrow(field("Action", action_select("action"), JobState.share_errors["action"])),
                rx.button("Share", type="submit", variant="soft"),
                spacing="3",
                wrap="wrap",
                align="end",
            ),
            on_submit=JobState.share,
            reset_on_submit=True,
        ),
        notice_text(JobState.share_notice),
        warnings_callout(JobState.share_warnings),
        spacing="2",
        margin_top="16px",
        id="job-share",
    )


def job() -> rx.Component:
    return page(
        "Job",
        rx.flex(
            rx.data_list.root(
                _detail("ID", rx.code(JobState.job["id"])),
                _detail("Name", JobState.job["name"]),
                _detail("Status", rx.box(status_badge(JobState.job["status"]), id="job-status")),
                _detail("Reason", JobState.job["reason"]),
                _detail("Exit code", rx.text(JobState.job["exit_code"], id="exit-code")),
                _detail("Preset", JobState.job["preset"]),
                _detail("Owner", JobState.job["owner"]),
                _detail("Project", rx.text(JobState.job["project"], id="job-project")),
                _detail("Command", rx.code(JobState.job["command"])),
                _detail("Created", relative_time(JobState.job["created"])),
                _detail(
                    "URL",
                    rx.cond(
                        JobState.job["url"] != "",
                        rx.link(
                            JobState.job["url"],
                            href=JobState.job["url"],
                            is_external=True,
                            id="job-url",
                        ),
                        "-",
                    ),
                ),
                _detail("URI", rx.code(JobState.job["uri"], id="job-uri")),
                size="2",
            ),
            rx.vstack(
                rx.button(
                    "Kill",
                    on_click=JobState.kill,
                    color_scheme="red",
                    disabled=JobState.job["finished"] == "yes",
                    id="kill",
                ),
                rx.button("Download the whole log", on_click=JobState.download, variant="soft"),
                spacing="2",
            ),
            justify="between",
            wrap="wrap",
            gap="4",
        ),
        _share_form(),
        telemetry_section(),
        rx.heading("Status history", size="4", margin_top="20px", margin_bottom="8px"),
        rx.table.root(
            rx.table.header(
                rx.table.row(*[rx.table.column_header_cell(h) for h in HISTORY_COLUMNS])
            ),
            rx.table.body(rx.foreach(JobState.history, _history_row)),
            size="1",
            variant="surface",
        ),
        rx.flex(
            rx.heading("Output", size="4"),
            rx.cond(JobState.following, rx.badge("following", color_scheme="blue", variant="soft")),
            rx.form(
                rx.hstack(
                    rx.input(
                        name="since", placeholder="from a time (UTC)", aria_label="Since", size="1"
                    ),
                    rx.button("Show", type="submit", size="1", variant="soft"),
                ),
                on_submit=JobState.show_since,
                reset_on_submit=False,
            ),
            justify="between",
            align="center",
            wrap="wrap",
            gap="2",
            margin_top="20px",
            margin_bottom="8px",
        ),
        rx.cond(
            JobState.truncated,
            rx.text(
                "Older output is not shown here: download the whole log.",
                size="1",
                color_scheme="gray",
            ),
        ),
        rx.box(
            rx.html(JobState.log_html),
            id="log",
            font_family="var(--code-font-family, monospace)",
            font_size="13px",
            white_space="pre-wrap",
            overflow_wrap="anywhere",
            background="var(--gray-a2)",
            border="1px solid var(--gray-a5)",
            border_radius="6px",
            padding="8px",
            max_height="60vh",
            overflow_y="auto",
            min_height="80px",
        ),
    )
