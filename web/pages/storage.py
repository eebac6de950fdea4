"""The file browser (`/storage`): the chosen project's storage on the chosen cluster (the
header's switchers), a directory at a time. Directories open with a click; files download;
files upload (the browser's progress shown, then the copy to the cluster); a directory can
be made, an entry renamed or removed. Everything goes through the SDK (`client.storage`);
what the server refuses shows as its error.

Downloads pass through this backend and reach the browser whole, so they are capped at
`DOWNLOAD_LIMIT`; bigger files are for ``glia storage cp``.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import reflex as rx

from glia.sizes import format_size
from sdk import GliaClient, GliaError
from web.layout import page
from web.session import SessionState

if TYPE_CHECKING:
    from glia.storage import FileStatus

UPLOAD_ID = "storage-upload"
DOWNLOAD_LIMIT = 64 * 1024 * 1024
PAGE_LIMIT = 1000


class StorageState(SessionState):
    # The directory shown: names below the project's tree.
    path: list[str] = []
    entries: list[dict[str, str]] = []
    more: bool = False
    renaming: str = ""
    upload_percent: int = 0
    uploading: bool = False
    notice: str = ""

    @rx.var
    def location(self) -> str:
        return "/" + "/".join(self.path)

    @rx.var
    def crumbs(self) -> list[dict[str, str]]:
        return [{"name": name, "depth": str(index + 1)} for index, name in enumerate(self.path)]

    def _uri(self, *names: str) -> str:
        from sdk.storage import resolve_uri

        return resolve_uri(
            "storage:" + "/".join([*self.path, *names]),
            cluster=self.cluster or "default",
            org=self.org or self.user_name,
            project=self.project or self.user_name,
        )

    @rx.event
    async def open(self) -> Any:
        redirect = await self.require_login()
        if redirect is not None:
            return redirect
        return await self._load()

    @rx.event
    async def reload(self) -> Any:
        self.path = []
        return await self._load()

    async def _load(self) -> Any:
        self.notice = ""
        try:
            async with self.client() as client:
                await self._load_orgs(client)
                entries: list[FileStatus] = []
                async for entry in client.storage.ls(self._uri()):
                    if len(entries) == PAGE_LIMIT:
                        self.more = True
                        break
                    entries.append(entry)
                else:
                    self.more = False
        except GliaError as error:
            self.entries = []
            return self.handle(error)
        self.entries = [
            {
                "name": entry.name,
                "type": entry.type.value,
                "size": "" if entry.type.value == "directory" else format_size(entry.size),
                "modified": entry.modified_at.strftime("%Y-%m-%d %H:%M"),
            }
            for entry in entries
        ]
        return None

    @rx.event
    async def enter(self, name: str) -> Any:
        self.path = [*self.path, name]
        return await self._load()

    @rx.event
    async def go_to(self, depth: str) -> Any:
        self.path = self.path[: int(depth)]
        return await self._load()

    async def _change(self, action: Any) -> Any:
        try:
            async with self.client() as client:
                await action(client)
        except GliaError as error:
            return self.handle(error)
        return await self._load()

    @rx.event
    async def make_directory(self, form: dict[str, Any]) -> Any:
        name = str(form.get("name") or "").strip()
        if not name:
            return None

        async def action(client: GliaClient) -> None:
            await client.storage.mkdir(self._uri(name))

        return await self._change(action)

    @rx.event
    def start_rename(self, name: str) -> None:
        self.renaming = name

    @rx.event
    def cancel_rename(self) -> None:
        self.renaming = ""

    @rx.event
    async def rename(self, form: dict[str, Any]) -> Any:
        old, new = self.renaming, str(form.get("name") or "").strip()
        self.renaming = ""
        if not new or new == old:
            return None

        async def action(client: GliaClient) -> None:
            await client.storage.mv(self._uri(old), self._uri(new))

        return await self._change(action)

    @rx.event
    async def remove(self, name: str) -> Any:
        async def action(client: GliaClient) -> None:
            await client.storage.rm(self._uri(name), recursive=True)

        return await self._change(action)

    @rx.event
    async def download(self, name: str) -> Any:
        try:
            async with self.client() as client:
                entry = await client.storage.stat(self._uri(name))
                if entry.size > DOWNLOAD_LIMIT:
                    self.notice = (
                        f"{name} is {format_size(entry.size)}: download it with "
                        f"glia storage cp {entry.uri} ."
                    )
                    return None
                with tempfile.TemporaryDirectory(prefix="glia-web-") as directory:
                    target = Path(directory) / "file"
                    await client.storage.download(self._uri(name), target)
                    data = await asyncio.to_thread(target.read_bytes)
        except GliaError as error:
            return self.handle(error)
        return rx.download(data=data, filename=name)

    @rx.event
    def upload_progress(self, progress: dict[str, Any]) -> None:
        self.uploading = True
        self.upload_percent = round(float(progress.get("progress", 0)) * 100)

    @rx.event
    async def upload(self, files: list[rx.UploadFile]) -> Any:
        self.uploading = True
        try:
            async with self.client() as client:
                for file in files:
                    name = os.path.basename(file.name or file.filename or "upload")
                    with tempfile.NamedTemporaryFile(prefix="glia-web-") as local:
                        while chunk := await file.read(1024 * 1024):
                            local.write(chunk)
                        local.flush()
                        await client.storage.upload(local.name, self._uri(name))
        except GliaError as error:
            return self.handle(error)
        finally:
            self.uploading = False
            self.upload_percent = 0
        loaded = await self._load()
        return [rx.clear_selected_files(UPLOAD_ID), *([loaded] if loaded else [])]


def _entry_row(entry: Any) -> rx.Component:
    name = entry["name"]
    is_dir = entry["type"] == "directory"
    return rx.table.row(
        rx.table.cell(
            rx.cond(
                StorageState.renaming == name,
                rx.form(
                    rx.hstack(
                        rx.input(name="name", default_value=name, size="1", aria_label="New name"),
                        rx.button("Rename", type="submit", size="1"),
                        rx.button(
                            "Cancel",
                            type="button",
                            size="1",
                            variant="ghost",
                            on_click=StorageState.cancel_rename,
                        ),
                    ),
                    on_submit=StorageState.rename,
                    reset_on_submit=True,
                ),
                rx.cond(
                    is_dir,
                    rx.link(name + "/", href="#", on_click=StorageState.enter(name)),
                    rx.text(name),
                ),
            )
        ),
        rx.table.cell(entry["size"]),
        rx.table.cell(entry["modified"]),
        rx.table.cell(
            rx.hstack(
                rx.cond(
                    is_dir,
                    rx.fragment(),
                    rx.button(
                        "Download",
                        size="1",
                        variant="soft",
                        on_click=StorageState.download(name),
                    ),
                ),
                rx.button(
                    "Rename", size="1", variant="soft", on_click=StorageState.start_rename(name)
                ),
                rx.button(
                    "Remove",
                    size="1",
                    variant="soft",
                    color_scheme="red",
                    on_click=StorageState.remove(name),
                ),
                spacing="2",
            )
        ),
        data_name=name,
    )


def storage() -> rx.Component:
    return page(
        "Storage",
        rx.hstack(
            rx.link("/", href="#", on_click=StorageState.go_to("0")),
            rx.foreach(
                StorageState.crumbs,
                lambda crumb: rx.hstack(
                    rx.link(crumb["name"], href="#", on_click=StorageState.go_to(crumb["depth"])),
                    rx.text("/"),
                    spacing="1",
                ),
            ),
            spacing="1",
            id="storage-path",
            margin_bottom="12px",
        ),
        rx.cond(StorageState.notice, rx.callout(StorageState.notice, margin_bottom="12px")),
        rx.hstack(
            rx.form(
                rx.hstack(
                    rx.input(name="name", placeholder="New directory", size="2"),
                    rx.button("Make directory", type="submit", size="2"),
                ),
                on_submit=StorageState.make_directory,
                reset_on_submit=True,
            ),
            rx.upload(
                rx.button("Choose files", size="2", variant="soft", type="button"),
                id=UPLOAD_ID,
                multiple=True,
                border="1px dashed var(--gray-a7)",
                padding="4px",
            ),
            rx.text(rx.selected_files(UPLOAD_ID).join(", "), size="2"),
            rx.button(
                "Upload",
                size="2",
                on_click=StorageState.upload(
                    rx.upload_files(
                        upload_id=UPLOAD_ID, on_upload_progress=StorageState.upload_progress
                    )
                ),
            ),
            rx.cond(
                StorageState.uploading,
                rx.hstack(
                    rx.progress(value=StorageState.upload_percent, width="120px"),
                    rx.text(StorageState.upload_percent.to_string() + "%", size="1"),
                    id="upload-progress",
                ),
            ),
            spacing="4",
            wrap="wrap",
            margin_bottom="12px",
        ),
        rx.table.root(
            rx.table.header(
                rx.table.row(
                    rx.table.column_header_cell("Name"),
                    rx.table.column_header_cell("Size"),
                    rx.table.column_header_cell("Modified"),
                    rx.table.column_header_cell(""),
                )
            ),
            rx.table.body(rx.foreach(StorageState.entries, _entry_row)),
            id="storage-entries",
        ),
        rx.cond(
            StorageState.more,
            rx.text(f"Only the first {PAGE_LIMIT} entries are shown.", size="2"),
        ),
        on_switch=StorageState.reload,
    )
