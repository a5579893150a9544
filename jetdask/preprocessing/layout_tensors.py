"""Training tensors written through an inference layout (``layout:`` in the preprocessing YAML).

With ``layout: deepjet`` (``deepcsv``, ``part``, ``pn`` or any registered layout) both passes
convert the kept jets of a chunk with ``layout.convert`` -- the very function the inference
pass runs -- so training sees the branches, slot counts, missing entries and integer features
that inference sees, and the scaler is fitted on exactly what inference scales.

**Pass 1** (:func:`chunk_table`): per scaled input and feature (``"cpf/ptrel"``), the moments of
the valid entries of the training jets, pooled over the slots / candidates (``n``, ``mean``,
``M2`` in float64, merged over chunks with Chan's formula by :mod:`.scale`), and their minimum /
maximum (training jets only: validation and test jets never shape the scaler or the defaults).

**Scaler** (:func:`build_scaler`, ``RUN/scaler.json``): the inference scaler format, per input
``{"features", "mean", "std", "default", "n", "sum", "m2", "min", "max", "placeholder",
"n_missing"}``. ``mean = sum / n`` and ``std = sqrt(M2 / n)`` are exact population statistics
of the pooled entries; a constant feature has ``std`` 0, which the scaler applies as 1 (the
entries become ``x - mean`` = 0). ``default`` (the scaled value of a missing entry) comes from
``defaults.placeholder``: ``auto`` puts it ``auto_margin`` standard deviations below the
smallest valid training value. ``scaling.exclude`` patterns match ``"input/feature"`` (mean 0, std 1).

**Pass 2** (:func:`shard_columns`): per input ``x__NAME`` (float32, the raw converted values,
0 where missing, flattened per jet) and ``v__NAME`` (``numpy.packbits`` of the valid mask).

**Tensors** (:func:`write_split`), ``RUN/tensors/SPLIT/``: ``NAME.npy`` (float32, the input's
shape, raw) and ``NAME.valid.npy`` (bool) per input, ``label.npy``, ``weight.npy``,
``ids.npy`` and ``columns.json`` (``layout``, ``inputs``, ``shapes``, ...). Training applies
the scaler to them with the inference code (:class:`jetdask.inference.Scaler`).
"""
from __future__ import annotations

import fnmatch
import json
import os

import numpy as np

from ..atomicwrite import write_json
from . import scale
from .split import SPLITS

ID_FIELDS = ("dataset", "run", "luminosityBlock", "event", "jet_idx", "entry")


def scaled_specs(layout) -> list:
    return [s for s in layout.specs if s.scale]


def moment_names(layout) -> list[str]:
    """``"input/feature"`` for every feature of every scaled input."""
    return [f"{s.name}/{f}" for s in scaled_specs(layout) for f in s.features]


def feature_columns(spec, x: np.ndarray) -> np.ndarray:
    """``x`` of shape ``(N, *spec.shape)`` as ``(N * slots, F)``: one column per feature, slots pooled."""
    if spec.slots is not None and spec.channels_first:
        x = np.moveaxis(x, 1, -1)
    return x.reshape(-1, len(spec.features))


def chunk_table(layout, conv, train_rows: np.ndarray) -> dict:
    """Moment table of one chunk (see the module docstring); ``train_rows``: bool per kept jet."""
    names, tv, tok = [], [], []
    for spec in scaled_specs(layout):
        x, ok = conv.arrays[spec.name], conv.valid[spec.name]
        xt, ot = feature_columns(spec, x[train_rows]), feature_columns(spec, ok[train_rows])
        for j, f in enumerate(spec.features):
            names.append(f"{spec.name}/{f}")
            tv.append(xt[:, j])
            tok.append(ot[:, j])
    return scale.chunk_moments(names, tv, tok)


def build_scaler(layout_name: str, layout, table: dict, dcfg: dict, exclude=()) -> dict:
    """The ``scaler.json`` dict (inference format plus the raw statistics) from merged moments."""
    pos = {v: i for i, v in enumerate(table["var"])}
    inputs = {}
    for spec in scaled_specs(layout):
        rows = [pos[f"{spec.name}/{f}"] for f in spec.features]
        n = np.asarray(table["n"], np.int64)[rows]
        mean = np.where(n > 0, np.asarray(table["mean"], np.float64)[rows], 0.0)
        m2 = np.asarray(table["m2"], np.float64)[rows]
        lo, hi = np.asarray(table["min"], np.float64)[rows], np.asarray(table["max"], np.float64)[rows]
        std = np.sqrt(np.where(n > 0, m2 / np.maximum(n, 1), 0.0))
        ex = np.array([any(fnmatch.fnmatchcase(f"{spec.name}/{f}", p) for p in exclude) for f in spec.features],
                      bool)
        smean, sstd = np.where(ex, 0.0, mean), np.where(ex, 1.0, std)
        eff = np.where(sstd > 0, sstd, 1.0)
        if dcfg["placeholder"] == "auto":
            ph = np.where(n > 0, lo - float(dcfg["auto_margin"]) * np.where(std > 0, std, 1.0),
                          float(dcfg["fallback_placeholder"]))
        else:
            ph = np.full(len(rows), float(dcfg["placeholder"]))
        inputs[spec.name] = {
            "features": list(spec.features), "mean": smean.tolist(), "std": sstd.tolist(),
            "default": ((ph - smean) / eff).tolist(), "placeholder": ph.tolist(), "n": n.tolist(),
            "sum": (mean * n).tolist(), "m2": m2.tolist(), "min": np.where(n > 0, lo, 0.0).tolist(),
            "max": np.where(n > 0, hi, 0.0).tolist(),
            "n_missing": np.asarray(table["n_defaulted"], np.int64)[rows].tolist()}
    return {"layout": layout_name, "inputs": inputs}


