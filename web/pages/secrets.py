"""Secrets (`/secrets`): the chosen project's secrets on the chosen cluster (the header's
switchers), a form to add one (or give one a new value) from text typed in or from a file,
and a delete button on each. Values are never shown: the API has no way to read one back.

A value goes from the form (or Reflex's upload) straight to the SDK's PUT, inside the event
handler: it is never kept in the page's state, which Reflex stores and sends to the browser.
"""

from __future__ import annotations

from typing import Any

import reflex as rx

from glia.secrets import MAX_VALUE_BYTES, check_secret_key
from sdk import BadInput, GliaError
from web.layout import field, page, relative_time
from web.pages.orgs import confirm_button, field_errors, narrow, table
from web.session import SessionState

UPLOAD_ID = "secret-file"


class SecretsState(SessionState):
    secrets: list[dict[str, str]] = []
    errors: dict[str, str] = {}
    # The key typed in the form (a key is no secret): what a file upload is stored under.
    key: str = ""
    notice: str = ""

    def _uri(self, key: str) -> str:
        cluster = self.cluster or "default"
        org = self.org or self.user_name
        project = self.project or self.user_name
        return f"secret://{cluster}/{org}/{project}/{key}"

    @rx.event
    async def open(self) -> Any:
        redirect = await self.require_login()
        if redirect is not None:
            return redirect
        self.errors, self.notice = {}, ""
        return await self._load()

    @rx.event
    async def reload(self) -> Any:
        self.notice = ""
        return await self._load()

    async def _load(self) -> Any:
        try:
            async with self.client() as client:
                found = await client.secrets.list(
                    cluster=self.cluster or None,
                    org=self.org or None,
                    project=self.project or None,
                )
        except GliaError as error:
            self.secrets = []
            return self.handle(error)
        self.secrets = [
            {
                "key": secret.key,
                "uri": secret.uri,
                "updated": secret.updated_at.isoformat(),
                "by": secret.updated_by or "",
            }
            for secret in found
        ]
        return None

    @rx.event
    def set_key(self, key: str) -> None:
        self.key = key.strip()

    async def _put(self, key: str, value: bytes) -> Any:
        self.errors, self.notice = {}, ""
        try:
            check_secret_key(key, "key")
            if len(value) > MAX_VALUE_BYTES:
                raise BadInput(
                    f"a secret's value is at most {MAX_VALUE_BYTES} bytes (1 MiB)",
                    fields={"value": "too large"},
                )
            async with self.client() as client:
                secret, created = await client.secrets.put(self._uri(key), value)
        except BadInput as error:
            self.errors = field_errors(error)
            return None if self.errors else self.handle(error)
        except GliaError as error:
            return self.handle(error)
        self.notice = f"{'Added' if created else 'Replaced'} {secret.key}"
        return await self._load()

    @rx.event
    async def add_text(self, form: dict[str, Any]) -> Any:
        """The form's key and typed value (the value is not kept)."""
        key = str(form.get("key") or "").strip()
        return await self._put(key, str(form.get("value") or "").encode())

    @rx.event
    async def add_file(self, files: list[rx.UploadFile]) -> Any:
        """The chosen file's bytes under the key typed in the form."""
        if not files:
            self.errors = {"value": "choose a file first"}
            return None
        value = await files[0].read(MAX_VALUE_BYTES + 1)
        result = await self._put(self.key, value)
        return [rx.clear_selected_files(UPLOAD_ID), *([result] if result is not None else [])]

    @rx.event
    async def delete(self, uri: str) -> Any:
        self.notice = ""
        try:
            async with self.client() as client:
                await client.secrets.delete(uri)
        except GliaError as error:
            return self.handle(error)
        return await self._load()


def _add_form() -> rx.Component:
    errors = SecretsState.errors
    return rx.form(
        rx.vstack(
            narrow(
                field(
                    "Key",
                    rx.input(name="key", id="secret-key", on_change=SecretsState.set_key),
                    errors["key"],
                    hint="Letters, digits, '_', '.' and '-'",
                )
            ),
            field(
                "Value",
                rx.text_area(name="value", id="secret-value", rows="3"),
                errors["value"],
                hint="Never shown again, here or anywhere",
            ),
            rx.hstack(
                rx.button("Add secret", type="submit"),
                rx.text("or", size="2"),
                rx.upload(
                    rx.button("Choose a file", variant="soft", size="1", type="button"),
                    rx.text(rx.selected_files(UPLOAD_ID).join(", "), size="1"),
                    id=UPLOAD_ID,
                    multiple=False,
                    max_size=MAX_VALUE_BYTES,
                    border="1px dashed var(--gray-7)",
                    padding="0.5em",
                ),
                rx.button(
                    "Add from file",
                    type="button",
                    variant="soft",
                    on_click=SecretsState.add_file(rx.upload_files(upload_id=UPLOAD_ID)),
                ),
                align="center",
                wrap="wrap",
            ),
            spacing="2",
            width="100%",
            max_width="640px",
        ),
        on_submit=SecretsState.add_text,
        reset_on_submit=True,
        id="secret-form",
    )


def _secret_row(secret: Any) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.code(secret["key"])),
        rx.table.cell(relative_time(secret["updated"])),
        rx.table.cell(secret["by"]),
        rx.table.cell(
            confirm_button(
                "Delete",
                "Delete secret " + secret["key"] + "?",
                "Jobs that use it will not start any more.",
                SecretsState.delete(secret["uri"]),
            )
        ),
        custom_attrs={"data-key": secret["key"]},
    )


def secrets() -> rx.Component:
    return page(
        "Secrets",
        rx.vstack(
            rx.text(
                "Secrets of the project ",
                rx.code(SecretsState.where),
                ": values its jobs use, kept encrypted. Its readers see the keys, its writers "
                "add and delete them; nobody sees a value again (glia secret add|ls|rm).",
                size="2",
                color_scheme="gray",
            ),
            _add_form(),
            rx.cond(
                SecretsState.notice != "",
                rx.text(SecretsState.notice, size="2", color_scheme="green", role="status"),
            ),
            table(
                ("Key", "Updated", "By", ""),
                rx.table.body(rx.foreach(SecretsState.secrets, _secret_row)),
                id="secrets",
            ),
            spacing="3",
            width="100%",
        ),
        on_switch=SecretsState.reload,
    )
