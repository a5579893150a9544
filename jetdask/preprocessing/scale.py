"""Standardisation: exact mean/std per input as a map-reduce over chunks, and ``scaler.json``.

**Map** (worker, per chunk, :func:`chunk_moments`): for each feature, over the training
jets whose value is not defaulted, in float64: ``n``, ``mean`` and ``M2 = sum((x - mean)^2)``
(two passes over the chunk's values), ``min``/``max`` (for ``auto`` placeholders) and the
number of defaulted training entries. Validation and test jets never enter.

**Reduce** (client, :func:`merge_tables`): the per-chunk tables are merged pairwise with
Chan et al.'s parallel formula in the canonical chunk order (dataset, file, entry)::

    n = na + nb;  d = mean_b - mean_a
    mean = mean_a + d * nb / n;   M2 = M2a + M2b + d^2 * na * nb / n

which is numerically stable and agrees with a single ``numpy.mean``/``numpy.std`` over all
the values to ~1e-15 relative; the canonical order makes the result bit-identical
whichever way the run was chunked in time (resubmitted, resumed).

``scaler.json`` (written by :func:`save_scaler`) maps each feature, in column order, to::

    {"mean": float, "std": float, "default": float, "placeholder": float, "n": int, "n_defaulted": int}

* ``mean``/``std``: population mean and std (ddof=0) of the valid training values; ``std``
  is 1.0 when it would be 0 (constant or empty feature), ``mean`` 0 when ``n`` is 0;
  features matched by ``scaling.exclude`` get mean 0 and std 1 (left unscaled);
* ``placeholder``: raw value written in the shards where the entry was defaulted;
* ``default``: the scaled value a defaulted entry takes, ``(placeholder - mean) / std``.

Inference applies ``(x - mean) / std`` to valid entries and ``default`` to defaulted ones.
"""
from __future__ import annotations

import fnmatch
import json

import numpy as np

from ..atomicwrite import write_json

FIELDS = ("n", "mean", "m2", "min", "max", "n_defaulted")


def moments(x) -> tuple[int, float, float]:
    """(n, mean, M2) of a 1D array in float64 (two-pass)."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if n == 0:
        return 0, 0.0, 0.0
    mean = float(x.mean())
    d = x - mean
    return n, mean, float(np.dot(d, d))


def chunk_moments(names, train_values, train_valid) -> dict:
    """Moment table of one chunk: per feature, the moments, minimum and maximum of the valid training values.

    ``train_values``/``train_valid``: lists (one entry per feature, in ``names`` order) of the
    training jets' float32 values and boolean "not defaulted" masks. Validation and test jets do
    not enter (the ``auto`` placeholder is derived from these numbers too).
    """
    k = len(names)
    t = empty_table(names)
    for i in range(k):
        ok = train_valid[i]
        v = np.asarray(train_values[i])[ok]
        n, mean, m2 = moments(v)
        t["n"][i], t["mean"][i], t["m2"][i] = n, mean, m2
        t["n_defaulted"][i] = int(len(ok) - np.count_nonzero(ok))
        if len(v):
            t["min"][i], t["max"][i] = float(v.min()), float(v.max())
    return t


def empty_table(names) -> dict:
    k = len(names)
    return {"var": list(names), "n": np.zeros(k, np.int64), "mean": np.zeros(k), "m2": np.zeros(k),
            "min": np.full(k, np.inf), "max": np.full(k, -np.inf), "n_defaulted": np.zeros(k, np.int64)}


def merge(a: dict, b: dict) -> dict:
    """Chan's parallel merge of two moment tables (same features, same order)."""
    if list(a["var"]) != list(b["var"]):
        raise ValueError("moment tables of different features")
    na, nb = np.asarray(a["n"], np.int64), np.asarray(b["n"], np.int64)
    n = na + nb
    fa, fb, fn = na.astype(np.float64), nb.astype(np.float64), n.astype(np.float64)
    safe = np.where(n > 0, fn, 1.0)
    delta = np.asarray(b["mean"], np.float64) - np.asarray(a["mean"], np.float64)
    mean = np.where(n > 0, np.asarray(a["mean"], np.float64) + delta * fb / safe, 0.0)
    m2 = np.asarray(a["m2"], np.float64) + np.asarray(b["m2"], np.float64) + delta * delta * fa * fb / safe
    return {"var": list(a["var"]), "n": n, "mean": mean, "m2": np.where(n > 0, m2, 0.0),
            "min": np.minimum(a["min"], b["min"]), "max": np.maximum(a["max"], b["max"]),
            "n_defaulted": np.asarray(a["n_defaulted"]) + np.asarray(b["n_defaulted"])}


def merge_tables(tables, names=None) -> dict:
    """Merge moment tables in the given (canonical) order."""
    total = None
    for t in tables:
        total = t if total is None else merge(total, t)
    if total is None:
        if names is None:
            raise ValueError("no moment tables to merge")
        return empty_table(names)
    return total


def table_to_arrays(t: dict):
    """The moment table as an awkward record array (one row per feature) for ``Result.arrays``."""
    import awkward as ak
    return ak.Array({"var": t["var"], **{f: np.asarray(t[f]) for f in FIELDS}})


def table_from_parquet(path: str) -> dict:
    import pyarrow.parquet as pq
    tab = pq.read_table(path)
    return {"var": tab.column("var").to_pylist(), **{f: tab.column(f).to_numpy() for f in FIELDS}}


def build_scaler(table: dict, placeholders: dict, exclude=()) -> dict:
    """The ``scaler.json`` dict from merged moments and raw placeholders (see the module docstring)."""
    out = {}
    for i, var in enumerate(table["var"]):
        n = int(table["n"][i])
        if any(fnmatch.fnmatchcase(var, p) for p in exclude):
            mean, std = 0.0, 1.0
        else:
            mean = float(table["mean"][i]) if n else 0.0
            std = float(np.sqrt(table["m2"][i] / n)) if n else 1.0
            if not std > 0:
                std = 1.0
        ph = float(placeholders[var])
        out[var] = {"mean": mean, "std": std, "default": (ph - mean) / std, "placeholder": ph, "n": n,
                    "n_defaulted": int(table["n_defaulted"][i])}
    return out


def save_scaler(path: str, scaler: dict) -> None:
    write_json(path, scaler, indent=1)


def load_scaler(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def scaler_arrays(scaler: dict, names) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, std, default) float64 vectors in the order of ``names``."""
    return (np.array([scaler[n]["mean"] for n in names], np.float64),
            np.array([scaler[n]["std"] for n in names], np.float64),
            np.array([scaler[n]["default"] for n in names], np.float64))


def apply(x: np.ndarray, defaulted: np.ndarray | None, mean, std, default) -> np.ndarray:
    """Scaled float32 ``(x - mean) / std`` (2D, feature axis last); defaulted entries get ``default``."""
    y = (np.asarray(x, np.float64) - mean) / std
    if defaulted is not None:
        y = np.where(defaulted, default, y)
    return y.astype(np.float32)
