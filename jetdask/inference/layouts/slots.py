"""Slot layouts: inputs read from fixed per-jet branches (the PFNano DeepJet / DeepCSV tables).

Which entries are missing (``valid`` False, replaced by the scaler's default) is part of the
layout, so preprocessing, training and inference agree on it:

* non-finite values, NanoAOD's ``-999`` and ``|x| > abs_max`` (uninitialised memory);
* empty slots: slot ``i`` of an input with ``count`` is missing where ``i >= jet[count]``;
* per-feature counts (``feature_counts``): a flat feature ``"DeepCSV_trackSip2dSig_3"``
  tied to ``("DeepCSV_trackSip2dSig_3", "DeepCSV_jetNSelectedTracks", 3)`` is missing where
  ``3 >= jetNSelectedTracks`` (in real PFNano those entries hold garbage up to +-8e10);
* extra per-feature sentinels (``sentinels``: ``((feature, (value, ...)), ...)``).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .access import Records
from .specs import ABS_MAX, SENTINEL, Converted, InputSpec, Layout


@dataclasses.dataclass(frozen=True)
class SlotInput:
    """An input made of per-jet branches: ``pattern.format(feature=..., slot=...)`` per value."""
    spec: InputSpec
    pattern: str = "{feature}"
    count: str | None = None        # field with the number of filled slots
    feature_counts: tuple = ()      # ((feature, count field, index), ...): missing where index >= count
    sentinels: tuple = ()           # ((feature, (value, ...)), ...): extra "missing" values

    def count_fields(self) -> set:
        return ({self.count} if self.count else set()) | {c for _, c, _ in self.feature_counts}


@dataclasses.dataclass(frozen=True)
class SlotLayout(Layout):
    """Inputs from fixed per-jet branches (see the module docstring)."""
    name: str
    inputs: tuple
    jets: str = "Jet"
    abs_max: float | None = ABS_MAX

    @property
    def specs(self) -> tuple:
        return tuple(i.spec for i in self.inputs)

    @property
    def columns(self) -> list:
        out = []
        for inp in self.inputs:
            names = {inp.pattern.format(feature=f, slot=s)
                     for f in inp.spec.features for s in range(inp.spec.slots or 1)}
            names |= inp.count_fields()
            out += sorted(f"{self.jets}_{n}" for n in names)
        return sorted(set(out))

    def missing(self) -> list:
        out = [f"non-finite, {SENTINEL:g}" + (f", |x| > {self.abs_max:g}" if self.abs_max else "")]
        for inp in self.inputs:
            if inp.count:
                out.append(f"{inp.spec.name}: slot i >= {inp.count}")
            for feat, cnt, i in inp.feature_counts:
                out.append(f"{inp.spec.name}.{feat}: {i} >= {cnt}")
            for feat, vals in inp.sentinels:
                out.append(f"{inp.spec.name}.{feat} in {list(vals)}")
        return out

    def convert(self, jets: Records) -> Converted:
        n = len(jets)
        arrays, valid = {}, {}
        for inp in self.inputs:
            spec = inp.spec
            f, s = len(spec.features), spec.slots or 1
            x = np.empty((n, s, f), dtype=np.float32)
            for k in range(s):                      # one strided column write per branch
                for j, feat in enumerate(spec.features):
                    x[:, k, j] = jets.field(inp.pattern.format(feature=feat, slot=k))
            ok = np.isfinite(x)
            ok &= x != SENTINEL
            if self.abs_max:
                with np.errstate(invalid="ignore"):
                    ok &= np.abs(x) <= self.abs_max
            if inp.count:
                filled = np.arange(s)[None, :] < jets.field(inp.count).astype(np.int64)[:, None]
                ok &= filled[:, :, None]
            for feat, cnt, i in inp.feature_counts:
                j = spec.features.index(feat)
                ok[:, :, j] &= (i < jets.field(cnt).astype(np.int64))[:, None]
            for feat, vals in inp.sentinels:
                j = spec.features.index(feat)
                for v in vals:
                    ok[:, :, j] &= x[:, :, j] != np.float32(v)
            if not spec.slots:
                x, ok = x.reshape(n, f), ok.reshape(n, f)
            np.copyto(x, 0.0, where=~ok)
            arrays[spec.name], valid[spec.name] = x, ok
        return Converted(self.specs, arrays, valid, n)
