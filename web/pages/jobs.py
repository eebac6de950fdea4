"""The jobs table: the jobs of the project chosen in the header, live (the `jobChanges`
subscription), filtered and paged."""

from __future__ import annotations

import contextlib
from typing import Any

import reflex as rx

from sdk import UNFINISHED_STATUSES, GliaError, Job, JobStatus
from web.layout import field, page, relative_time, status_badge
from web.session import SessionState, follow_while_open

PAGE_SIZE = 25
COLUMNS = ("ID", "Name", "Status", "Preset", "Owner", "Age", "Command")
STATUS_FILTERS = ["unfinished", "all", *(s.value for s in JobStatus)]


def job_row(job: Job) -> dict[str, str]:
    command = " ".join(job.command)
    return {
        "id": job.id,
        "short_id": job.id[:12],
        "name": job.name or "",
        "status": job.status.value,
        "preset": job.preset,
        "owner": job.owner.name,
        "created": job.created_at.isoformat(),
        "command": command if len(command) <= 80 else command[:79] + "…",
    }


class JobsState(SessionState):
    rows: list[dict[str, str]] = []
    status_filter: str = "unfinished"
    name_filter: str = ""
    tag_filter: str = ""
    total: int = 0
    cursors: list[str] = []  # the `after` of each page shown before this one
    after: str = ""
    next_cursor: str = ""
    has_next: bool = False
    loading: bool = False
    follower: int = 0

    def _statuses(self) -> list[JobStatus] | None:
        if self.status_filter == "all":
            return None
        if self.status_filter == "unfinished":
            return list(UNFINISHED_STATUSES)
        return [JobStatus(self.status_filter)]

    def _matches(self, job: Job) -> bool:
        statuses = self._statuses()
        return (
            job.org == self.org
            and job.project == self.project
            and (statuses is None or job.status in statuses)
            and (not self.name_filter or job.name == self.name_filter)
            and (not self.tag_filter or self.tag_filter in job.tags)
        )

    async def _load(self) -> Any:
        self.loading = True
        try:
            async with self.client() as client:
                found = await client.jobs.list(
                    self._statuses(),
                    name=self.name_filter or None,
                    tags=[self.tag_filter] if self.tag_filter else None,
                    first=PAGE_SIZE,
                    after=self.after or None,
                    org=self.org or None,
                    project=self.project or None,
                )
        except GliaError as error:
            return self.handle(error)
        finally:
            self.loading = False
        self.rows = [job_row(job) for job in found.items]
        self.total = found.total_count
        self.has_next = found.has_next_page
        self.next_cursor = found.end_cursor or ""
        return None

    @rx.event
    async def open(self) -> Any:
        redirect = await self.require_login()
        if redirect is not None:
            return redirect
        self.cursors, self.after = [], ""
        failed = await self._load()
        if failed is not None:
            return failed
        self.follower += 1
        return JobsState.follow

    @rx.event
    async def apply_filters(self, form: dict[str, Any]) -> Any:
        self.status_filter = str(form.get("status") or "unfinished")
        self.name_filter = str(form.get("name") or "").strip()
        self.tag_filter = str(form.get("tag") or "").strip()
        self.cursors, self.after = [], ""
        return await self._load()

    @rx.event
    async def switched(self) -> Any:
        """Another project (or cluster) chosen in the header: its jobs, from the first page."""
        self.cursors, self.after = [], ""
        return await self._load()

    @rx.event
    async def next_page(self) -> Any:
        if self.has_next:
            self.cursors.append(self.after)
            self.after = self.next_cursor
            return await self._load()
        return None

    @rx.event
    async def previous_page(self) -> Any:
        if self.cursors:
            self.after = self.cursors.pop()
            return await self._load()
        return None

    @rx.event(background=True)
    async def follow(self) -> None:
        """Apply each change of the user's jobs to the table while it is open."""
        async with self:
            me, token = self.follower, self.token

        async def still_open() -> bool:
            async with self:
                return self.follower == me and self.token == token

        async def apply(job: Job) -> None:
            async with self:
                self._apply(job)

        async def relist() -> None:
            async with self:
                await self._load()

        with contextlib.suppress(GliaError):
            async with self.client() as client:
                await follow_while_open(
                    aiter(client.jobs.watch_changes()),
                    still_open=still_open,
                    on_item=apply,
                    on_quiet=relist,
                )

    def _apply(self, job: Job) -> None:
        row = job_row(job)
        for index, existing in enumerate(self.rows):
            if existing["id"] == job.id:
                if self._matches(job):
                    self.rows[index] = row
                else:
                    self.rows.pop(index)
                    self.total = max(0, self.total - 1)
                return
        if not self.cursors and not self.after and self._matches(job):
            self.rows.insert(0, row)  # a new job, on the first page of the newest first
            self.rows = self.rows[:PAGE_SIZE]
            self.total += 1


