"""The inference scaler of a training run: read from the preprocessing run, written beside the checkpoints.

A layout preprocessing run (``layout:`` in its YAML) fits ``RUN/scaler.json`` directly in the
inference format (per input, per feature: exact pooled mean/std over the slots, default of
missing entries; see :mod:`jetdask.preprocessing.layout_tensors`), so nothing is converted.
"""
from __future__ import annotations

from ..atomicwrite import write_json
from .data import load_run_scaler

__all__ = ["load_run_scaler", "write_inference_scaler"]


def write_inference_scaler(path: str, scaler: dict) -> str:
    return write_json(path, scaler, indent=1)
