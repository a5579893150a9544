"""Input standardisation: the :class:`Scaler` of a tagger and :func:`fit_scaler`.

Scaler (JSON file or dict), per input name, per feature (feature axis of the input)::

    {"inputs": {"cpf": {"mean": [...], "std": [...], "default": [...] or 0.0}, ...}}

Valid entries become ``(x - mean) / std``; invalid ones (padding, empty slots, -999,
non-finite) become ``default`` (0 when absent). Inputs not listed are left as converted.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np

from .layouts import Converted


@dataclasses.dataclass(frozen=True)
class Scaler:
    """Per-input, per-feature standardisation and defaults (see the module docstring)."""
    inputs: tuple   # ((name, mean, std, default), ...), arrays as tuples of floats

    @classmethod
    def from_dict(cls, d: dict) -> "Scaler":
        """A scaler from the ``scaler.json`` form: ``{"inputs": {name: {"mean", "std", "default"}}}``."""
        d = d.get("inputs", d)
        rows = []
        for name, p in d.items():
            mean = tuple(float(x) for x in np.atleast_1d(p.get("mean", 0.0)))
            std = tuple(float(x) for x in np.atleast_1d(p.get("std", 1.0)))
            default = tuple(float(x) for x in np.atleast_1d(p.get("default", 0.0)))
            rows.append((name, mean, std, default))
        return cls(tuple(rows))

    @classmethod
    def load(cls, source) -> "Scaler | None":
        """A scaler from a ``scaler.json`` path, its dict, or a scaler (``None`` stays ``None``)."""
        if source is None or isinstance(source, Scaler):
            return source
        if isinstance(source, dict):
            return cls.from_dict(source)
        with open(source) as f:
            return cls.from_dict(json.load(f))

    def to_dict(self) -> dict:
        """The ``scaler.json`` form (:meth:`from_dict` reads it back)."""
        return {"inputs": {n: {"mean": list(m), "std": list(s), "default": list(d)}
                           for n, m, s, d in self.inputs}}

    def apply(self, conv: Converted) -> dict:
        """Scaled copies of the inputs it lists; the other arrays are returned as they are."""
        out = dict(conv.arrays)
        specs = {s.name: s for s in conv.specs}
        for name, mean, std, default in self.inputs:
            if name not in specs:
                raise KeyError(f"scaler input {name!r} is not an input of the layout ({sorted(specs)})")
            spec = specs[name]
            for what, v in (("mean", mean), ("std", std), ("default", default)):
                if len(v) not in (1, len(spec.features)):
                    raise ValueError(f"scaler {what} of {name!r} has {len(v)} values for "
                                     f"{len(spec.features)} features")
            mean, std, default = (spec.per_feature(v) for v in (mean, std, default))
            std = np.where(std > 0, std, 1.0).astype(np.float32)
            with np.errstate(invalid="ignore", over="ignore"):
                x = (conv.arrays[name] - mean) / std
            out[name] = np.where(conv.valid[name], x, default).astype(np.float32)
        return out


def fit_scaler(conv: Converted, inputs=None, default: float = 0.0) -> dict:
    """A scaler dict from converted inputs: mean/std per feature over valid entries only."""
    out = {}
    for spec in conv.specs:
        if not spec.scale or (inputs is not None and spec.name not in inputs):
            continue
        x, ok = conv.arrays[spec.name], conv.valid[spec.name]
        ax = spec.feature_axis % x.ndim
        xm = np.moveaxis(x, ax, -1).reshape(-1, x.shape[ax]).astype(np.float64)
        om = np.moveaxis(ok, ax, -1).reshape(-1, x.shape[ax])
        n = np.maximum(om.sum(0), 1)
        mean = (xm * om).sum(0) / n
        var = (((xm - mean) ** 2) * om).sum(0) / n
        std = np.sqrt(var)
        out[spec.name] = {"mean": mean.tolist(), "std": np.where(std > 0, std, 1.0).tolist(),
                          "default": [default] * x.shape[ax]}
    return {"inputs": out}
