"""Writing :class:`~.batch.Batch` objects into a NanoAOD-like ROOT TTree with uproot.

* The ``Events`` TTree is declared once with ``file.mktree`` (uproot 5.7 would
  write an RNTuple for ``file["Events"] = data``): scalar branches by dtype,
  every jagged collection as ``var * {field: dtype, ...}`` so that uproot
  writes ``<Collection>_<field>`` branches sharing one counter ``n<Collection>``; a collection
  with the single field ``""`` is a bare jagged branch (``LHEScaleWeight``, ``nLHEScaleWeight``).
* Counters are **uint32** as in NanoAOD. uproot declares generated counters as
  int32 and offers no option to change that, so :func:`_make_counters_unsigned`
  retypes the counter leaves in uproot's (private) tree description right after
  ``mktree`` and rewrites the tree header once. If uproot's internals ever
  change shape the function leaves the counters as int32 (readers see
  ``int32`` instead of ``uint32``; values are identical) and warns.
* Each ``tree.extend`` call receives exactly ``basket_events`` events, so every
  branch gets one basket per ``basket_events`` events (the last may be shorter).
  The basket capacity is reserved up front: uproot otherwise rewrites the tree
  header when it runs out, which costs seconds at ~900 branches.
* A small ``Runs`` tree holds ``run`` and, for MC, ``genEventCount``,
  ``genEventSumw`` and ``genEventSumw2`` (as in NanoAOD).
"""
from __future__ import annotations

import warnings

import awkward as ak
import numpy as np
import uproot

from . import jagged

_DATASHAPE = {np.dtype("float32"): "float32", np.dtype("float64"): "float64", np.dtype("int32"): "int32",
              np.dtype("int64"): "int64", np.dtype("uint8"): "uint8", np.dtype("uint32"): "uint32",
              np.dtype("uint64"): "uint64", np.dtype("bool"): "bool"}


def compression_from(spec):
    """uproot compression from ``"zstd"`` (level 5), ``"zstd:3"``, ``"lzma:9"``, ``"none"``/``None``.

    An uproot compression object is passed through unchanged.
    """
    if spec is None or (isinstance(spec, str) and spec.lower() in ("", "none")):
        return None
    if not isinstance(spec, str):
        return spec
    name, _, level = spec.partition(":")
    algos = {"zstd": (uproot.ZSTD, 5), "lzma": (uproot.LZMA, 9), "zlib": (uproot.ZLIB, 1), "lz4": (uproot.LZ4, 4)}
    if name.lower() not in algos:
        raise ValueError(f"unknown compression {spec!r}; use one of {sorted(algos)} (optionally ':level') or 'none'")
    cls, default = algos[name.lower()]
    return cls(int(level) if level else default)


def branch_types(batch) -> dict:
    """``mktree`` declaration: event ids first, then collections, then the other scalars."""
    ids = ("run", "luminosityBlock", "event")
    out = {k: batch.scalars[k].dtype for k in ids}
    for name, (_, fields) in batch.collections.items():
        if _bare(fields):   # one unnamed field: a bare jagged branch NAME with counter nNAME (LHEScaleWeight)
            out[name] = ak.types.from_datashape(f"var * {_DATASHAPE[fields[''].dtype]}", highlevel=False)
            continue
        inner = ", ".join(f"{f}: {_DATASHAPE[v.dtype]}" for f, v in fields.items())
        out[name] = ak.types.from_datashape(f"var * {{{inner}}}", highlevel=False)
    out.update({k: v.dtype for k, v in batch.scalars.items() if k not in ids})
    return out


def _bare(fields: dict) -> bool:
    return list(fields) == [""]


