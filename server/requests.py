"""What every request of the app carries: its id, and the platform that serves it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from starlette.types import Scope

from control_plane.platform import Platform


@dataclass
class Running:
    """The platform of a started app; None before the lifespan starts and after it ends."""

    platform: Platform | None = None

    def get(self) -> Platform:
        if self.platform is None:
            raise RuntimeError("the platform is not running")
        return self.platform


def request_id(scope: Scope) -> str:
    """The request's id: the client's ``X-Request-ID`` (up to 64 characters) or a new one."""
    if "glia.request_id" not in scope:
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id" and 0 < len(value) <= 64:
                scope["glia.request_id"] = value.decode("latin-1")
                break
        else:
            scope["glia.request_id"] = uuid.uuid4().hex
    found: str = scope["glia.request_id"]
    return found