def _filters() -> rx.Component:
    return rx.form(
        rx.flex(
            rx.box(
                field(
                    "Status",
                    rx.el.select(
                        *[rx.el.option(status, value=status) for status in STATUS_FILTERS],
                        name="status",
                        default_value="unfinished",
                        class_name="rt-reset rt-SelectTrigger rt-r-size-2 rt-variant-surface",
                    ),
                ),
                width="160px",
            ),
            rx.box(field("Name", rx.input(name="name", id="name", size="2")), width="180px"),
            rx.box(field("Tag", rx.input(name="tag", id="tag", size="2")), width="180px"),
            rx.button("Filter", type="submit", size="2", variant="soft"),
            spacing="3",
            wrap="wrap",
            align="end",
        ),
        on_submit=JobsState.apply_filters,
        reset_on_submit=False,
        margin_bottom="12px",
    )


def _row(row: dict[str, str]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.link(rx.code(row["short_id"]), href="/jobs/" + row["id"]),
        ),
        rx.table.cell(row["name"]),
        rx.table.cell(status_badge(row["status"]), data_status=row["status"]),
        rx.table.cell(row["preset"]),
        rx.table.cell(row["owner"]),
        rx.table.cell(relative_time(row["created"])),
        rx.table.cell(rx.code(row["command"], variant="ghost"), max_width="360px"),
        id="job-" + row["id"],
    )


def jobs() -> rx.Component:
    return page(
        "Jobs",
        rx.cond(
            JobsState.where,
            rx.text(
                "In project ",
                rx.code(JobsState.where, id="current-project"),
                size="2",
                color_scheme="gray",
                margin_bottom="8px",
            ),
        ),
        _filters(),
        rx.cond(
            JobsState.loading & (JobsState.rows.length() == 0),
            rx.center(rx.spinner(size="3"), padding="32px"),
            rx.cond(
                JobsState.rows.length() == 0,
                rx.center(
                    rx.vstack(
                        rx.text("No jobs here yet."),
                        rx.link("Run a job", href="/run"),
                        align="center",
                    ),
                    padding="32px",
                ),
                rx.box(
                    rx.table.root(
                        rx.table.header(
                            rx.table.row(*[rx.table.column_header_cell(h) for h in COLUMNS])
                        ),
                        rx.table.body(rx.foreach(JobsState.rows, _row)),
                        variant="surface",
                        size="1",
                    ),
                    overflow_x="auto",
                ),
            ),
        ),
        rx.hstack(
            rx.button(
                "Previous",
                on_click=JobsState.previous_page,
                disabled=JobsState.cursors.length() == 0,
                variant="soft",
                size="1",
            ),
            rx.button(
                "Next",
                on_click=JobsState.next_page,
                disabled=~JobsState.has_next,
                variant="soft",
                size="1",
            ),
            rx.text(
                rx.cond(JobsState.total == 1, "1 job", JobsState.total.to_string() + " jobs"),
                size="2",
                color_scheme="gray",
            ),
            spacing="3",
            align="center",
            margin_top="12px",
        ),
        on_switch=JobsState.switched,
    )
