"""Jet energy corrections of MC jets: JEC from raw pT, JES shifts, reproducible JER smearing.

:func:`calibrate` returns flat per-jet pT and mass (over every jet of the chunk, in file order)
for the nominal and for every shape variation of the config:

* JEC: ``raw = pT (1 - rawFactor)``, ``pT_jec = raw x L1L2L3Res(JetA, JetEta, raw, Rho)``,
  the mass scaled by the same factor;
* JER (hybrid): a GenJet match (``genJetIdx``, ``|pT_jec - GenPt| < 3 sigma pT_jec``) scales the
  difference to the GenJet by the SF, an unmatched jet is smeared stochastically; the random
  number is the file's ``HashPRNG`` of (run, lumi, event, jet index in the event), so a retried,
  split or resubmitted chunk gets the same bits. Nominal = ``pT_jec x smear(SF nom)``;
  ``jerUp/Down`` = ``pT_jec x smear(SF up/down)`` (same random numbers);
* JES: ``jes<Source>Up/Down`` = nominal x ``(1 +- u_source(eta, pT_jec))``.
"""
from __future__ import annotations

import awkward as ak
import numpy as np

from .evaluate import CorrectionError, Evaluator


def _jet_arrays(events) -> dict:
    jets = events.Jet
    counts = np.asarray(ak.num(jets, axis=1))
    out = {"counts": counts}
    for f in ("pt", "eta", "mass", "rawFactor", "area", "genJetIdx"):
        if f not in jets.fields:
            raise CorrectionError(f"jet corrections need Jet_{f}, not in this file", None, None)
        out[f] = np.asarray(ak.flatten(jets[f]))
    ev = np.repeat(np.arange(len(counts)), counts)
    out["event_index"] = ev
    out["jet_index"] = np.asarray(ak.flatten(ak.local_index(jets, axis=1)))
    rho = _field(events, "fixedGridRhoFastjetAll", ("Rho", "fixedGridRhoFastjetAll"))
    out["rho"] = np.asarray(rho, dtype=np.float64)[ev]
    for name, key in (("run", "run"), ("lumi", "luminosityBlock"), ("event", "event")):
        out[name] = np.asarray(events[key]).astype(np.int64)[ev]
    return out


def _field(events, name, nested):
    if name in events.fields:
        return events[name]
    outer, inner = nested
    if outer in events.fields and inner in events[outer].fields:
        return events[outer][inner]
    raise CorrectionError(f"jet corrections need {name}, not in this file")


def genjet_pt(events, j: dict) -> np.ndarray:
    """pT of each jet's GenJet (``genJetIdx``), -1 without one (or an index beyond the GenJets)."""
    gen = events.GenJet.pt
    g_counts = np.asarray(ak.num(gen, axis=1))
    g_flat = np.asarray(ak.flatten(gen), dtype=np.float64)
    g_off = np.concatenate([[0], np.cumsum(g_counts)])
    idx = j["genJetIdx"].astype(np.int64)
    ok = (idx >= 0) & (idx < g_counts[j["event_index"]])
    out = np.full(len(idx), -1.0)
    out[ok] = g_flat[g_off[j["event_index"][ok]] + idx[ok]]
    return out


def jec(cfg, j: dict, counters: dict) -> np.ndarray:
    """The L1L2L3Res factor at raw pT for every jet."""
    block = cfg.blocks["jec"]
    ev = Evaluator(block["file"], block["compound"])
    raw = j["pt"] * (1.0 - j["rawFactor"])
    return ev(counters, JetA=j["area"], JetEta=j["eta"], JetPt=raw, Rho=j["rho"])


def jer_smear(cfg, j: dict, pt_jec, genpt, counters: dict) -> dict:
    """Smearing factors ``{"nom"|"up"|"down": per jet}``."""
    block = cfg.blocks["jer"]
    res = Evaluator(block["file"], block["resolution"])(counters, JetEta=j["eta"], JetPt=pt_jec, Rho=j["rho"])
    sf_ev = Evaluator(block["file"], block["scale_factor"])
    smear = Evaluator(block["file"], block["smear"])
    matched = (genpt > 0) & (np.abs(pt_jec - genpt) < 3.0 * res * pt_jec)
    gen = np.where(matched, genpt, -1.0)
    out = {}
    for side in ("nom", "up", "down"):
        sf = sf_ev(counters, JetEta=j["eta"], JetPt=pt_jec, systematic=side)
        out[side] = smear(counters, JetPt=pt_jec, JetEta=j["eta"], GenPt=gen, Rho=j["rho"], Run=j["run"],
                          LumiBlock=j["lumi"], EventID=j["event"], JetIndex=j["jet_index"], JER=res, JERSF=sf)
    return out


def calibrate(events, cfg, counters: dict) -> dict:
    """``{"counts", "nominal": (pt, mass), "<syst>": (pt, mass), ...}`` flat over the chunk's jets.

    Only what the config enables: without ``jec`` the stored pT is the starting point, without
    ``jer`` no smearing, without ``jes`` no JES variations.
    """
    j = _jet_arrays(events)
    pt = j["pt"].astype(np.float64)
    mass = j["mass"].astype(np.float64)
    if cfg.has("jec"):
        raw = pt * (1.0 - j["rawFactor"])
        c = jec(cfg, j, counters)
        pt, mass = raw * c, mass * (1.0 - j["rawFactor"]) * c
    out = {"counts": j["counts"], "pt_jec": pt}
    nominal = (pt, mass)
    if cfg.has("jer"):
        s = jer_smear(cfg, j, pt, genjet_pt(events, j), counters)
        nominal = (pt * s["nom"], mass * s["nom"])
        if any(src.name == "jer" for src in cfg.sources):
            out["jerUp"] = (pt * s["up"], mass * s["up"])
            out["jerDown"] = (pt * s["down"], mass * s["down"])
    out["nominal"] = nominal
    if cfg.has("jes"):
        block = cfg.blocks["jes"]
        for src in cfg.sources:
            if src.group != "jes":
                continue
            u = Evaluator(block["file"], block["sources"][src.name[3:]])(counters, JetEta=j["eta"], JetPt=pt)
            out[f"{src.name}Up"] = (nominal[0] * (1.0 + u), nominal[1] * (1.0 + u))
            out[f"{src.name}Down"] = (nominal[0] * (1.0 - u), nominal[1] * (1.0 - u))
    return out


def with_jets(events, pt, mass):
    """``events`` whose ``Jet.pt``/``Jet.mass`` are the flat arrays ``pt``/``mass`` (file order)."""
    counts = np.asarray(ak.num(events.Jet, axis=1))
    jets = ak.with_field(events.Jet, ak.unflatten(np.asarray(pt, dtype=np.float32), counts), "pt")
    jets = ak.with_field(jets, ak.unflatten(np.asarray(mass, dtype=np.float32), counts), "mass")
    return ak.with_field(events, jets, "Jet")
