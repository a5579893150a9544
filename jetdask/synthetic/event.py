"""Event-level quantities: ids, pile-up and vertices, rho, MET, triggers, flags, weights.

* **ids**: MC-like files use run 1, 1000 events per luminosity block and
  ``event = first_event + i``; data-like files use runs from 320010 (100 000
  events per run, 500 per luminosity block). Both stay unique across the
  files of a dataset because ``first_event`` advances from file to file.
* **pile-up**: true interactions ~ Gamma(10, 3.2) (mean 32) x the data-like
  pile-up scale; nPU ~ Poisson(true); reconstructed vertices ~ 70 % of nPU + 1,
  of which ~ 90 % are "good"; rho ~ 0.55 x nPU.
* **MET**: resolution-driven imbalance, sigma = 0.6 sqrt(sum ET) per component
  (PUPPI: 0.45).
* **triggers** (per-object efficiency, OR over objects): ``HLT_IsoMu24``/``27``
  from tight isolated muons above 24/27 GeV (93 %), ``HLT_Ele32_WPTight_Gsf``
  from tight electrons above 32 GeV (88 %), the double-muon (17/8)
  and double-electron (23/12) paths, from loosely isolated leptons (92-93 %).
* **flags**: each MET filter passes 99.8-99.99 %; ``Flag_METFilters`` is their AND.
* **genWeight** (MC): constant magnitude, negative in 13 % of events (NLO).
"""
from __future__ import annotations

import numpy as np

from . import jagged

GEN_WEIGHT = 23519.0
NEGATIVE_WEIGHT_FRACTION = 0.13
MC_EVENTS_PER_LUMI = 1000
DATA_FIRST_RUN, DATA_EVENTS_PER_RUN, DATA_EVENTS_PER_LUMI = 320010, 100_000, 500

FLAGS = ("Flag_goodVertices", "Flag_globalSuperTightHalo2016Filter", "Flag_HBHENoiseFilter",
         "Flag_HBHENoiseIsoFilter", "Flag_EcalDeadCellTriggerPrimitiveFilter", "Flag_BadPFMuonFilter",
         "Flag_eeBadScFilter")


def ids(n: int, first_event: int, is_data: bool) -> dict:
    """``run``, ``luminosityBlock``, ``event`` for events ``first_event .. first_event + n - 1``."""
    g = np.arange(first_event - 1, first_event - 1 + n, dtype=np.int64)
    if is_data:
        run = DATA_FIRST_RUN + g // DATA_EVENTS_PER_RUN
        lumi = 1 + (g % DATA_EVENTS_PER_RUN) // DATA_EVENTS_PER_LUMI
    else:
        run = np.ones(n, np.int64)
        lumi = 1 + g // MC_EVENTS_PER_LUMI
    return {"run": run, "luminosityBlock": lumi, "event": g + 1}


def pileup(rng, n: int, scale: float = 1.0) -> dict:
    """Pile-up, primary vertices and rho."""
    true = rng.gamma(10.0, 3.2, n) * scale
    n_pu = rng.poisson(true)
    npvs = rng.binomial(n_pu, 0.7) + 1
    good = npvs - rng.binomial(npvs - 1, 0.1)
    rho = np.clip(0.55 * n_pu + rng.normal(0.0, 2.5, n), 0.5, None)
    return {
        "Pileup_nTrueInt": true, "Pileup_nPU": n_pu,
        "PV_ndof": np.clip(rng.normal(120, 40, n), 4, None), "PV_x": rng.normal(-0.024, 0.0012, n),
        "PV_y": rng.normal(0.069, 0.0012, n), "PV_z": rng.normal(0.0, 3.5, n),
        "PV_chi2": np.clip(rng.normal(0.85, 0.08, n), 0.3, 2.0),
        "PV_score": rng.lognormal(np.log(2e4), 0.8, n),
        "PV_npvs": npvs, "PV_npvsGood": good,
        "fixedGridRhoFastjetAll": rho,
        "fixedGridRhoFastjetCentral": rho * rng.uniform(1.0, 1.15, n),
        "fixedGridRhoFastjetCentralCalo": rho * rng.uniform(0.45, 0.6, n),
        "fixedGridRhoFastjetCentralChargedPileUp": rho * rng.uniform(0.5, 0.7, n),
        "fixedGridRhoFastjetCentralNeutral": rho * rng.uniform(0.2, 0.3, n),
    }


