"""The run-a-job form: every field of a submission, each error shown at its field; the job
runs in the project chosen in the header."""

from __future__ import annotations

import shlex
from typing import Any

import reflex as rx

from glia.volumes import SECRET_PREFIX, parse_volume
from sdk import BadInput, GliaError, parse_duration
from web.layout import field, page
from web.session import SessionState

# An error's API field (`env.0.name`, `lifeSpanSeconds`) → the form field it belongs to.
_FORM_FIELDS = {
    "command": "command",
    "preset": "preset",
    "env": "env",
    "workingDir": "working_dir",
    "volumes": "volumes",
    "secretEnv": "env",
    "name": "name",
    "tags": "tags",
    "lifeSpanSeconds": "life_span",
    "cluster": "preset",
    "org": "project",
    "project": "project",
}


class RunState(SessionState):
    presets: list[dict[str, str]] = []
    errors: dict[str, str] = {}

    @rx.event
    async def open(self) -> Any:
        redirect = await self.require_login()
        if redirect is not None:
            return redirect
        self.errors = {}
        return await self.switched()

    @rx.event
    async def switched(self) -> Any:
        """The chosen cluster's presets (again, after a switch in the header)."""
        try:
            async with self.client() as client:
                cluster = await client.clusters.get(self.cluster)
        except GliaError as error:
            return self.handle(error)
        self.presets = [
            {
                "name": p.name,
                "label": f"{p.name} — {p.resources.cpu:g} CPU, "
                f"{p.resources.memory_mb / 1024:g} GiB"
                + (f", {p.resources.gpu} GPU" if p.resources.gpu else ""),
            }
            for p in cluster.presets
        ]
        return None

    @rx.event
    async def submit(self, form: dict[str, Any]) -> Any:
        self.errors = {}
        try:
            submission = _submission(form)
        except ValueError as error:
            field_name, _, message = str(error).partition(": ")
            self.errors = {field_name: message}
            return None
        try:
            async with self.client() as client:
                job = await client.jobs.submit(
                    cluster=self.cluster or None,
                    org=self.org or None,
                    project=self.project or None,
                    **submission,
                )
        except BadInput as error:
            self.errors = _form_errors(error)
            if not self.errors:
                return self.handle(error)
            return None
        except GliaError as error:
            return self.handle(error)
        return rx.redirect(f"/jobs/{job.id}")


def _submission(form: dict[str, Any]) -> dict[str, Any]:
    """The form's text as the SDK's arguments; ValueError("field: message") for what the text
    itself gets wrong (the SDK and the server check the rest)."""
    try:
        command = shlex.split(str(form.get("command") or ""))
    except ValueError as error:
        raise ValueError(f"command: {error}") from None
    env: dict[str, str] = {}
    secret_env: dict[str, str] = {}
    for number, line in enumerate(str(form.get("env") or "").splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"env: line {number} is not NAME=value")
        if value.startswith(SECRET_PREFIX):
            secret_env[name.strip()] = value.removeprefix(SECRET_PREFIX)
        else:
            env[name.strip()] = value
    volumes = []
    for line in str(form.get("volumes") or "").splitlines():
        if line.strip():
            try:
                volumes.append(parse_volume(line.strip()))
            except BadInput as error:
                raise ValueError(f"volumes: {error.message}") from None
    life_span = str(form.get("life_span") or "").strip()
    try:
        life_span_s = parse_duration(life_span).total_seconds() if life_span else None
    except ValueError as error:
        raise ValueError(f"life_span: {error}") from None
    tags = [t.strip() for t in str(form.get("tags") or "").split(",") if t.strip()]
    return {
        "command": command,
        "preset": str(form.get("preset") or "") or None,
        "env": env,
        "secret_env": secret_env,
        "volumes": volumes,
        "working_dir": str(form.get("working_dir") or "").strip() or None,
        "name": str(form.get("name") or "").strip() or None,
        "tags": tags,
        "life_span_s": life_span_s,
    }


def _form_errors(error: BadInput) -> dict[str, str]:
    errors: dict[str, str] = {}
    for api_field, message in error.fields.items():
        form_field = _FORM_FIELDS.get(api_field.split(".")[0])
        if form_field is not None:
            errors.setdefault(form_field, message)
    return errors


def run() -> rx.Component:
    return page(
        "Run a job",
        rx.form(
            rx.vstack(
                rx.cond(
                    RunState.where,
                    rx.text(
                        "Runs in project ",
                        rx.code(RunState.where, id="current-project"),
                        size="2",
                        color_scheme="gray",
                    ),
                ),
                rx.cond(
                    RunState.errors["project"],
                    rx.text(RunState.errors["project"], color_scheme="red", size="1", role="alert"),
                ),
                field(
                    "Command",
                    rx.input(
                        name="command", placeholder="python train.py --epochs 3", id="command"
                    ),
                    RunState.errors["command"],
                    "Run without a shell; quote arguments as in a shell.",
                ),
                field(
                    "Preset",
                    rx.select.root(
                        rx.select.trigger(placeholder="The cluster's first preset"),
                        rx.select.content(
                            rx.foreach(
                                RunState.presets,
                                lambda p: rx.select.item(p["label"], value=p["name"]),
                            )
                        ),
                        name="preset",
                    ),
                    RunState.errors["preset"],
                ),
                field(
                    "Environment",
                    rx.text_area(name="env", placeholder="EPOCHS=3", rows="3", id="env"),
                    RunState.errors["env"],
                    "One NAME=value a line; NAME=secret:KEY takes the value of a secret.",
                ),
                field(
                    "Volumes",
                    rx.text_area(
                        name="volumes",
                        placeholder="storage:data:/var/data:ro\ndisk:scratch:/mnt/scratch",
                        rows="2",
                        id="volumes",
                    ),
                    RunState.errors["volumes"],
                    "One KIND:REF:PATH[:ro] a line: storage, disk or secret.",
                ),
                field(
                    "Working directory",
                    rx.input(name="working_dir", placeholder="/data/project", id="working_dir"),
                    RunState.errors["working_dir"],
                    "An absolute path; empty for a scratch directory of the job's own.",
                ),
                field("Name", rx.input(name="name", id="name"), RunState.errors["name"]),
                field(
                    "Tags",
                    rx.input(name="tags", placeholder="experiment, baseline", id="tags"),
                    RunState.errors["tags"],
                ),
                field(
                    "Life span",
                    rx.input(name="life_span", placeholder="2h", id="life_span"),
                    RunState.errors["life_span"],
                    "Stop it after this long (30s, 10m, 2h, 1d); empty for no limit.",
                ),
                rx.button("Run", type="submit"),
                spacing="3",
                max_width="640px",
            ),
            on_submit=RunState.submit,
            reset_on_submit=False,
        ),
        on_switch=RunState.switched,
    )
