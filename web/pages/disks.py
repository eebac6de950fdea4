"""Disks (`/disks`): the disks of the project chosen in the header, on the chosen cluster,
with their size, use and the job that holds one; a form to create one, and deletion."""

from __future__ import annotations

from typing import Any

import reflex as rx

from glia.sizes import format_size
from sdk import BadInput, Disk, GliaError, parse_duration
from web.layout import field, page, relative_time
from web.pages.orgs import confirm_button, field_errors, narrow, table
from web.session import SessionState


def size_text(size: int | None) -> str:
    return "—" if size is None else format_size(size)


def parse_gib(text: str) -> int:
    try:
        gib = float(text)
    except ValueError:
        raise BadInput(f"{text!r} is not a number", fields={"sizeBytes": "not a number"}) from None
    return int(gib * 1024**3)


class DisksState(SessionState):
    disks: list[dict[str, str]] = []
    errors: dict[str, str] = {}

    @rx.event
    async def open(self) -> Any:
        redirect = await self.require_login()
        if redirect is not None:
            return redirect
        self.errors = {}
        return await self._load()

    @rx.event
    async def switched(self) -> Any:
        return await self._load()

    async def _load(self) -> Any:
        try:
            async with self.client() as client:
                found = await client.disks.list(
                    cluster=self.cluster, org=self.org, project=self.project
                )
        except GliaError as error:
            return self.handle(error)
        self.disks = [_row(disk) for disk in found]
        return None

    @rx.event
    async def create(self, form: dict[str, Any]) -> Any:
        self.errors = {}
        name = str(form.get("name") or "").strip() or None
        timeout = str(form.get("timeout") or "").strip()
        try:
            size = parse_gib(str(form.get("size") or "").strip())
            try:
                timeout_s = parse_duration(timeout).total_seconds() if timeout else None
            except ValueError as exc:
                raise BadInput(str(exc), fields={"timeoutUnusedSeconds": str(exc)}) from None
            async with self.client() as client:
                await client.disks.create(
                    size,
                    name=name,
                    timeout_unused_s=timeout_s,
                    cluster=self.cluster,
                    org=self.org,
                    project=self.project,
                )
        except BadInput as error:
            self.errors = field_errors(error)
            return None if self.errors else self.handle(error)
        except GliaError as error:
            return self.handle(error)
        return await self._load()

    @rx.event
    async def delete(self, disk_id: str) -> Any:
        try:
            async with self.client() as client:
                await client.disks.delete(disk_id)
        except GliaError as error:
            return self.handle(error)
        return await self._load()


def _row(disk: Disk) -> dict[str, str]:
    return {
        "id": disk.id,
        "name": disk.name or "—",
        "status": disk.status.value,
        "size": size_text(disk.size_bytes),
        "used": size_text(disk.used_bytes),
        "used_by": disk.used_by or "",
        "created": disk.created_at.isoformat(),
    }


def _create_form() -> rx.Component:
    errors = DisksState.errors
    return rx.form(
        rx.flex(
            narrow(
                field(
                    "Size (GiB)",
                    rx.input(
                        name="size", id="disk-size", default_value="1", type="number", step="any"
                    ),
                    errors["sizeBytes"],
                )
            ),
            narrow(field("Name", rx.input(name="name", id="disk-name"), errors["name"])),
            narrow(
                field(
                    "Delete when unused for",
                    rx.input(name="timeout", id="disk-timeout", placeholder="never (e.g. 7d)"),
                    errors["timeoutUnusedSeconds"],
                )
            ),
            rx.button("Create disk", type="submit"),
            spacing="3",
            wrap="wrap",
            align="end",
        ),
        on_submit=DisksState.create,
        reset_on_submit=False,
        id="disk-form",
    )


def _disk_row(disk: Any) -> rx.Component:
    return rx.table.row(
        rx.table.cell(disk["name"]),
        rx.table.cell(rx.code(disk["id"], size="1")),
        rx.table.cell(disk["status"]),
        rx.table.cell(disk["size"]),
        rx.table.cell(disk["used"]),
        rx.table.cell(
            rx.cond(
                disk["used_by"] != "",
                rx.link(disk["used_by"], href="/jobs/" + disk["used_by"]),
                "—",
            )
        ),
        rx.table.cell(relative_time(disk["created"])),
        rx.table.cell(
            confirm_button(
                "Delete",
                "Delete disk " + disk["name"] + "?",
                "Its files are gone for good.",
                DisksState.delete(disk["id"]),
            )
        ),
        id="disk-" + disk["id"],
    )


def disks() -> rx.Component:
    return page(
        "Disks",
        rx.vstack(
            rx.text(
                "Disks of ",
                rx.code(DisksState.where),
                " on ",
                rx.code(DisksState.cluster),
                ": fixed-size filesystems one job at a time mounts read-write "
                "(glia run -v disk:NAME:/mnt/data).",
                size="2",
                color_scheme="gray",
            ),
            _create_form(),
            table(
                ("Name", "ID", "Status", "Size", "Used", "In use by", "Created", ""),
                rx.table.body(rx.foreach(DisksState.disks, _disk_row)),
                id="disks",
            ),
            spacing="3",
            width="100%",
        ),
        on_switch=DisksState.switched,
    )
