"""The runtime's GPU inventory and assignment (`cluster_gateway.runtimes.gpus`)."""

from __future__ import annotations

import pytest

from cluster_gateway.runtimes.gpus import (
    Gpu,
    Holding,
    detect_nvidia,
    free_resources,
    parse_inventory,
    take,
    visible_env,
)
from glia.clusters import Resources
from glia.errors import Conflict


def test_inventory_from_configuration() -> None:
    assert parse_inventory("2xA100") == (Gpu("0", "A100"), Gpu("1", "A100"))
    assert parse_inventory("3") == tuple(Gpu(str(i), None) for i in range(3))
    assert parse_inventory("0") == ()
    with pytest.raises(ValueError, match="COUNTxMODEL"):
        parse_inventory("many")


def test_gpus_are_taken_exclusively_lowest_first() -> None:
    inventory = parse_inventory("3xT4")
    holdings = {"a": Holding(Resources(cpu=1, memory_mb=1), take(inventory, {}, "a", 2))}
    assert holdings["a"].gpus == ("0", "1")
    assert take(inventory, holdings, "b", 1) == ("2",)
    with pytest.raises(Conflict, match="needs 2 GPUs; 1 of 3 are free"):
        take(inventory, holdings, "b", 2)
    free = free_resources(Resources(cpu=4, memory_mb=100, gpu=3), holdings.values())
    assert free == Resources(cpu=3, memory_mb=99, gpu=1)


def test_visible_devices() -> None:
    inventory = parse_inventory("2")
    assert visible_env(inventory, ("1",)) == {
        "CUDA_VISIBLE_DEVICES": "1",
        "NVIDIA_VISIBLE_DEVICES": "1",
    }
    # A job that asked for none sees none; a host without GPUs sets nothing.
    assert visible_env(inventory, ()) == {
        "CUDA_VISIBLE_DEVICES": "",
        "NVIDIA_VISIBLE_DEVICES": "void",
    }
    assert visible_env((), ()) == {}


def test_nvml_absent_or_failing_means_no_gpus() -> None:
    assert isinstance(detect_nvidia(), tuple)  # no driver here: (), never an exception
