"""Secondary vertices inside jets (``JetSVs``, ``SV`` and the DeepJet SV inputs).

Sources of SVs per jet (each reconstructed with a probability that is scaled
by ``Conditions.sv_efficiency`` in data-like files):

* **b decay**: needs >= 2 displaced tracks; efficiency 0.55-0.85 rising with
  pT; 2 + Poisson(1.2) tracks (at most the displaced ones); visible mass
  ~ 0.9 + 0.5 x ntracks GeV (1.5-5 GeV, up to 5.8); flight = the B flight
  length. A second (cascade D) vertex in 30 % of b jets with >= 4 displaced
  tracks, mass ~ 1.2 GeV, flight = B + D.
* **c decay**: efficiency 0.45, mostly 2 tracks, mass ~ 0.5-2 GeV, flight =
  the D flight length (shorter significance than b).
* **K0s / Lambda** in light jets: 30 % survive the V0 veto, mass at the V0 mass,
  displaced by cm.
* **fake** vertices from prompt tracks: 4 % of jets with >= 2 tracks, mass
  ~ 0.6 GeV, flight ~ 150 um (significance of a few).

The flight distance is smeared with sigma_xy = 60 um (+) 200 um / sqrt(ntracks)
(x (1 + 8 GeV / pT_SV)) times ``Conditions.sv_smear``; significances divide by
the nominal sigma. SVs are ordered inside each jet by decreasing dxy
significance (the DeepJet order); ``deltaR`` is deltaR(SV, jet) - 0.5 as in
PFNano.
"""
from __future__ import annotations

import numpy as np

from . import jagged
from .constituents import BDECAY, CDECAY, V0DECAY
from .kinematics import wrap_phi

SV_SLOTS = 4


def generate(rng, jets: dict, decay: dict, n_ch, n_disp, sv_efficiency: float = 1.0,
             sv_smear: float = 1.0) -> dict:
    """Flat SV table grouped by jet (jet = index in the flat jet table)."""
    nj = len(jets["pt"])
    kind = decay["kind"]
    pt_eff = np.clip(0.55 + 0.3 * np.log(jets["pt"] / 15.0) / np.log(100.0 / 15.0), 0.55, 0.85)
    u = rng.random((4, nj))
    has_b = (kind == BDECAY) & (n_disp >= 2) & (u[0] < pt_eff * sv_efficiency)
    has_b2 = (kind == BDECAY) & (n_disp >= 4) & (u[1] < 0.30 * sv_efficiency)
    has_c = (kind == CDECAY) & (n_disp >= 2) & (u[0] < 0.45 * sv_efficiency)
    has_v0 = (kind == V0DECAY) & (n_disp >= 2) & (decay["flight"] < 25.0) & (u[0] < 0.30 * sv_efficiency)
    has_fake = (n_ch >= 2) & (u[2] < 0.04 * sv_efficiency)

    parts = []
    for mask, src in ((has_b, "b"), (has_b2, "b2"), (has_c, "c"), (has_v0, "v0"), (has_fake, "fake")):
        idx = np.flatnonzero(mask)
        parts.append((idx, np.full(len(idx), src)))
    jet = np.concatenate([p[0] for p in parts])
    src = np.concatenate([p[1] for p in parts])
    m = len(jet)
    is_b, is_b2, is_c = src == "b", src == "b2", src == "c"
    is_v0, is_fake = src == "v0", src == "fake"
    heavy = is_b | is_b2 | is_c

    ntr = np.select([is_b, is_b2, is_c, is_v0],
                    [np.minimum(n_disp[jet], 2 + rng.poisson(1.2, m)), 2 + rng.poisson(0.3, m),
                     np.minimum(n_disp[jet], 2 + rng.poisson(0.4, m)), np.full(m, 2)],
                    2 + rng.poisson(0.2, m))
    mass = np.select(
        [is_b, is_b2, is_c, is_v0],
        [np.clip(rng.normal(0.9 + 0.5 * ntr, 0.6), 0.3, 5.8), np.clip(rng.normal(1.2, 0.35, m), 0.3, 1.9),
         np.clip(rng.normal(0.75 + 0.15 * ntr, 0.3), 0.25, 2.1),
         np.where(decay["mass"][jet] < 1.0, rng.normal(0.4976, 0.008, m), rng.normal(1.1157, 0.006, m))],
        0.25 + rng.gamma(2.0, 0.18, m))
    jpt = jets["pt"][jet]
    had_pt = decay["pt"][jet]
    pt = np.select([is_b, is_b2, is_c, is_v0],
                   [had_pt * rng.uniform(0.5, 0.9, m), had_pt * rng.uniform(0.2, 0.5, m),
                    had_pt * rng.uniform(0.4, 0.85, m), had_pt], jpt * rng.beta(1.5, 8.0, m))
    pt = np.clip(pt, 0.5, None)
    flight = np.select([is_b, is_b2, is_c | is_v0],
                       [decay["flight"][jet], decay["flight"][jet] + decay["cascade"][jet], decay["flight"][jet]],
                       rng.exponential(0.015, m))
    jeta = jets["eta"][jet]
    sig_xy = np.hypot(0.006, 0.02 / np.sqrt(ntr)) * (1.0 + 8.0 / pt)
    sig_3d = sig_xy * np.sqrt(np.cosh(jeta))
    dxy_true = flight / np.cosh(jeta)
    dxy = np.abs(dxy_true + rng.standard_normal(m) * sig_xy * sv_smear)
    d3d = np.abs(flight + rng.standard_normal(m) * sig_3d * sv_smear)
    dxysig = dxy / sig_xy
    d3dsig = d3d / sig_3d

    ndof = 2.0 * ntr - 3.0
    chi2 = rng.gamma(ndof / 2.0, 2.0) * np.where(is_fake, 1.5, 1.0)
    cos_pa = np.where(heavy, 1.0 - rng.exponential(0.0015, m) * (1.0 + 5.0 / np.maximum(dxysig, 0.5)),
                      1.0 - rng.exponential(0.03, m))
    cos_pa = np.clip(cos_pa, -1.0, 1.0)

    r_fake = 0.3 * np.sqrt(rng.random(m))
    a = rng.uniform(-np.pi, np.pi, m)
    deta = np.where(is_fake, r_fake * np.cos(a), decay["deta"][jet] + rng.normal(0.0, 0.01, m))
    dphi = np.where(is_fake, r_fake * np.sin(a), decay["dphi"][jet] + rng.normal(0.0, 0.01, m))
    eta = jeta + deta
    phi = wrap_phi(jets["phi"][jet] + dphi)
    e_sv = np.sqrt((pt * np.cosh(eta)) ** 2 + mass ** 2)
    e_jet = np.sqrt((jpt * np.cosh(jeta)) ** 2 + jets["mass"][jet] ** 2)

    # order inside each jet by decreasing dxy significance
    perm = jagged.sort_within(jet, dxysig, descending=True)
    table = {
        "jet": jet, "mass": mass, "pt": pt, "eta": eta, "phi": phi, "deta": deta, "dphi": dphi,
        "ntracks": ntr.astype(np.float64), "chi2": chi2, "normchi2": chi2 / ndof, "ndof": ndof,
        "dxy": dxy, "dxysig": dxysig, "d3d": d3d, "d3dsig": d3dsig, "costhetasvpv": cos_pa,
        "deltaR": np.hypot(deta, dphi) - 0.5, "phirel": dphi, "ptrel": pt / jpt, "enratio": e_sv / e_jet,
        "flight_true": flight,
    }
    table = {k: v[perm] for k, v in table.items()}
    table["counts"] = np.bincount(table["jet"], minlength=nj)
    table["rank"] = jagged.local_index(table["counts"])
    return table


