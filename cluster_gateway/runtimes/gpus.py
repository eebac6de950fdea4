"""A runtime's GPUs: what the host has, and which of them each workload holds.

The local runtime finds NVIDIA GPUs through NVML (``nvidia-ml-py``, imported only here and
only when asked); a host without them, or where NVML fails, has none. An inventory given by
configuration (``GLIA_LOCAL_GPUS``: ``2xA100``, or a count) stands in for them, for tests and
for hosts whose GPUs NVML does not see. A workload's GPUs are its own until it ends: the
runtime passes their indices as CUDA_VISIBLE_DEVICES and NVIDIA_VISIBLE_DEVICES, and a
workload that asked for none gets none visible.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from glia.clusters import Resources
from glia.errors import Conflict

logger = logging.getLogger(__name__)

_INVENTORY = re.compile(r"\s*(\d+)\s*(?:[x×*]\s*(\S.*?))?\s*")


class Gpu(NamedTuple):
    device: str  # its index, as CUDA_VISIBLE_DEVICES names it
    model: str | None


def parse_inventory(text: str) -> tuple[Gpu, ...]:
    """``"2xA100"`` → two A100s, ``"3"`` → three GPUs of no model, ``"0"`` → none."""
    found = _INVENTORY.fullmatch(text)
    if found is None:
        raise ValueError(f"a GPU inventory is a count, or COUNTxMODEL (2xA100), not {text!r}")
    count, model = int(found.group(1)), found.group(2)
    return tuple(Gpu(str(i), model) for i in range(count))


def detect_nvidia() -> tuple[Gpu, ...]:
    """The host's NVIDIA GPUs through NVML; none where the library or the driver is absent."""
    try:
        # nvidia-ml-py: it loads libnvidia-ml, which hosts without GPUs lack.
        import pynvml  # type: ignore[import-untyped]
    except ImportError:
        return ()
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, _DriverNotLoaded, …
        logger.debug("no NVIDIA GPUs: %s", exc)
        return ()
    try:
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            name = pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(i))
            gpus.append(Gpu(str(i), name.decode() if isinstance(name, bytes) else str(name)))
        return tuple(gpus)
    except Exception:
        logger.exception("NVML failed to list the GPUs: the runtime uses none")
        return ()
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


def model_of(gpus: Iterable[Gpu]) -> str | None:
    """The GPUs' model (the first one's: a host has one kind as a rule)."""
    return next((gpu.model for gpu in gpus), None)


class Holding(NamedTuple):
    """What one workload holds until it ends."""

    resources: Resources
    gpus: tuple[str, ...] = ()


def take(
    inventory: tuple[Gpu, ...], holdings: Mapping[str, Holding], job_id: str, count: int
) -> tuple[str, ...]:
    """``count`` GPUs no workload holds, lowest index first; Conflict when fewer are free."""
    if count <= 0:
        return ()
    held = {index for holding in holdings.values() for index in holding.gpus}
    free = [gpu.device for gpu in inventory if gpu.device not in held]
    if len(free) < count:
        raise Conflict(
            f"workload {job_id} needs {count} GPUs; {len(free)} of {len(inventory)} are free"
        )
    return tuple(free[:count])


def visible_env(inventory: tuple[Gpu, ...], gpus: tuple[str, ...]) -> dict[str, str]:
    """The variables that show a workload its GPUs, and only them (none on a host without)."""
    if not inventory:
        return {}
    devices = ",".join(gpus)
    return {"CUDA_VISIBLE_DEVICES": devices, "NVIDIA_VISIBLE_DEVICES": devices or "void"}


def free_resources(total: Resources, holdings: Iterable[Holding]) -> Resources:
    """``total`` less what the holdings hold."""
    cpu, memory, gpu = total.cpu, total.memory_mb, total.gpu
    for holding in holdings:
        cpu -= holding.resources.cpu
        memory -= holding.resources.memory_mb
        gpu -= len(holding.gpus)
    return Resources(cpu=round(cpu, 6), memory_mb=memory, gpu=gpu)
