"""The events view: NanoAOD collections from the branches of one chunk, without coffea.

``events_from_arrays(arrays, entry_start)`` turns the dict that uproot's
``tree.arrays(branches, entry_start=..., entry_stop=..., how=dict)`` (or jetdask's
branch-by-branch ``io.read_arrays``) returns into one awkward array of event records.
Branch names are split at their first ``_`` into ``prefix_field``:

* **top level**: a branch without ``_`` stays a top-level field (``events.run``,
  ``events.event``, ``events.genWeight``, ``events.fixedGridRhoFastjetAll``,
  ``events.PSWeight``);
* **collections**: a prefix ``X`` whose counter ``nX`` was read, or whose branches are jagged,
  is a collection: ``events.X`` is a jagged array of records with every ``X_*`` field
  (``events.Jet.pt``); the counter is not a field (``ak.num(events.Jet)`` is ``nJet``). A
  counter read without any ``X_*`` branch stays a top-level field;
* **per-event records**: a prefix without counter whose branches are flat is a record per
  event: ``events.HLT.IsoMu24``, ``events.Flag.goodVertices``, ``events.PV.npvs``,
  ``events.Pileup.nTrueInt``, ``events.MET.pt``;
* **name clashes** (a bare branch ``X`` and ``X_*`` branches, or flat ``X_*`` branches in a
  collection ``X``): nothing is lost, the clashing ``X_*`` branches stay top-level fields
  under their full names (``events["X_field"]``);
* **four-vectors**: a collection with ``pt``, ``eta`` and ``phi`` is named ``Momentum4D`` of
  ``vector`` (``vector.register_awkward()`` runs on import), with ``mass`` 0 (float32) added
  when it has no mass; ``mu1.deltaR(jets)`` broadcasts and ``(mu1 + mu2).mass`` is the
  invariant mass. Other fields stay record fields. Exception: a collection with a field that
  vector would read as a coordinate or that a vector attribute would shadow stays a plain
  record, because the field would silently read wrong. In NanoAOD: ``SV`` (``x, y, z`` are the
  vertex position), ``FatJet`` and ``SubJet`` (``tau2``, the N-subjettiness, would read as
  vector's ``tau2`` = mass**2). :func:`p4` gives their four-vectors
  (``mu.deltaR(p4(events.FatJet))``);
* ``events._entry`` (int64) is the global tree entry of each event (``entry_start`` + local
  index); :func:`entry_numbers` reads it (error reports use it).

Cross-references (``events.Jet.pfcands``, ``events.JetPFCands.pfcand``, ``events.Muon.jet``, ...)
are described and built in :mod:`jetdask.nanoaod.links`; the names below are re-exported here.

Behaviour: the arrays carry :data:`jetdask.nanoaod.vectors.BEHAVIOR`, vector's ``Momentum4D``
with each coordinate field read once per array (see :mod:`jetdask.nanoaod.vectors`).
"""
from __future__ import annotations

from typing import Any, Mapping

import awkward as ak
import numpy as np

from .links import (
    GROUP_LINKS,
    LINKS,
    PFCAND_OWNERS,
    SINGLE_LINKS,
    Link,
    _group_link,
    _offsets,
    _single_link,
    required_branches_for_links,
)
from .vectors import BEHAVIOR

_C = ak.contents
_I = ak.index

__all__ = ["LINKS", "GROUP_LINKS", "SINGLE_LINKS", "PFCAND_OWNERS", "Link", "events_from_arrays",
           "entry_numbers", "p4", "required_branches_for_links"]


# Field names that vector would read as a coordinate besides pt, eta, phi, mass (vector prefers
# x/y over pt/phi and z over eta), or that an attribute of vector's Momentum4D classes would
# shadow (``FatJet.tau2``, the N-subjettiness, would silently read as vector's tau2 = mass**2).
_VECTOR_COORDINATES = frozenset({"x", "y", "z", "t", "rho", "theta", "tau", "px", "py", "pz",
                                 "E", "e", "energy", "M", "m", "ptau", "ptheta", "pE"})


def _vector_attributes() -> frozenset:
    from vector.backends.awkward import MomentumArray4D, MomentumRecord4D
    names: set[str] = set()
    for cls in (MomentumArray4D, MomentumRecord4D):
        for klass in cls.__mro__:
            if klass.__module__.startswith("vector."):
                names.update(n for n in vars(klass) if not n.startswith("_"))
    return frozenset(names)


