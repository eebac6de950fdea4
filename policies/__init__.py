"""Casbin model files shipped with Glia."""

from __future__ import annotations

from pathlib import Path

MODEL_PATH: Path = Path(__file__).parent / "model.conf"

__all__ = ["MODEL_PATH"]
