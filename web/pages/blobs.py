"""Buckets (`/buckets`): the buckets the user may read, a form to create one, and a bucket's
objects, browsed by prefix ('/' groups them) a page at a time, each downloadable through a
short-lived signed URL and deletable by those who may write the bucket; files chosen in the
browser are uploaded where the page is (through Reflex's upload, then the SDK's streamed PUT).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import reflex as rx

from glia.sizes import format_size
from sdk import BadInput, GliaError
from web.layout import field, page, relative_time
from web.pages.orgs import confirm_button, field_errors, narrow, table
from web.session import SessionState

PAGE_SIZE = 200
UPLOAD_ID = "blob-upload"
CHUNK_BYTES = 1024 * 1024
# How long a download link the page hands out works.
LINK_S = 300


async def _chunks(upload: rx.UploadFile) -> AsyncIterator[bytes]:
    """An uploaded file's bytes, read in bounded slices (off the event loop)."""
    while chunk := await upload.read(CHUNK_BYTES):
        yield chunk


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


class BlobsState(SessionState):
    buckets: list[dict[str, str]] = []
    errors: dict[str, str] = {}
    # The bucket open below the list, where in it, and what is there.
    bucket: str = ""
    prefix: str = ""
    objects: list[dict[str, str]] = []
    prefixes: list[dict[str, str]] = []
    next_cursor: str = ""

    @rx.event
    async def open(self) -> Any:
        redirect = await self.require_login()
        if redirect is not None:
            return redirect
        self.errors, self.bucket, self.prefix = {}, "", ""
        self.objects, self.prefixes, self.next_cursor = [], [], ""
        return await self._load_buckets()

    async def _load_buckets(self) -> Any:
        try:
            async with self.client() as client:
                found = await client.blobs.buckets()
        except GliaError as error:
            return self.handle(error)
        self.buckets = [
            {
                "uri": bucket.uri,
                "name": bucket.name,
                "place": f"{bucket.cluster}/{bucket.org}/{bucket.project}",
                "key": bucket.uri.removeprefix("blob://").replace("/", "-"),
                "provider": bucket.provider.value,
                "public": "public" if bucket.public else "",
                "created": bucket.created_at.isoformat(),
            }
            for bucket in found
        ]
        return None

    @rx.event
    async def create(self, form: dict[str, Any]) -> Any:
        self.errors = {}
        name = str(form.get("name") or "").strip()
        org = str(form.get("org") or "").strip() or None
        project = str(form.get("project") or "").strip() or None
        try:
            async with self.client() as client:
                await client.blobs.create_bucket(name, org=org, project=project)
        except BadInput as error:
            self.errors = field_errors(error)
            return None if self.errors else self.handle(error)
        except GliaError as error:
            return self.handle(error)
        return await self._load_buckets()

    @rx.event
    async def delete_bucket(self, uri: str) -> Any:
        try:
            async with self.client() as client:
                await client.blobs.delete_bucket(uri)
        except GliaError as error:
            return self.handle(error)
        if self.bucket == uri:
            self.bucket, self.objects, self.prefixes = "", [], []
        return await self._load_buckets()

    @rx.event
    async def browse(self, uri: str) -> Any:
        self.bucket, self.prefix = uri, ""
        return await self._load_objects(more=False)

    @rx.event
    async def enter(self, prefix: str) -> Any:
        self.prefix = prefix
        return await self._load_objects(more=False)

    @rx.event
    async def up(self) -> Any:
        parts = self.prefix.rstrip("/").split("/")[:-1]
        self.prefix = "".join(part + "/" for part in parts)
        return await self._load_objects(more=False)

    @rx.event
    async def more(self) -> Any:
        return await self._load_objects(more=True)

    async def _load_objects(self, *, more: bool) -> Any:
        after = self.next_cursor if more else None
        try:
            async with self.client() as client:
                listed = await client.blobs.list(
                    self.bucket, prefix=self.prefix, delimiter="/", first=PAGE_SIZE, after=after
                )
        except GliaError as error:
            return self.handle(error)
        objects = [
            {
                "key": item.key,
                "name": item.key.removeprefix(self.prefix),
                "size": format_size(item.size),
                "modified": item.modified_at.isoformat(),
            }
            for item in listed.objects
        ]
        prefixes = [
            {"prefix": prefix, "name": prefix.removeprefix(self.prefix)}
            for prefix in listed.prefixes
        ]
        self.objects = (self.objects if more else []) + objects
        self.prefixes = (self.prefixes if more else []) + prefixes
        self.next_cursor = listed.next_cursor or ""
        return None

    @rx.event
    async def upload(self, files: list[rx.UploadFile]) -> Any:
        """Put the chosen files in the open bucket, where the page is (their names as keys)."""
        try:
            async with self.client() as client:
                for upload in files:
                    name = (upload.name or upload.filename or "upload").rsplit("/", 1)[-1]
                    await client.blobs.upload(f"{self.bucket}/{self.prefix}{name}", _chunks(upload))
        except GliaError as error:
            return self.handle(error)
        return [rx.clear_selected_files(UPLOAD_ID), *_as_list(await self._load_objects(more=False))]

    @rx.event
    async def download(self, key: str) -> Any:
        try:
            async with self.client() as client:
                signed = await client.blobs.sign_url(f"{self.bucket}/{key}", expires_in_s=LINK_S)
        except GliaError as error:
            return self.handle(error)
        return rx.redirect(signed.url, is_external=True)

    @rx.event
    async def delete_object(self, key: str) -> Any:
        try:
            async with self.client() as client:
                await client.blobs.delete(f"{self.bucket}/{key}")
        except GliaError as error:
            return self.handle(error)
        return await self._load_objects(more=False)