def _make_counters_unsigned(tree, file) -> bool:
    """Turn uproot's int32 ``n<Collection>`` counters into uint32 (NanoAOD's type)."""
    try:
        cascading = tree._cascading
        data = cascading._branch_data
        counters = [d for d in data if d.get("kind") == "counter"]
        if not counters or any(d["dtype"] != np.dtype(">i4") or not d["fTitle"].endswith("/I") for d in counters):
            raise TypeError("unexpected counter layout")
        for d in counters:
            d["dtype"] = np.dtype(">u4")
            d["fTitle"] = d["fTitle"][:-1] + "i"
        cascading.write_anew(file._file.sink)
        return True
    except (AttributeError, KeyError, TypeError) as err:  # pragma: no cover - depends on uproot version
        warnings.warn(f"jetdask.synthetic: counters stay int32 ({err})", RuntimeWarning, stacklevel=2)
        return False


class EventsWriter:
    """Append batches to the ``Events`` tree of an open uproot file, one basket per ``basket_events``."""

    def __init__(self, file, first_batch, n_events_total: int, basket_events: int):
        self.file = file
        self.basket_events = int(basket_events)
        self.layout = {name: list(fields) for name, (_, fields) in first_batch.collections.items()}
        self.scalar_names = list(first_batch.scalars)
        n_baskets = -(-n_events_total // self.basket_events) + 2
        self.tree = file.mktree("Events", branch_types(first_batch), initial_basket_capacity=n_baskets)
        self.unsigned_counters = _make_counters_unsigned(self.tree, file)

    def write(self, batch) -> None:
        """Write ``batch`` as consecutive ``basket_events``-sized ``extend`` calls."""
        if list(batch.scalars) != self.scalar_names or any(
                list(f) != self.layout[n] for n, (_, f) in batch.collections.items()):
            raise ValueError("batch layout differs from the declared tree")
        offs = {name: jagged.offsets(c) for name, (c, _) in batch.collections.items()}
        for a in range(0, batch.n_events, self.basket_events):
            b = min(a + self.basket_events, batch.n_events)
            chunk = {}
            for name in ("run", "luminosityBlock", "event"):
                chunk[name] = batch.scalars[name][a:b]
            for name, (_, fields) in batch.collections.items():
                o = offs[name]
                lo, hi = o[a], o[b]
                if _bare(fields):
                    record = ak.contents.NumpyArray(fields[""][lo:hi])
                else:
                    record = ak.contents.RecordArray([ak.contents.NumpyArray(v[lo:hi]) for v in fields.values()],
                                                     list(fields), length=int(hi - lo))
                chunk[name] = ak.Array(ak.contents.ListOffsetArray(ak.index.Index64(o[a:b + 1] - lo), record))
            for name, v in batch.scalars.items():
                chunk[name] = v[a:b]
            self.tree.extend(chunk)


def write_runs(file, runs: np.ndarray, counts: np.ndarray, sumw: np.ndarray, sumw2: np.ndarray, is_mc: bool,
               candidates: np.ndarray | None = None, candidate_sumw: np.ndarray | None = None):
    """The NanoAOD ``Runs`` tree: one entry per run; with ``candidates`` also the synthetic
    bookkeeping of events generated before the injected mismodelling kept ``counts`` of them
    (``synthCandidates``, ``synthCandidateSumw``)."""
    types = {"run": np.uint32}
    data = {"run": runs.astype(np.uint32)}
    if is_mc:
        types.update(genEventCount=np.int64, genEventSumw=np.float64, genEventSumw2=np.float64)
        data.update(genEventCount=counts.astype(np.int64), genEventSumw=sumw.astype(np.float64),
                    genEventSumw2=sumw2.astype(np.float64))
    if candidates is not None:
        types.update(synthCandidates=np.int64, synthCandidateSumw=np.float64)
        data.update(synthCandidates=np.asarray(candidates).astype(np.int64),
                    synthCandidateSumw=np.asarray(candidate_sumw if candidate_sumw is not None
                                                  else np.zeros(len(runs))).astype(np.float64))
    tree = file.mktree("Runs", types)
    tree.extend(data)