def met(rng, n: int, sum_et: np.ndarray) -> dict:
    """MET and PUPPI MET from a Gaussian imbalance scaling with sqrt(sum ET)."""
    out = {}
    for prefix, k in (("MET", 0.6), ("PuppiMET", 0.45)):
        s = k * np.sqrt(sum_et)
        mx, my = s * rng.standard_normal(n), s * rng.standard_normal(n)
        out[f"{prefix}_pt"] = np.hypot(mx, my)
        out[f"{prefix}_phi"] = np.arctan2(my, mx)
        out[f"{prefix}_sumEt"] = sum_et * rng.uniform(0.95, 1.05, n)
    out["MET_significance"] = out["MET_pt"] ** 2 / (0.36 * sum_et)
    return out


def _any_fires(rng, n, counts, mask, eff):
    ev = jagged.parent_index(counts)[mask]
    fired = rng.random(len(ev)) < eff
    return np.bincount(ev[fired], minlength=n) > 0


def _pair_fires(rng, n, counts, pt, mask, lead, sub, eff):
    ev = jagged.parent_index(counts)
    n_lead = np.bincount(ev[mask & (pt > lead)], minlength=n)
    n_sub = np.bincount(ev[mask & (pt > sub)], minlength=n)
    return (n_lead >= 1) & (n_sub >= 2) & (rng.random(n) < eff)


def triggers(rng, n: int, muons: tuple, electrons: tuple) -> dict:
    """HLT bits from the reconstructed muons and electrons."""
    mc, mf = muons
    ec, ef = electrons
    iso_mu = mf["tightId"] & (mf["pfRelIso04_all"] < 0.15) & (np.abs(mf["eta"]) < 2.4)
    u = rng.random(len(mf["pt"]))
    ev = jagged.parent_index(mc)
    ok = iso_mu & (u < 0.93)
    mu24 = np.bincount(ev[ok & (mf["pt"] > 24.0)], minlength=n) > 0
    mu27 = np.bincount(ev[ok & (mf["pt"] > 27.0)], minlength=n) > 0
    tight_e = (ef["cutBased"] >= 4) & (np.abs(ef["eta"]) < 2.5)
    loose_mu = mf["looseId"] & (mf["pfRelIso04_all"] < 0.4)
    loose_e = (ef["cutBased"] >= 1) & (ef["pfRelIso03_all"] < 0.4)
    return {
        "HLT_IsoMu24": mu24,
        "HLT_IsoMu27": mu27,
        "HLT_Ele32_WPTight_Gsf": _any_fires(rng, n, ec, tight_e & (ef["pt"] > 32.0), 0.88),
        "HLT_Mu17_TrkIsoVVL_Mu8_TrkIsoVVL_DZ_Mass3p8": _pair_fires(rng, n, mc, mf["pt"], loose_mu, 17.0, 8.0, 0.92),
        "HLT_Ele23_Ele12_CaloIdL_TrackIdL_IsoVL": _pair_fires(rng, n, ec, ef["pt"], loose_e, 23.0, 12.0, 0.93),
    }


def flags(rng, n: int) -> dict:
    """MET filter flags and their AND."""
    out = {}
    for i, name in enumerate(FLAGS):
        out[name] = rng.random(n) > (0.002 if i == 0 else 0.0005)
    out["Flag_METFilters"] = np.logical_and.reduce([out[k] for k in FLAGS])
    return out


def gen_weight(rng, n: int) -> np.ndarray:
    """NLO-like generator weights: +-GEN_WEIGHT, 13 % negative."""
    return np.where(rng.random(n) < NEGATIVE_WEIGHT_FRACTION, -GEN_WEIGHT, GEN_WEIGHT)
