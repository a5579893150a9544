"""The events view: NanoAOD collections from the branches of one chunk, without coffea.

``events_from_arrays(arrays, entry_start)`` turns the dict that
``tree.arrays(branches, how=dict)`` returns into one awkward array of events:

* branches without ``_`` stay top-level fields (``events.run``, ``events.genWeight``);
* jagged ``X_field`` branches with a counter ``nX`` (or jagged ones without it) form the
  collection ``events.X``, a jagged array of records (``events.Jet.pt``); collections with
  pt, eta and phi get ``vector``'s ``Momentum4D`` behaviour (mass 0 when absent), so
  ``mu1.deltaR(jet)`` and ``(mu1 + mu2).mass`` work;
* flat branches sharing a prefix without a counter form a per-event record
  (``events.HLT.IsoMu24``, ``events.PV.npvs``, ``events.MET.pt``);
* ``events._entry`` is the global tree entry of each event (error reports use it).

Cross-references built when both sides were read (indices out of range or -1 are dropped
from lists, or None for single links):

==============================  ==========================================
``JetPFCands_jetIdx``           ``events.Jet.pfcands`` (list per jet)
``FatJetPFCands_jetIdx``        ``events.FatJet.pfcands``
``JetSVs_jetIdx``               ``events.Jet.svs``
``FatJetSVs_jetIdx``            ``events.FatJet.svs``
``*PFCands_pFCandsIdx``         ``.pfcand`` on each candidate (the ``PFCands`` record)
``Muon_jetIdx``, ``Electron_jetIdx``  ``events.Muon.jet`` / ``events.Electron.jet`` (or None)
==============================  ==========================================

All of it is vectorised on the flat arrays (numpy argsort/bincount + ``ak.unflatten``).
"""
from __future__ import annotations

from typing import Mapping

import awkward as ak
import numpy as np
import vector

vector.register_awkward()

# (candidate collection, owner collection, field on the owner)
GROUP_LINKS = [("JetPFCands", "Jet", "pfcands"), ("FatJetPFCands", "FatJet", "pfcands"),
               ("JetSVs", "Jet", "svs"), ("FatJetSVs", "FatJet", "svs")]
SINGLE_LINKS = [("Muon", "jetIdx", "Jet", "jet"), ("Electron", "jetIdx", "Jet", "jet")]
PFCAND_OWNERS = ("JetPFCands", "FatJetPFCands")


def _is_jagged(arr) -> bool:
    return isinstance(arr, ak.Array) and arr.ndim > 1


def _group_names(arrays: Mapping) -> tuple[dict, dict, dict]:
    keys = list(arrays)
    top, jagged, flat = {}, {}, {}
    prefixes = {k.split("_", 1)[0] for k in keys if "_" in k}
    for k in keys:
        if "_" not in k:
            if k.startswith("n") and k[1:] in prefixes:
                continue  # a counter: implied by the collection
            top[k] = arrays[k]
            continue
        prefix, field = k.split("_", 1)
        if f"n{prefix}" in arrays or _is_jagged(arrays[k]):
            jagged.setdefault(prefix, {})[field] = arrays[k]
        else:
            flat.setdefault(prefix, {})[field] = arrays[k]
    return top, jagged, flat


def _zip_collection(fields: dict) -> ak.Array:
    if {"pt", "eta", "phi"} <= set(fields):
        if "mass" not in fields:
            fields = dict(fields, mass=ak.zeros_like(fields["pt"]))
        return ak.zip(fields, with_name="Momentum4D")
    return ak.zip(fields)


def _flat_event_index(counts: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(len(counts)), counts)


def _group(cands: ak.Array, idx_field: str, owners: ak.Array) -> ak.Array:
    """Per owner (jet), the list of candidates whose ``idx_field`` points to it."""
    c_counts = np.asarray(ak.num(cands, axis=1))
    o_counts = np.asarray(ak.num(owners, axis=1))
    o_offsets = np.concatenate([[0], np.cumsum(o_counts)])
    ev = _flat_event_index(c_counts)
    idx = np.asarray(ak.flatten(cands[idx_field]), dtype=np.int64)
    valid = (idx >= 0) & (idx < o_counts[ev])
    glob = o_offsets[ev] + idx
    sel = np.nonzero(valid)[0]
    order = sel[np.argsort(glob[sel], kind="stable")]
    per_owner = np.bincount(glob[sel], minlength=int(o_offsets[-1]))
    flat = ak.flatten(cands)[order]
    return ak.unflatten(ak.unflatten(flat, per_owner), o_counts)


def _single(items: ak.Array, idx_field: str, targets: ak.Array) -> ak.Array:
    """``targets[event][items.idx_field]`` or None where the index is -1 / out of range."""
    idx = items[idx_field]
    n = ak.num(targets, axis=1)
    valid = (idx >= 0) & (idx < n)
    safe = ak.where(valid, idx, 0)
    # events without targets: index into a padded copy, then mask
    padded = ak.pad_none(targets, 1, axis=1)
    return ak.mask(padded[safe], valid)


def _pfcand_link(cands: ak.Array, pfcands: ak.Array) -> ak.Array:
    return _single(cands, "pFCandsIdx", pfcands)


def events_from_arrays(arrays: Mapping, entry_start: int = 0) -> ak.Array:
    """The events view of one chunk (see the module docstring)."""
    arrays = {k: (v if isinstance(v, ak.Array) else ak.Array(v)) for k, v in arrays.items()}
    if not arrays:
        raise ValueError("no branches to build events from")
    top, jagged, flat = _group_names(arrays)
    n = len(next(iter(arrays.values())))
    cols = {name: _zip_collection(fields) for name, fields in jagged.items()}
    for owner in PFCAND_OWNERS:
        if owner in cols and "PFCands" in cols and "pFCandsIdx" in cols[owner].fields:
            cols[owner] = ak.with_field(cols[owner], _pfcand_link(cols[owner], cols["PFCands"]), "pfcand")
    for cand, owner, field in GROUP_LINKS:
        if cand in cols and owner in cols and "jetIdx" in cols[cand].fields:
            cols[owner] = ak.with_field(cols[owner], _group(cols[cand], "jetIdx", cols[owner]), field)
    for item, idx_field, target, field in SINGLE_LINKS:
        if item in cols and target in cols and idx_field in cols[item].fields:
            cols[item] = ak.with_field(cols[item], _single(cols[item], idx_field, cols[target]), field)
    out = dict(top)
    out.update({name: ak.zip(fields, depth_limit=1) for name, fields in flat.items()})
    out.update(cols)
    out["_entry"] = np.arange(entry_start, entry_start + n, dtype=np.int64)
    return ak.zip(out, depth_limit=1)


def entry_numbers(events) -> np.ndarray:
    """Global tree entry of each event."""
    return np.asarray(events._entry)