_VECTOR_CLASH = (_VECTOR_COORDINATES | _vector_attributes()) - {"pt", "eta", "phi", "mass"}
_LIST_TYPES = (_C.ListOffsetArray, _C.ListArray)


# ----------------------------------------------------------------------------- inputs


def _layout(name: str, arr):
    """The awkward layout of one branch (numpy arrays wrapped without copy)."""
    if isinstance(arr, ak.Array):
        return arr.layout
    if isinstance(arr, np.ndarray):
        if arr.dtype == object:  # uproot library="np" jagged branch: an array of arrays
            counts = np.fromiter((len(x) for x in arr), dtype=np.int64, count=len(arr))
            flat = np.concatenate([np.asarray(x) for x in arr]) if len(arr) else np.zeros(0)
            return _C.ListOffsetArray(_I.Index64(_offsets(counts)), _C.NumpyArray(flat))
        return _C.NumpyArray(arr)
    if isinstance(arr, _C.Content):
        return arr
    try:
        return ak.to_layout(arr)
    except Exception as err:  # noqa: BLE001
        raise TypeError(f"branch {name!r}: cannot use a {type(arr).__name__} as an array") from err


def _is_list(layout) -> bool:
    return isinstance(layout, _LIST_TYPES)


def _list_parts(name: str, layout) -> tuple[np.ndarray, object]:
    """(offsets starting at 0, content of exactly ``offsets[-1]`` items) of a jagged branch."""
    if isinstance(layout, _C.ListOffsetArray):
        off = np.asarray(layout.offsets.data)
        content = layout.content
        if len(off) and off[0] != 0:
            content = content[int(off[0]):int(off[-1])]
            off = off - off[0]
        elif len(off) and content.length != off[-1]:
            content = content[:int(off[-1])]
        return off.astype(np.int64, copy=False), content
    if _is_list(layout):
        packed = layout.to_ListOffsetArray64(True)
        return _list_parts(name, packed)
    try:
        packed = ak.to_layout(ak.to_packed(ak.Array(layout)))
    except Exception as err:  # noqa: BLE001
        raise TypeError(f"branch {name!r}: expected a jagged array, found {layout.form.type}") from err
    if not _is_list(packed):
        raise TypeError(f"branch {name!r}: expected a jagged array, found {layout.form.type}")
    return _list_parts(name, packed)


# ----------------------------------------------------------------------------- collections


def _is_momentum(fields) -> bool:
    """Whether records with these field names get vector's ``Momentum4D`` behaviour."""
    return {"pt", "eta", "phi"} <= fields.keys() and not (_VECTOR_CLASH & fields.keys())


class _Collection:
    """A jagged collection under construction: offsets per event and flat field contents."""

    def __init__(self, name: str, offsets: np.ndarray):
        self.name = name
        self.offsets = offsets
        self.fields: dict[str, object] = {}
        self.record: Any = None  # the RecordArray, once built

    @property
    def total(self) -> int:
        return int(self.offsets[-1])

    def build(self) -> None:
        fields = self.fields
        params = None
        if _is_momentum(fields):
            if "mass" not in fields:
                fields["mass"] = _C.NumpyArray(np.zeros(self.total, dtype=np.float32))
            params = {"__record__": "Momentum4D"}
        self.record = _C.RecordArray(list(fields.values()), list(fields), length=self.total,
                                     parameters=params)

    def add(self, field: str, content) -> None:
        r = self.record
        self.record = _C.RecordArray([*r.contents, content], [*r.fields, field], length=r.length,
                                     parameters=r.parameters)

    def layout(self):
        return _C.ListOffsetArray(_I.Index64(self.offsets), self.record)


# ----------------------------------------------------------------------------- the view