def _create_form() -> rx.Component:
    errors = BlobsState.errors
    return rx.form(
        rx.flex(
            narrow(field("Name", rx.input(name="name", id="bucket-name"), errors["name"])),
            narrow(
                field(
                    "Org",
                    rx.input(name="org", id="bucket-org", placeholder="your personal org"),
                    errors["org"],
                )
            ),
            narrow(
                field(
                    "Project",
                    rx.input(name="project", id="bucket-project", placeholder="your own"),
                    errors["project"],
                )
            ),
            rx.button("Create bucket", type="submit"),
            spacing="3",
            wrap="wrap",
            align="end",
        ),
        on_submit=BlobsState.create,
        reset_on_submit=True,
        id="bucket-form",
    )


def _bucket_row(bucket: Any) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.button(
                bucket["name"], variant="ghost", size="1", on_click=BlobsState.browse(bucket["uri"])
            )
        ),
        rx.table.cell(bucket["place"]),
        rx.table.cell(bucket["provider"]),
        rx.table.cell(bucket["public"]),
        rx.table.cell(relative_time(bucket["created"])),
        rx.table.cell(
            confirm_button(
                "Delete",
                "Delete bucket " + bucket["uri"] + "?",
                "Only an empty bucket can be deleted here.",
                BlobsState.delete_bucket(bucket["uri"]),
            )
        ),
        id="bucket-" + bucket["key"],
    )


def _prefix_row(entry: Any) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.button(
                entry["name"], variant="ghost", size="1", on_click=BlobsState.enter(entry["prefix"])
            )
        ),
        rx.table.cell("—"),
        rx.table.cell(""),
        rx.table.cell(""),
        custom_attrs={"data-name": entry["name"]},
    )


def _object_row(item: Any) -> rx.Component:
    return rx.table.row(
        rx.table.cell(item["name"]),
        rx.table.cell(item["size"]),
        rx.table.cell(relative_time(item["modified"])),
        rx.table.cell(
            rx.hstack(
                rx.button(
                    "Download",
                    size="1",
                    variant="soft",
                    on_click=BlobsState.download(item["key"]),
                ),
                confirm_button(
                    "Delete",
                    "Delete " + item["key"] + "?",
                    "The object is gone for good.",
                    BlobsState.delete_object(item["key"]),
                ),
            )
        ),
        custom_attrs={"data-name": item["name"]},
    )


def _objects() -> rx.Component:
    return rx.cond(
        BlobsState.bucket != "",
        rx.vstack(
            rx.hstack(
                rx.heading(BlobsState.bucket + "/" + BlobsState.prefix, size="3"),
                rx.cond(
                    BlobsState.prefix != "",
                    rx.button("Up", size="1", variant="soft", on_click=BlobsState.up),
                ),
                align="center",
            ),
            rx.hstack(
                rx.upload(
                    rx.button("Choose files", variant="soft", size="1", type="button"),
                    rx.text(rx.selected_files(UPLOAD_ID).join(", "), size="1"),
                    id=UPLOAD_ID,
                    multiple=True,
                    border="1px dashed var(--gray-7)",
                    padding="0.5em",
                ),
                rx.button(
                    "Upload here",
                    size="1",
                    on_click=BlobsState.upload(rx.upload_files(upload_id=UPLOAD_ID)),
                    id="upload-button",
                ),
                align="center",
            ),
            table(
                ("Name", "Size", "Modified", ""),
                rx.table.body(
                    rx.foreach(BlobsState.prefixes, _prefix_row),
                    rx.foreach(BlobsState.objects, _object_row),
                ),
                id="objects",
            ),
            rx.cond(
                BlobsState.next_cursor != "",
                rx.button("More", variant="soft", on_click=BlobsState.more),
            ),
            spacing="2",
            width="100%",
        ),
    )


def blobs() -> rx.Component:
    return page(
        "Buckets",
        rx.vstack(
            rx.text(
                "Buckets hold objects for a project: its readers read them, its writers write "
                "them. Copy files in and out with glia blob cp, or with an access key (glia "
                "blob mkcredentials) from any program.",
                size="2",
                color_scheme="gray",
            ),
            _create_form(),
            table(
                ("Bucket", "Project", "Provider", "Public", "Created", ""),
                rx.table.body(rx.foreach(BlobsState.buckets, _bucket_row)),
                id="buckets",
            ),
            _objects(),
            spacing="3",
            width="100%",
        ),
    )
