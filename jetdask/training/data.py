"""Batches of model inputs from the preprocessing tensors (``RUN/tensors/<split>/``).

:class:`SplitData` opens one split (memory-mapped, or loaded into memory) and turns its
flat feature columns into the model's input tensors using the *inference* layout
(:mod:`jetdask.inference.layouts`), so the ordering is the one the inference pass builds:
for DeepJet ``glob (N,15)``, ``cpf (N,25,16)``, ``npf (N,25,6)``, ``sv (N,4,12)``. The
values are re-standardised from the preprocessing's per-column scaling to the per-feature
inference scaler of :mod:`.scaler`; defaulted entries take the scaler default. For every
input a boolean ``distortable`` mask (valid entry, non-integer feature, input that allows
distortions) travels with the batch for the adversarial attacks.

:class:`Loader` iterates over shuffled batches: one index permutation per epoch from
``numpy.random.default_rng([seed, epoch])`` (so a resumed run sees the same batches), each
batch a numpy gather (``in_memory``: a torch index into tensors built once). Per-jet weights
come from ``weight.npy``; ``resample=True`` instead draws the epoch's jets with probability
proportional to the weight (with replacement) and gives every jet weight 1.
"""
from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from ..errors import ConfigError
from . import scaler as scaler_mod


@dataclasses.dataclass
class Batch:
    inputs: list          # torch tensors, model argument order
    masks: list           # bool tensors (distortable entries) or None
    label: object         # int64 tensor (N,)
    weight: object        # float32 tensor (N,)

    def __len__(self) -> int:
        return int(self.label.shape[0])

    def to(self, device) -> "Batch":
        return Batch([x.to(device, non_blocking=True) for x in self.inputs],
                     [None if m is None else m.to(device, non_blocking=True) for m in self.masks],
                     self.label.to(device, non_blocking=True), self.weight.to(device, non_blocking=True))


def subset_rows(n: int, limit: int | None, seed: int) -> np.ndarray:
    """Sorted row indices: all rows, or a seeded random subset of ``limit`` rows."""
    if limit is None or limit >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng([seed, 7]).choice(n, size=int(limit), replace=False))


class SplitData:
    """One split of a preprocessing run as model inputs (see the module docstring)."""

    def __init__(self, run_dir: str, split: str, layout, inference_scaler: dict | None = None, *,
                 in_memory: bool = True, limit: int | None = None, seed: int = 0):
        from ..inference.layouts import get_layout
        self.run_dir, self.split = run_dir, split
        self.layout = get_layout(layout)
        d = os.path.join(run_dir, "tensors", split)
        cj = os.path.join(d, "columns.json")
        if not os.path.exists(cj):
            raise ConfigError(f"{cj} not found: not a finished preprocessing run (or no {split!r} split)",
                              "preprocessed")
        with open(cj) as f:
            self.meta = json.load(f)
        self.classes = tuple(self.meta["classes"])
        mode = None if in_memory else "r"
        self._features = np.load(os.path.join(d, "features.npy"), mmap_mode=mode)
        dp = os.path.join(d, "defaulted.npy")
        self._defaulted = np.load(dp, mmap_mode=mode) if os.path.exists(dp) else None
        self.rows = subset_rows(int(self.meta["n"]), limit, seed)
        self.label = np.load(os.path.join(d, "label.npy"))[self.rows]
        self.weight = np.load(os.path.join(d, "weight.npy")).astype(np.float32)[self.rows]
        self.ids = np.load(os.path.join(d, "ids.npy"), mmap_mode="r")
        prep = scaler_mod.load_prep_scaler(os.path.join(run_dir, "scaler.json"))
        self.scaler = inference_scaler or scaler_mod.feature_scaler(prep, self.layout)
        self.index = scaler_mod.column_index(self.layout, self.meta["features"])
        self.specs = self.layout.specs
        if not self.meta.get("scaled", False):      # raw values: x_prep = raw
            prep = {c: dict(v, mean=0.0, std=1.0) for c, v in prep.items()}
        self._prep = prep
        self._maps = scaler_mod.restandardise(prep, self.layout, self.scaler)
        if self._defaulted is None:                 # defaulted entries hold the column default exactly
            cols = self.meta["features"]
            key = "default" if self.meta.get("scaled", False) else "placeholder"
            self._column_default = np.array([prep[c].get(key, np.nan) for c in cols], np.float32)
        self._cached = None
        if in_memory:
            self._cached = self.arrays(np.arange(len(self.rows)))

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def names(self) -> list:
        return [s.name for s in self.specs]

    def arrays(self, pos: np.ndarray) -> tuple[dict, dict]:
        """(inputs, distortable masks) as numpy, for positions ``pos`` into this split's rows."""
        if self._cached is not None:
            x, m = self._cached
            return {k: v[pos] for k, v in x.items()}, {k: None if v is None else v[pos] for k, v in m.items()}
        rows = self.rows[pos]
        order = np.argsort(rows, kind="stable")        # sorted reads from the memory map
        inv = np.empty_like(order)
        inv[order] = np.arange(len(order))
        feats = np.asarray(self._features[rows[order]])[inv]
        if self._defaulted is not None:
            dflt = np.asarray(self._defaulted[rows[order]])[inv]
        else:
            dflt = feats == self._column_default[None, :]
        inputs, masks = {}, {}
        for spec in self.specs:
            idx = self.index[spec.name]
            x = feats[:, idx]
            bad = dflt[:, idx]
            if spec.name in self._maps:
                a, b, d = self._maps[spec.name]
                x = np.where(bad, d, a * x + b).astype(np.float32)
            else:
                x = np.where(bad, 0.0, x).astype(np.float32)
            inputs[spec.name] = x
            masks[spec.name] = (~bad & ~spec.integer_mask()) if spec.distort else None
        return inputs, masks


