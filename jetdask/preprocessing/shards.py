"""Training shards: the parquet written by the workers, and the memory-mappable tensors built from them.

**Parquet shards** (pass 2, one file per chunk and split, written by the engine from
``Result.arrays``): ``RUN/pass2-shards/arrays/<split>/<dataset>/<chunk id>.parquet`` with one row
per kept jet and the columns

* every feature (float32, placeholder where defaulted) and ``defaulted_bits`` (uint8 bitmask of
  the defaulted entries, features in column order: :func:`jetdask.preprocessing.defaults.unpack_mask`);
* ``label`` (int16 class index), ``flavour`` (int32 fine code), ``weight`` (float64),
  ``split`` (int8: 0 train, 1 validation, 2 test), ``run``, ``luminosityBlock``, ``event``,
  ``jet_idx`` (index of the jet in its event's collection), ``entry`` (tree entry of the event).

**Tensors** (client side, :func:`write_tensors`), per split in ``RUN/tensors/<split>/``:

=================  ==========================================================================
``features.npy``   float32 ``(N, F)``, columns in ``columns.json["features"]`` order; scaled with
                   ``scaler.json`` when ``outputs.scale_tensors`` (defaulted entries = ``default``)
``defaulted.npy``  bool ``(N, F)`` (``outputs.defaulted_mask``)
``label.npy``      int64 ``(N,)`` class index (``columns.json["classes"]``)
``weight.npy``     float32 ``(N,)``
``ids.npy``        int64 ``(N, 6)``: dataset index, run, luminosityBlock, event, jet_idx, entry
``columns.json``   features, classes, ids, datasets, scaled, n
=================  ==========================================================================

Rows are the shards concatenated in the canonical order (datasets sorted, then file and entry
range), so the tensors of a run do not depend on its chunk size nor on how it was resumed.
Everything is written under temporary names and renamed at the end; ``np.load(path,
mmap_mode="r")`` memory-maps each array.
"""
from __future__ import annotations

import json
import os

import numpy as np

from ..atomicwrite import write_json
from . import defaults, scale
from .split import SPLITS

ID_FIELDS = ("dataset", "run", "luminosityBlock", "event", "jet_idx", "entry")
BITS = "defaulted_bits"


def _num_rows(path: str) -> int:
    import pyarrow.parquet as pq
    return pq.ParquetFile(path).metadata.num_rows


def read_shards(files, columns=None):
    """Concatenate parquet shards (paths) into one ``pyarrow.Table`` (``columns``: subset)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    tabs = [pq.read_table(f, columns=columns) for f in files]
    return pa.concat_tables(tabs) if tabs else None


def read_mask(tab, n_features: int) -> np.ndarray:
    """``(N, F)`` defaulted booleans from a shard table's ``defaulted_bits`` column."""
    col = tab.column(BITS).combine_chunks()
    bits = col.flatten().to_numpy().reshape(len(col), -1) if len(col) else np.zeros((0, 0), np.uint8)
    return defaults.unpack_mask(bits, n_features)


def _column(tab, name, dtype) -> np.ndarray:
    return np.asarray(tab.column(name).to_numpy(), dtype=dtype)


def write_split(out_dir: str, files: list[tuple[str, str]], features: list[str], classes: list[str],
                datasets: list[str], scaler: dict | None, scale_features: bool, with_mask: bool) -> dict:
    """Tensors of one split from its ``(dataset, parquet path)`` list; returns ``{"dir", "n"}``."""
    import pyarrow.parquet as pq
    os.makedirs(out_dir, exist_ok=True)
    n = sum(_num_rows(f) for _, f in files)
    nf = len(features)
    if scale_features:
        mean, std, default = scale.scaler_arrays(scaler, features)
    tmp = {k: os.path.join(out_dir, f"{k}.npy.tmp") for k in ("features", "defaulted", "label", "weight", "ids")}
    feats = np.lib.format.open_memmap(tmp["features"], mode="w+", dtype=np.float32, shape=(n, nf))
    mask = (np.lib.format.open_memmap(tmp["defaulted"], mode="w+", dtype=np.bool_, shape=(n, nf))
            if with_mask else None)
    lab = np.empty(n, np.int64)
    wgt = np.empty(n, np.float32)
    ids = np.empty((n, len(ID_FIELDS)), np.int64)
    i = 0
    for ds, path in files:
        tab = pq.read_table(path)
        m = tab.num_rows
        x = np.empty((m, nf), np.float32)
        for j, f in enumerate(features):
            x[:, j] = tab.column(f).to_numpy()
        d = read_mask(tab, nf)
        if scale_features:
            x = scale.apply(x, d, mean, std, default)
        feats[i:i + m] = x
        if mask is not None:
            mask[i:i + m] = d
        lab[i:i + m] = _column(tab, "label", np.int64)
        wgt[i:i + m] = _column(tab, "weight", np.float32)
        ids[i:i + m, 0] = datasets.index(ds)
        for k, name in enumerate(ID_FIELDS[1:], start=1):
            ids[i:i + m, k] = _column(tab, name, np.int64)
        i += m
    feats.flush()
    del feats
    if mask is not None:
        mask.flush()
        del mask
    for name, arr in (("label", lab), ("weight", wgt), ("ids", ids)):
        with open(tmp[name], "wb") as fh:
            np.save(fh, arr)
    meta = {"features": list(features), "classes": list(classes), "ids": list(ID_FIELDS), "datasets": list(datasets),
            "scaled": bool(scale_features), "n": int(n), "files": ["features.npy", "label.npy", "weight.npy", "ids.npy"]
            + (["defaulted.npy"] if with_mask else [])}
    for k, p in tmp.items():
        if os.path.exists(p):
            os.replace(p, os.path.join(out_dir, f"{k}.npy"))
    write_json(os.path.join(out_dir, "columns.json"), meta, indent=1)
    return {"dir": out_dir, "n": int(n)}


def write_tensors(run_dir: str, files_by_split: dict, prep: dict, scaler: dict) -> dict:
    """``RUN/tensors/<split>/...`` for every split (see the module docstring)."""
    cfg = prep["config"]
    out = {}
    for s in SPLITS:
        out[s] = write_split(os.path.join(run_dir, "tensors", s), files_by_split.get(s, []), prep["features"],
                             list(cfg["labels"]["classes"]), list(prep["datasets"]), scaler,
                             cfg["outputs"]["scale_tensors"], cfg["outputs"]["defaulted_mask"])
    return out


def load_tensors(split_dir: str, mmap: bool = True) -> dict:
    """``{"features", "label", "weight", "ids", "defaulted"?, "columns"}`` of one split directory."""
    with open(os.path.join(split_dir, "columns.json")) as f:
        meta = json.load(f)
    mode = "r" if mmap else None
    out = {"columns": meta}
    for name in ("features", "label", "weight", "ids", "defaulted"):
        p = os.path.join(split_dir, f"{name}.npy")
        if os.path.exists(p):
            out[name] = np.load(p, mmap_mode=mode)
    return out