def events_from_arrays(arrays: Mapping, entry_start: int = 0) -> ak.Array:
    """The events view of one chunk: see the module docstring.

    ``arrays``: branch name -> awkward or numpy array (one entry per event), as uproot's
    ``tree.arrays(..., how=dict)`` returns. ``entry_start``: the tree entry of the first event.
    Raises ``ValueError`` when the branches have different lengths or a collection's branches
    disagree with each other or with its counter.
    """
    if not arrays:
        raise ValueError("no branches to build events from")
    layouts = {str(k): _layout(str(k), v) for k, v in arrays.items()}
    first = next(iter(layouts))
    n: int = layouts[first].length
    for k, lay in layouts.items():
        if lay.length != n:
            raise ValueError(f"branch {k!r} has {lay.length} entries, {first!r} has {n}")

    bare = {k for k in layouts if "_" not in k}
    by_prefix: dict[str, list[str]] = {}
    for k in layouts:
        if "_" in k:
            by_prefix.setdefault(k.split("_", 1)[0], []).append(k)

    top: dict[str, object] = {}
    records: dict[str, object] = {}
    collections: dict[str, _Collection] = {}
    counters_used: set[str] = set()
    for prefix, keys in by_prefix.items():
        if prefix in bare:  # clash with a bare branch: keep everything under full names
            top.update((k, layouts[k]) for k in keys)
            continue
        counter = "n" + prefix
        jagged = [k for k in keys if _is_list(layouts[k])]
        if counter not in layouts and not jagged:
            records[prefix] = _C.RecordArray([layouts[k] for k in keys], [k.split("_", 1)[1] for k in keys],
                                             length=n)
            continue
        flat = [k for k in keys if not _is_list(layouts[k])]
        top.update((k, layouts[k]) for k in flat)  # flat branch in a collection: keep its full name
        if not jagged:
            continue
        offsets, _ = _list_parts(jagged[0], layouts[jagged[0]])
        coll = _Collection(prefix, offsets)
        for k in jagged:
            off, content = _list_parts(k, layouts[k])
            if off is not offsets and not np.array_equal(off, offsets):
                raise ValueError(f"branch {k!r} has other list lengths than {jagged[0]!r} "
                                 f"(both in collection {prefix!r})")
            coll.fields[k.split("_", 1)[1]] = content
        if counter in layouts:
            c = layouts[counter]
            counts = np.asarray(c.data) if isinstance(c, _C.NumpyArray) else ak.to_numpy(ak.Array(c))
            if not np.array_equal(counts, np.diff(offsets)):
                raise ValueError(f"counter {counter!r} disagrees with the list lengths of {jagged[0]!r}")
            counters_used.add(counter)
        coll.build()
        collections[prefix] = coll

    for link in LINKS:
        src, tgt = collections.get(link.source), collections.get(link.target)
        if src is None or tgt is None or link.index not in src.fields:
            continue
        if link.kind == "single":
            if link.field not in src.record.fields:
                src.add(link.field, _single_link(src, link.index, tgt))
        elif link.field not in tgt.record.fields:
            tgt.add(link.field, _group_link(src, link.index, tgt))

    fields: dict[str, object] = {}
    for k in layouts:  # bare branches first, in input order
        if k in bare and k not in counters_used:
            fields[k] = layouts[k]
    fields.update(top)
    fields.update(records)
    fields.update((name, coll.layout()) for name, coll in collections.items())
    fields["_entry"] = _C.NumpyArray(np.arange(entry_start, entry_start + n, dtype=np.int64))
    return ak.Array(_C.RecordArray(list(fields.values()), list(fields), length=n), behavior=BEHAVIOR)


def p4(objects) -> ak.Array:
    """Four-vectors (``Momentum4D``: pt, eta, phi, mass; mass 0 when absent) of any records.

    For the collections that stay plain records (``FatJet``, ``SubJet``: their ``tau2`` field;
    ``SV``: its ``x, y, z``), e.g. ``events.Muon[:, 0].deltaR(p4(events.FatJet))``; works on
    nested and option-typed records too (``events.Jet.svs.sv``).
    """
    fields = {f: objects[f] for f in ("pt", "eta", "phi")}
    fields["mass"] = objects["mass"] if "mass" in ak.fields(objects) else ak.zeros_like(objects["pt"])
    return ak.zip(fields, with_name="Momentum4D", behavior=BEHAVIOR)


def entry_numbers(events) -> np.ndarray:
    """The global tree entry (int64) of each event of ``events`` (also after selections)."""
    try:
        entries = events["_entry"]
    except Exception as err:  # noqa: BLE001
        raise KeyError("events have no '_entry' field: build them with events_from_arrays") from err
    if isinstance(events, ak.Record):
        return np.array([entries], dtype=np.int64)
    return np.asarray(ak.to_numpy(entries), dtype=np.int64)


