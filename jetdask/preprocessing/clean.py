"""Jet cleaning: the selection steps, each a flat boolean mask over the jets of a chunk.

Steps, in this order (a step disabled in the config is left out; ``cleaning`` section):

``pt``         ``pt_min <= pt`` (and ``pt < pt_max`` when set)
``eta``        ``|eta| < abs_eta_max`` (tracker acceptance: 2.5 in Run 2 and Run 3)
``jet_id``     ``(jetId & jet_id_bits) == jet_id_bits`` (NanoAOD bits: 2 tight, 4 tight lepton veto)
``gen_match``  ``genJetIdx >= 0`` (simulation: the jet is matched to a generator jet)
``leptons``    deltaR(jet, every tight lepton) >= ``leptons.delta_r``: removes the jets that
               are the prompt leptons themselves (NanoAOD keeps them in ``Jet``)

A tight muon passes ``pt_min``, ``abs_eta_max``, ``Muon_<id> >= id_min`` and
``Muon_<iso> < iso_max`` (id/iso null to skip); electrons likewise (default ``cutBased >= 4``,
tight). :func:`step_masks` returns the individual masks; the pipeline combines them
cumulatively and counts the jets after each step.
"""
from __future__ import annotations

import awkward as ak
import numpy as np


def _flat(x) -> np.ndarray:
    return np.asarray(ak.to_numpy(ak.flatten(x, axis=None)))


def columns(cfg: dict, collection: str = "Jet") -> list[str]:
    """Branches the cleaning reads."""
    c = cfg["cleaning"]
    cols = [f"{collection}_pt", f"{collection}_eta", f"{collection}_phi"]
    if c["jet_id_bits"]:
        cols.append(f"{collection}_jetId")
    if c["gen_match"]:
        cols.append(f"{collection}_genJetIdx")
    if c["leptons"]["delta_r"]:
        for name, coll in (("muons", "Muon"), ("electrons", "Electron")):
            L = c["leptons"][name]
            if not L["enabled"]:
                continue
            cols += [f"{coll}_pt", f"{coll}_eta", f"{coll}_phi"]
            if L["id"]:
                cols.append(f"{coll}_{L['id']}")
            if L["iso"]:
                cols.append(f"{coll}_{L['iso']}")
    return cols


def tight_leptons(coll, lcfg: dict):
    """The leptons of a jagged collection passing the tight definition of ``lcfg``."""
    sel = (coll.pt >= lcfg["pt_min"]) & (abs(coll.eta) < lcfg["abs_eta_max"])
    if lcfg["id"]:
        sel = sel & (coll[lcfg["id"]] >= lcfg["id_min"])
    if lcfg["iso"]:
        sel = sel & (coll[lcfg["iso"]] < lcfg["iso_max"])
    return coll[sel]


def min_delta_r(jet_eta, jet_phi, lep_eta, lep_phi) -> np.ndarray:
    """Flat per-jet smallest deltaR to the leptons of the same event (inf without leptons).

    Plain awkward broadcasting (jets x leptons per event), no vector behaviour needed.
    """
    deta = jet_eta[:, :, np.newaxis] - lep_eta[:, np.newaxis, :]
    dphi = jet_phi[:, :, np.newaxis] - lep_phi[:, np.newaxis, :]
    dphi = (dphi + np.pi) % (2 * np.pi) - np.pi
    dr = np.sqrt(deta ** 2 + dphi ** 2)
    m = ak.min(dr, axis=2)
    return np.asarray(ak.to_numpy(ak.fill_none(ak.flatten(m, axis=1), np.inf)), dtype=np.float64)


def step_masks(events, cfg: dict, collection: str = "Jet") -> list[tuple[str, np.ndarray]]:
    """``[(step, flat mask), ...]`` for the enabled steps (see the module docstring)."""
    c = cfg["cleaning"]
    jets = events[collection]
    pt, eta = _flat(jets.pt), _flat(jets.eta)
    out = []
    if c["pt_min"] is not None or c["pt_max"] is not None:
        m = np.ones(len(pt), bool)
        if c["pt_min"] is not None:
            m &= pt >= c["pt_min"]
        if c["pt_max"] is not None:
            m &= pt < c["pt_max"]
        out.append(("pt", m))
    if c["abs_eta_max"] is not None:
        out.append(("eta", np.abs(eta) < c["abs_eta_max"]))
    if c["jet_id_bits"]:
        bits = int(c["jet_id_bits"])
        out.append(("jet_id", (_flat(jets.jetId).astype(np.int64) & bits) == bits))
    if c["gen_match"]:
        out.append(("gen_match", _flat(jets.genJetIdx) >= 0))
    dr_min = c["leptons"]["delta_r"]
    if dr_min:
        m = np.ones(len(pt), bool)
        for name, coll in (("muons", "Muon"), ("electrons", "Electron")):
            L = c["leptons"][name]
            if not L["enabled"]:
                continue
            lep = tight_leptons(events[coll], L)
            m &= min_delta_r(jets.eta, jets.phi, lep.eta, lep.phi) >= dr_min
        out.append(("leptons", m))
    return out
