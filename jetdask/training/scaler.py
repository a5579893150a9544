"""Conversion of the preprocessing ``scaler.json`` (per branch) to the inference scaler (per input).

The preprocessing writes one entry per feature *column* (``"Jet_DeepJet_Cpfcan_ptrel_3"``:
mean, std, default); the inference :class:`~jetdask.inference.Scaler` holds, per model input,
one mean/std/default per *feature* of the layout, shared by every slot. Slot columns of one
feature were standardised separately by the preprocessing, so a per-slot scaler is not
expressible in the inference format. :func:`feature_scaler` therefore builds the inference
scaler from the statistics pooled over the slots (exact pooled mean and variance from the
per-slot ``n``, ``mean``, ``std``), and :func:`restandardise` gives, per input, the affine map
that turns the preprocessing's per-column scaling into the pooled one. The training data
loader applies that map, so the tensors the model sees during training are exactly
``Scaler.apply(layout.convert(jets))`` of the inference pass (up to float32 rounding).

Defaulted entries take the pooled scaler's ``default``: the scaled value of the feature's
placeholder (the first slot column's placeholder, which is the same for every slot when the
placeholder is a fixed number; with ``auto`` placeholders the per-slot values differ and the
pooled one is the minimum over slots).
"""
from __future__ import annotations

import json
import os

import numpy as np

from ..errors import ConfigError


def load_prep_scaler(path: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path} not found (is this a preprocessing run directory?)", "preprocessed") from None


def layout_columns(layout) -> dict:
    """Per input name: integer-free array of column names shaped like the input (``spec.shape``)."""
    from ..inference.layouts import SlotLayout
    if not isinstance(layout, SlotLayout):
        raise ConfigError(f"layout {layout.name!r} is not built from per-jet branches; the preprocessing "
                          "tensors only feed slot layouts (deepjet, deepcsv)", "model.name")
    out = {}
    for inp in layout.inputs:
        spec = inp.spec
        slots = spec.slots or 1
        names = np.empty((slots, len(spec.features)), dtype=object)
        for s in range(slots):
            for j, feat in enumerate(spec.features):
                names[s, j] = f"{layout.jets}_{inp.pattern.format(feature=feat, slot=s)}"
        if spec.slots is None:
            names = names[0]
        elif spec.channels_first:
            names = names.T
        out[spec.name] = names
    return out


def column_index(layout, features) -> dict:
    """Per input name: int64 array (``spec.shape``) of positions in ``features`` (columns.json order)."""
    pos = {f: i for i, f in enumerate(features)}
    out = {}
    for name, cols in layout_columns(layout).items():
        missing = [c for c in cols.ravel() if c not in pos]
        if missing:
            raise ConfigError(f"the preprocessed features lack {len(missing)} column(s) of input {name!r} "
                              f"(e.g. {missing[:3]}); add them to the preprocessing 'features'", "features")
        out[name] = np.vectorize(pos.__getitem__, otypes=[np.int64])(cols)
    return out


def _pooled(entries: list[dict]) -> tuple[float, float]:
    n = np.array([e.get("n", 1) for e in entries], np.float64)
    mean = np.array([e["mean"] for e in entries], np.float64)
    std = np.array([e["std"] for e in entries], np.float64)
    total = n.sum()
    if total <= 0:
        return float(mean[0]), float(std[0])
    m = float((n * mean).sum() / total)
    var = float((n * (std ** 2 + (mean - m) ** 2)).sum() / total)
    # a constant feature keeps the preprocessing's std (1.0)
    s = float(np.sqrt(var)) if var > 0 else 1.0
    if all(e.get("n", 1) == 0 for e in entries):
        return 0.0, 1.0
    return m, s


def feature_scaler(prep_scaler: dict, layout) -> dict:
    """The inference scaler dict ``{"inputs": {name: {"mean", "std", "default"}}}`` (see the module doc)."""
    out = {}
    for inp in layout.inputs:
        spec = inp.spec
        if not spec.scale:
            continue
        cols = layout_columns(layout)[spec.name]
        per_feature = cols.reshape(len(spec.features), -1) if (spec.slots and spec.channels_first) else \
            cols.reshape(-1, len(spec.features)).T
        mean, std, default = [], [], []
        for j, names in enumerate(per_feature):
            try:
                entries = [prep_scaler[c] for c in names]
            except KeyError as err:
                raise ConfigError(f"scaler.json has no entry for column {err.args[0]!r}", "scaler") from None
            m, s = _pooled(entries)
            ph = min(float(e.get("placeholder", e["mean"] + e["default"] * e["std"])) for e in entries)
            mean.append(m)
            std.append(s)
            default.append((ph - m) / s)
        out[spec.name] = {"mean": mean, "std": std, "default": default}
    return {"inputs": out}


def restandardise(prep_scaler: dict, layout, inference_scaler: dict) -> dict:
    """Per input name: ``(a, b)`` arrays shaped like the input so that ``x_inf = a * x_prep + b``
    for valid entries, plus the default value array ``d`` for defaulted ones: ``(a, b, d)``."""
    out = {}
    specs = {inp.spec.name: inp.spec for inp in layout.inputs}
    for name, cols in layout_columns(layout).items():
        spec = specs[name]
        p = inference_scaler["inputs"].get(name)
        if p is None:
            continue
        pm = np.vectorize(lambda c: prep_scaler[c]["mean"], otypes=[np.float64])(cols)
        ps = np.vectorize(lambda c: prep_scaler[c]["std"], otypes=[np.float64])(cols)
        im, is_, idf = (np.broadcast_to(spec.per_feature(p[k]).astype(np.float64), cols.shape)
                        for k in ("mean", "std", "default"))
        # x_raw = x_prep * ps + pm;  x_inf = (x_raw - im) / is
        a = ps / is_
        b = (pm - im) / is_
        out[name] = (a.astype(np.float32), b.astype(np.float32), np.array(idf, np.float32))
    return out


def write_inference_scaler(path: str, scaler: dict) -> str:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(scaler, f, indent=1)
    os.replace(tmp, path)
    return path


#: Preprocessing overrides under which the preprocessing defaults exactly the entries that the
#: inference layouts treat as invalid (-999, non-finite, empty slots): no per-variable rules.
INFERENCE_COMPATIBLE = {"defaults": {"sentinels": [-999.0], "variables": {}}}


def defaulting_mismatches(prep_config: dict, layout) -> list[str]:
    """Preprocessing defaulting rules that the inference pass does not reproduce for ``layout``.

    Inference defaults -999, non-finite values and empty slots only; a preprocessing rule that
    defaults other values of a column the layout reads (extra sentinels such as the -1 of the
    DeepCSV ``*AboveCharm`` variables, valid ranges) makes training and inference disagree on those
    entries. Returns one message per rule (empty: exact agreement).
    """
    import fnmatch
    d = prep_config.get("defaults", {})
    cols = [c for v in layout_columns(layout).values() for c in v.ravel()]
    out = []
    extra = sorted(set(d.get("sentinels", [-999.0])) - {-999.0})
    if extra:
        out.append(f"defaults.sentinels {extra} are valid values for inference")
    for pattern, rule in (d.get("variables") or {}).items():
        hit = [c for c in cols if fnmatch.fnmatchcase(c, pattern)]
        if not hit:
            continue
        if set(rule.get("sentinels", [])) - {-999.0} or rule.get("valid_min") is not None \
                or rule.get("valid_max") is not None:
            out.append(f"defaults.variables[{pattern!r}] ({len(hit)} input column(s), e.g. {hit[0]}) "
                       "defaults values that inference scales as valid")
    return out
