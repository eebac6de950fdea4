"""The JSON form in which a gateway's models and errors cross the network.

Both ends of a remote gateway (``server/`` and ``remote.py``) speak it. A model travels as its
own JSON dump (``model_dump(mode="json", by_alias=True)``) and is read back with its own
validation, so the kernel models stay the one definition of every field: a field added to
`WorkloadSpec` reaches a remote cluster without touching the subgraph. Secrets are the one
exception: a dump hides them (``**********``), so a spec's secret contents are written out
here, for the one hop from the control plane to its cluster, and nowhere else.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from cluster_gateway.gateway import WatchExpired, WorkloadSpec, WorkloadState
from glia.errors import ERRORS_BY_CODE, BadInput, GliaError
from glia.model import parse_input
from glia.monitoring import LogBatch
from glia.telemetry import TelemetrySample, TelemetryTick

# Errors a gateway raises beyond the API's own: read back by their code.
_ERRORS: dict[str, type[GliaError]] = {**ERRORS_BY_CODE, WatchExpired.code: WatchExpired}


def spec_to_wire(spec: WorkloadSpec) -> dict[str, Any]:
    wire: dict[str, Any] = spec.model_dump(mode="json", by_alias=True)
    wire["secretEnv"] = {name: value.get_secret_value() for name, value in spec.secret_env.items()}
    wire["secretFiles"] = [
        {
            "mountPath": item.mount_path,
            "content": base64.b64encode(item.content.get_secret_value()).decode(),
        }
        for item in spec.secret_files
    ]
    return wire


def spec_from_wire(wire: Any) -> WorkloadSpec:
    if not isinstance(wire, Mapping):
        raise BadInput("a workload spec is a JSON object")
    data = dict(wire)
    files = data.get("secretFiles") or []
    if not isinstance(files, list) or not all(isinstance(f, Mapping) for f in files):
        raise BadInput("secretFiles is a list of objects")
    try:
        data["secretFiles"] = [
            {**item, "content": base64.b64decode(str(item.get("content", "")), validate=True)}
            for item in files
        ]
    except ValueError:
        raise BadInput("a secret file's content is base64") from None
    return parse_input(WorkloadSpec, data)


def state_to_wire(state: WorkloadState) -> dict[str, Any]:
    wire: dict[str, Any] = state.model_dump(mode="json", by_alias=True)
    return wire


def state_from_wire(wire: Any) -> WorkloadState:
    return WorkloadState.model_validate(wire)


def batch_to_wire(batch: LogBatch) -> dict[str, Any]:
    wire: dict[str, Any] = batch.model_dump(mode="json", by_alias=True)
    return wire


def batch_from_wire(wire: Any) -> LogBatch:
    return LogBatch.model_validate(wire)


def tick_to_wire(tick: TelemetryTick) -> list[dict[str, Any]]:
    return [sample.model_dump(mode="json", by_alias=True) for sample in tick]


def tick_from_wire(wire: Any) -> TelemetryTick:
    return tuple(TelemetrySample.model_validate(sample) for sample in wire or ())


def error_to_wire(error: GliaError) -> dict[str, Any]:
    """``{"message", "code", "extensions"}``: a GraphQL error's shape, also a byte route's
    body; the top-level ``code`` is what the storage routes' client reads
    (``storage_wire.error_from_wire``), so one refusal (ClaimCheck's 401) serves both."""
    return {"message": error.message, "code": error.code, "extensions": error.extensions}


def error_from_wire(wire: Any) -> GliaError:
    """The error a gateway's answer describes (GraphQL's ``errors[0]``, a byte route's body);
    a plain `GliaError` (internal) for one it does not name."""
    if not isinstance(wire, Mapping):
        return GliaError("the gateway failed without saying why")
    message = str(wire.get("message") or "the gateway failed")
    extensions = wire.get("extensions")
    extensions = extensions if isinstance(extensions, Mapping) else {}
    cls = _ERRORS.get(str(extensions.get("code")), GliaError)
    return cls.from_extensions(message, extensions)
