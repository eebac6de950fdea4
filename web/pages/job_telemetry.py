"""The telemetry part of a job's page: CPU and memory charted live (the last few minutes of
samples, followed through `jobTelemetry`) and over the job's life (`jobTelemetryHistory`,
read again every minute while the page follows the job)."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import reflex as rx

from sdk import GliaError, TelemetryPoint, TelemetrySample
from web.session import SessionState, follow_while_open

# Live samples kept for the chart (about one a second: the last few minutes).
LIVE_SAMPLES = 300
# The life chart is read again this often while the job is followed.
HISTORY_REFRESH_S = 60.0
MIB = 1024 * 1024


def _live_point(sample: TelemetrySample) -> dict[str, Any]:
    return {
        "t": sample.time.strftime("%H:%M:%S"),
        "cpu": round(sample.cpu_percent, 1),
        "memory": round(sample.memory_bytes / MIB, 1),
    }


def _life_point(point: TelemetryPoint) -> dict[str, Any]:
    return {
        "t": point.time.strftime("%m-%d %H:%M:%S"),
        "cpu": round(point.cpu_percent, 1),
        "memory": round(point.memory_bytes / MIB, 1),
    }


class JobTelemetryState(SessionState):
    live: list[dict[str, Any]] = []
    life: list[dict[str, Any]] = []
    life_step: int = 0
    now_cpu: str = "-"
    now_memory: str = "-"
    following_telemetry: bool = False
    telemetry_watcher: int = 0

    @rx.var
    def telemetry_job(self) -> str:
        """The job of the page's URL (/jobs/<id>)."""
        return self.router.url.path.rstrip("/").rsplit("/", 1)[-1]

    @rx.event
    async def start(self) -> Any:
        """Show this job's history and follow its samples (what another job showed goes)."""
        self.telemetry_watcher += 1
        self.live, self.life, self.life_step = [], [], 0
        self.now_cpu, self.now_memory = "-", "-"
        await self._read_life()
        return JobTelemetryState.follow

    async def _read_life(self) -> None:
        history = await self._life_of(self.telemetry_job)
        if history is not None:
            self.life, self.life_step = history

    async def _life_of(self, job_id: str) -> tuple[list[dict[str, Any]], int] | None:
        """The job's life chart's points and step; None when it cannot be read (the job's
        own part of the page says why)."""
        try:
            async with self.client() as client:
                history = await client.telemetry.history(job_id)
        except GliaError:
            return None
        return [_life_point(point) for point in history.points], history.step_seconds

    @rx.event(background=True)
    async def follow(self) -> None:
        async with self:
            me, job_id = self.telemetry_watcher, self.telemetry_job
            self.following_telemetry = True
        read_at = time.monotonic()

        async def still_open() -> bool:
            async with self:
                return self.telemetry_watcher == me

        async def show_life() -> None:
            life = await self._life_of(job_id)  # read without holding the state
            async with self:
                if life is not None and self.telemetry_watcher == me:
                    self.life, self.life_step = life

        async def show(sample: TelemetrySample) -> None:
            nonlocal read_at
            async with self:
                self.live = [*self.live[-(LIVE_SAMPLES - 1) :], _live_point(sample)]
                self.now_cpu = f"{sample.cpu_percent:.1f}%"
                self.now_memory = f"{sample.memory_bytes / MIB:.1f} MiB"
            if time.monotonic() - read_at >= HISTORY_REFRESH_S:
                read_at = time.monotonic()
                await show_life()

        try:
            with contextlib.suppress(GliaError):
                async with self.client() as client:
                    await follow_while_open(
                        aiter(client.telemetry.follow(job_id)), still_open=still_open, on_item=show
                    )
        finally:
            async with self:
                if self.telemetry_watcher == me:
                    self.following_telemetry = False
            await show_life()  # what the job's end left


def _chart(data: Any, key: str, name: str, unit: str, color: str, chart_id: str) -> rx.Component:
    return rx.box(
        rx.text(name, size="2", weight="medium"),
        rx.recharts.line_chart(
            rx.recharts.line(
                data_key=key,
                stroke=color,
                dot=False,
                is_animation_active=False,
                type_="monotone",
                name=name,
            ),
            rx.recharts.x_axis(data_key="t", min_tick_gap=40),
            rx.recharts.y_axis(unit=unit, width=70),
            rx.recharts.cartesian_grid(stroke_dasharray="3 3"),
            rx.recharts.graphing_tooltip(),
            data=data,
            height=180,
            width="100%",
        ),
        id=chart_id,
        width="100%",
        min_width="280px",
        flex="1",
    )


def telemetry_section() -> rx.Component:
    """CPU and memory, live and over the job's life."""
    state = JobTelemetryState
    return rx.vstack(
        rx.flex(
            rx.heading("Resources", size="4"),
            rx.cond(
                state.following_telemetry,
                rx.badge("live", color_scheme="green", variant="soft"),
            ),
            rx.text("CPU ", rx.code(state.now_cpu, id="telemetry-cpu"), size="2"),
            rx.text("Memory ", rx.code(state.now_memory, id="telemetry-memory"), size="2"),
            gap="16px",
            align="center",
            wrap="wrap",
        ),
        rx.cond(
            state.live.length() > 0,
            rx.flex(
                _chart(state.live, "cpu", "CPU (live)", "%", "var(--blue-9)", "telemetry-live-cpu"),
                _chart(
                    state.live,
                    "memory",
                    "Memory (live)",
                    " MiB",
                    "var(--green-9)",
                    "telemetry-live-memory",
                ),
                gap="4",
                wrap="wrap",
                width="100%",
            ),
        ),
        rx.cond(
            state.life.length() > 0,
            rx.flex(
                _chart(
                    state.life, "cpu", "CPU (its life)", "%", "var(--blue-9)", "telemetry-cpu-life"
                ),
                _chart(
                    state.life,
                    "memory",
                    "Memory (its life)",
                    " MiB",
                    "var(--green-9)",
                    "telemetry-memory-life",
                ),
                gap="4",
                wrap="wrap",
                width="100%",
            ),
            rx.text(
                "No samples yet: a job is sampled while it runs.", size="1", color_scheme="gray"
            ),
        ),
        spacing="2",
        width="100%",
        margin_top="20px",
        id="job-telemetry",
    )
