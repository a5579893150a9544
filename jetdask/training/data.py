"""Batches of model inputs from the preprocessing tensors (``RUN/tensors/<split>/``).

:class:`SplitData` opens one split (memory-mapped, or loaded into memory) and turns its
layout tensors (written by the preprocessing with ``layout:`` through the *inference* layout,
:mod:`jetdask.preprocessing.layout_tensors`: raw values and valid masks per input) into the
model's inputs with the run's scaler (``RUN/scaler.json``) applied by the inference code
(:meth:`jetdask.inference.Scaler.apply`): missing entries take the scaler default, exactly as
in the inference pass. For every input a boolean ``distortable`` mask (valid entry,
non-integer feature, input that allows distortions) travels with the batch for the
adversarial attacks.

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

    def __init__(self, run_dir: str, split: str, layout=None, inference_scaler: dict | None = None, *,
                 in_memory: bool = True, limit: int | None = None, seed: int = 0):
        from ..inference.layouts import get_layout
        from ..inference.registry import Scaler
        from ..preprocessing import layout_tensors
        self.run_dir, self.split = run_dir, split
        d = os.path.join(run_dir, "tensors", split)
        cj = os.path.join(d, "columns.json")
        if not os.path.exists(cj):
            raise ConfigError(f"{cj} not found: not a finished preprocessing run (or no {split!r} split)",
                              "preprocessed")
        with open(cj) as f:
            self.meta = json.load(f)
        if not self.meta.get("layout"):
            raise ConfigError(f"{run_dir} holds flat feature columns; taggers train on layout tensors: preprocess "
                              "with 'layout: NAME' (deepjet, deepcsv, part, pn) in the preprocessing YAML",
                              "data.preprocessed")
        self.layout_name = self.meta["layout"]
        self.layout = get_layout(self.layout_name)
        if layout is not None and not same_inputs(get_layout(layout), self.layout):
            want = getattr(get_layout(layout), "name", layout)
            raise ConfigError(f"the model reads layout {want!r}, {run_dir} was preprocessed with "
                              f"{self.layout_name!r} (other inputs)", "model.name")
        self.classes = tuple(self.meta["classes"])
        t = layout_tensors.load_split(d, mmap=True)
        self.rows = subset_rows(int(self.meta["n"]), limit, seed)
        self.label = np.asarray(t["label"])[self.rows]
        self.weight = np.asarray(t["weight"]).astype(np.float32)[self.rows]
        self.ids = t["ids"]
        self._raw, self._valid = t["inputs"], t["valid"]
        self.scaler = inference_scaler or load_run_scaler(run_dir)
        self._scaler = Scaler.load(self.scaler)
        self.specs = self.layout.specs
        self._cached = None
        if in_memory:
            self._cached = self.arrays(np.arange(len(self.rows)))

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def names(self) -> list:
        return [s.name for s in self.specs]

    def converted(self, pos: np.ndarray):
        """The layout's :class:`~jetdask.inference.layouts.Converted` (raw values, valid masks) of ``pos``."""
        from ..inference.layouts import Converted
        rows = self.rows[pos]
        order = np.argsort(rows, kind="stable")        # sorted reads from the memory map
        inv = np.empty_like(order)
        inv[order] = np.arange(len(order))
        srt = rows[order]
        arrays = {k: np.asarray(v[srt])[inv] for k, v in self._raw.items()}
        valid = {k: np.asarray(v[srt])[inv] for k, v in self._valid.items()}
        return Converted(self.specs, arrays, valid, len(rows))

    def arrays(self, pos: np.ndarray) -> tuple[dict, dict]:
        """(inputs, distortable masks) as numpy, for positions ``pos`` into this split's rows.

        The inputs are ``Scaler.apply(converted)``: the scaling code of the inference pass."""
        if self._cached is not None:
            x, m = self._cached
            return {k: v[pos] for k, v in x.items()}, {k: None if v is None else v[pos] for k, v in m.items()}
        conv = self.converted(pos)
        inputs = self._scaler.apply(conv) if self._scaler is not None else dict(conv.arrays)
        masks = {s.name: (conv.valid[s.name] & ~s.integer_mask()) if s.distort else None for s in self.specs}
        return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in inputs.items()}, masks


def same_inputs(a, b) -> bool:
    """Whether two layouts give the same model arguments (names, in order; sizes are the model's kwargs)."""
    return [s.name for s in a.specs] == [s.name for s in b.specs]


def load_run_scaler(run_dir: str) -> dict:
    """The inference scaler (``scaler.json``) of a layout preprocessing run."""
    path = os.path.join(run_dir, "scaler.json")
    try:
        with open(path) as f:
            sc = json.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path} not found (is this a preprocessing run directory?)", "data.preprocessed") from None
    if "inputs" not in sc:
        raise ConfigError(f"{path} is a per-column scaler of a flat-feature run; preprocess with 'layout: NAME'",
                          "data.preprocessed")
    return sc


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