def shard_columns(conv) -> dict:
    """Pass-2 shard columns of the converted inputs (``x__NAME`` values, ``v__NAME`` packed valid bits)."""
    out = {}
    for spec in conv.specs:
        x, ok = conv.arrays[spec.name], conv.valid[spec.name]
        out[f"x__{spec.name}"] = np.ascontiguousarray(x.reshape(conv.n, -1), dtype=np.float32)
        out[f"v__{spec.name}"] = np.packbits(ok.reshape(conv.n, -1), axis=1)
    return out


def _fixed(tab, name, dtype) -> np.ndarray:
    col = tab.column(name).combine_chunks()
    if len(col) == 0:
        return np.zeros((0, 0), dtype)
    return np.asarray(col.flatten().to_numpy(zero_copy_only=False), dtype).reshape(len(col), -1)


def write_split(out_dir: str, files: list, layout_name: str, layout, classes, datasets) -> dict:
    """Tensors of one split from its ``(dataset, parquet path)`` list; returns ``{"dir", "n"}``."""
    import pyarrow.parquet as pq
    os.makedirs(out_dir, exist_ok=True)
    n = sum(pq.ParquetFile(f).metadata.num_rows for _, f in files)
    specs = layout.specs
    tmp, arrays = {}, {}
    for s in specs:
        for key, dt in ((s.name, np.float32), (f"{s.name}.valid", np.bool_)):
            tmp[key] = os.path.join(out_dir, f"{key}.npy.tmp")
            arrays[key] = np.lib.format.open_memmap(tmp[key], mode="w+", dtype=dt, shape=(n, *s.shape))
    lab, wgt = np.empty(n, np.int64), np.empty(n, np.float32)
    ids = np.empty((n, len(ID_FIELDS)), np.int64)
    i = 0
    for ds, path in files:
        tab = pq.read_table(path)
        m = tab.num_rows
        for s in specs:
            size = int(np.prod(s.shape))
            arrays[s.name][i:i + m] = _fixed(tab, f"x__{s.name}", np.float32).reshape(m, *s.shape)
            bits = _fixed(tab, f"v__{s.name}", np.uint8)
            arrays[f"{s.name}.valid"][i:i + m] = np.unpackbits(bits, axis=1, count=size).astype(bool).reshape(
                m, *s.shape)
        lab[i:i + m] = tab.column("label").to_numpy()
        wgt[i:i + m] = tab.column("weight").to_numpy()
        ids[i:i + m, 0] = list(datasets).index(ds)
        for k, name in enumerate(ID_FIELDS[1:], start=1):
            ids[i:i + m, k] = np.asarray(tab.column(name).to_numpy(), np.int64)
        i += m
    for arr in arrays.values():
        arr.flush()
    arrays.clear()
    for name, arr in (("label", lab), ("weight", wgt), ("ids", ids)):
        tmp[name] = os.path.join(out_dir, f"{name}.npy.tmp")
        with open(tmp[name], "wb") as fh:
            np.save(fh, arr)
    for key, p in tmp.items():
        os.replace(p, os.path.join(out_dir, f"{key}.npy"))
    meta = {"layout": layout_name, "inputs": [s.name for s in specs], "shapes": {s.name: list(s.shape) for s in specs},
            "classes": list(classes), "ids": list(ID_FIELDS), "datasets": list(datasets), "scaled": False, "n": int(n)}
    write_json(os.path.join(out_dir, "columns.json"), meta, indent=1)
    return {"dir": out_dir, "n": int(n)}


def write_tensors(run_dir: str, files_by_split: dict, prep: dict) -> dict:
    """``RUN/tensors/<split>/...`` for every split of a layout run."""
    from ..inference.layouts import get_layout
    cfg = prep["config"]
    name = prep["layout"]
    return {s: write_split(os.path.join(run_dir, "tensors", s), files_by_split.get(s, []), name, get_layout(name),
                           list(cfg["labels"]["classes"]), list(prep["datasets"])) for s in SPLITS}


def load_split(split_dir: str, mmap: bool = True) -> dict:
    """``{"columns": meta, "inputs": {name: array}, "valid": {name: bool array}, "label", "weight", "ids"}``."""
    with open(os.path.join(split_dir, "columns.json")) as f:
        meta = json.load(f)
    mode = "r" if mmap else None
    load = lambda k: np.load(os.path.join(split_dir, f"{k}.npy"), mmap_mode=mode)  # noqa: E731
    return {"columns": meta, "inputs": {k: load(k) for k in meta["inputs"]},
            "valid": {k: load(f"{k}.valid") for k in meta["inputs"]},
            "label": load("label"), "weight": load("weight"), "ids": load("ids")}