def min_dr_to_sv(cand_jet, cand_deta, cand_dphi, svs: dict, n_jets: int) -> np.ndarray:
    """DeepJet ``drminsv``: smallest deltaR between a candidate and an SV of its jet (0.4 if none)."""
    slots = jagged.Slots(svs["jet"], svs["rank"], n_jets, SV_SLOTS)
    slot_eta = slots.fill(svs["deta"], np.nan, np.float64)
    slot_phi = slots.fill(svs["dphi"], np.nan, np.float64)
    dr = np.hypot(slot_eta[:, cand_jet] - cand_deta[None, :], slot_phi[:, cand_jet] - cand_dphi[None, :])
    dr = np.where(np.isnan(dr), 0.4, dr)
    return np.minimum(dr.min(axis=0), 0.4) if len(cand_jet) else np.zeros(0)


def collections(svs: dict, jet_counts: np.ndarray, jet_event: np.ndarray, jet_local: np.ndarray,
                pv: dict) -> tuple:
    """``JetSVs`` and ``SV`` NanoAOD tables from the flat SV table.

    ``SV`` holds the vertices with 3D flight significance > 3 (as NanoAOD's
    selection); ``JetSVs_sVIdx`` points to them (-1 for the others).
    """
    n_events = len(jet_counts)
    ev = jet_event[svs["jet"]]
    counts = np.bincount(ev, minlength=n_events)
    good = svs["d3dsig"] > 3.0
    sv_counts = np.bincount(ev[good], minlength=n_events)
    csum = np.concatenate([[0], np.cumsum(good)])  # exclusive prefix count of good SVs
    start = csum[jagged.offsets(counts)[:-1]]
    sv_idx = np.where(good, csum[:-1] - np.repeat(start, counts), -1)
    jetsv = {k: svs[k] for k in ("mass", "pt", "ntracks", "chi2", "normchi2", "dxy", "dxysig", "d3d",
                                 "d3dsig", "costhetasvpv", "phirel", "ptrel", "deltaR")}
    jetsv["enration"] = svs["enratio"]
    jetsv["jetIdx"] = jet_local[svs["jet"]]
    jetsv["sVIdx"] = sv_idx

    g = {k: v[good] for k, v in svs.items() if k not in ("counts",) and len(v) == len(good)}
    gev = ev[good]
    theta = 2.0 * np.arctan(np.exp(-g["eta"]))
    flight = g["d3d"]
    sv = {
        "dlen": g["d3d"], "dlenSig": g["d3dsig"], "dxy": g["dxy"], "dxySig": g["dxysig"],
        "pAngle": np.arccos(g["costhetasvpv"]), "chi2": g["normchi2"], "eta": g["eta"], "mass": g["mass"],
        "ndof": g["ndof"], "phi": g["phi"], "pt": g["pt"],
        "x": pv["PV_x"][gev] + flight * np.sin(theta) * np.cos(g["phi"]),
        "y": pv["PV_y"][gev] + flight * np.sin(theta) * np.sin(g["phi"]),
        "z": pv["PV_z"][gev] + flight * np.cos(theta),
        "ntracks": g["ntracks"].astype(np.uint8),
    }
    return (counts, jetsv), (sv_counts, sv)