class Loader:
    """Shuffled (or ordered) batches of a :class:`SplitData` (see the module docstring)."""

    def __init__(self, data: SplitData, batch_size: int, *, shuffle: bool = True, seed: int = 0,
                 resample: bool = False, drop_last: bool = False):
        if batch_size < 1:
            raise ConfigError(f"must be >= 1, got {batch_size}", "training.batch_size")
        self.data, self.batch_size, self.shuffle, self.seed = data, int(batch_size), shuffle, seed
        self.resample, self.drop_last = resample, drop_last
        self.epoch = 0
        self._tensors = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def order(self) -> np.ndarray:
        n = len(self.data)
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.resample:
            w = np.clip(self.data.weight.astype(np.float64), 0, None)
            return rng.choice(n, size=n, replace=True, p=w / w.sum())
        return rng.permutation(n) if self.shuffle else np.arange(n)

    def __len__(self) -> int:
        n = len(self.data)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _torch_cache(self):
        import torch
        if self._tensors is None and self.data._cached is not None:
            x, m = self.data._cached
            self._tensors = ({k: torch.from_numpy(v) for k, v in x.items()},
                             {k: None if v is None else torch.from_numpy(v) for k, v in m.items()})
        return self._tensors

    def __iter__(self):
        import torch
        order = self.order()
        label = torch.from_numpy(self.data.label)
        weight = torch.from_numpy(np.ones(len(self.data), np.float32) if self.resample else self.data.weight)
        cache = self._torch_cache()
        names = self.data.names
        stop = len(order) - (len(order) % self.batch_size if self.drop_last else 0)
        for i in range(0, stop, self.batch_size):
            pos = order[i:i + self.batch_size]
            if cache is not None:
                t = torch.from_numpy(pos)
                xs = [cache[0][n].index_select(0, t) for n in names]
                ms = [None if cache[1][n] is None else cache[1][n].index_select(0, t) for n in names]
            else:
                x, m = self.data.arrays(pos)
                xs = [torch.from_numpy(x[n]) for n in names]
                ms = [None if m[n] is None else torch.from_numpy(m[n]) for n in names]
            t = torch.from_numpy(pos)
            yield Batch(xs, ms, label.index_select(0, t), weight.index_select(0, t))
