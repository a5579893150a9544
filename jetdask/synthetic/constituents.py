"""Jet constituents: charged tracks with impact parameters, and neutrals.

Model, per jet (all vectorised over the flat jet table):

* **multiplicity**: Poisson with mean growing like log(pT); gluon jets x1.3,
  b jets +2 and c jets +0.8 charged (decay products); outside the tracker
  (|eta| > 2.5) every constituent is neutral. Lepton jets hold the lepton as
  their leading track plus a few soft particles.
* **heavy-flavour decay**: b jets carry a B hadron (m = 5.28 GeV,
  c tau = 455 um, momentum fraction ~ Beta(7, 3)) whose flight length is
  beta-gamma c tau x Exp(1); c jets a D hadron (D0 / D+ / Ds / Lambda_c mix,
  c tau 60-312 um, softer fragmentation); 10 % of light jets a K0s or Lambda
  (c tau of cm: large impact parameters of both signs, rarely an SV). Half of
  the displaced tracks of b jets come from the B -> D cascade and travel the
  extra D flight distance.
* **displaced tracks** point along the hadron direction with an opening angle
  psi ~ Exp(0.6 GeV / p_track + m / 2p_hadron); their true impact parameter is
  L sin(psi), lifetime-signed positive 92 % of the time.
* **resolution**: sigma_IP(2D) = 15 um (+) 95 um / pT[GeV], longitudinal part
  larger and growing with eta, 3 % of tracks with 3x tails; the measured value
  is smeared by sigma x ``Conditions.ip_smear`` while the quoted error stays
  sigma, so the significance widens in data-like files.
* **kinematics relative to the jet axis**: deltaR, 3D angle, p_rel, p_par,
  eta_rel, distance to the jet axis and decay length, as in the b-tagging
  TrackInfoBuilder.

Returns per-jet decay information and flat ``charged`` / ``neutral`` tables
grouped by jet (jet index = position in the flat jet table).
"""
from __future__ import annotations

import numpy as np

from . import jagged
from .jets import LEPTON, PILEUP
from .kinematics import wrap_phi

PION_MASS = 0.13957

NONE, BDECAY, CDECAY, V0DECAY = 0, 1, 2, 3
_D_CTAU = np.array([0.0123, 0.0312, 0.0150, 0.0060])  # D0, D+, Ds, Lambda_c (cm)
_D_FRAC = np.array([0.60, 0.25, 0.10, 0.05])


def _disk(rng, n, radius):
    r = radius * np.sqrt(rng.random(n))
    a = rng.uniform(-np.pi, np.pi, n)
    return r * np.cos(a), r * np.sin(a)


def decays(rng, jets: dict) -> dict:
    """Per-jet long-lived hadron: kind, mass, momentum, flight length, direction."""
    nj = len(jets["pt"])
    hf = jets["hadron_flavour"]
    p_jet = jets["pt"] * np.cosh(jets["eta"])
    tracker = np.abs(jets["eta"]) < 2.5
    kind = np.where(hf == 5, BDECAY, np.where(hf == 4, CDECAY, NONE))
    v0 = (kind == NONE) & (jets["source"] != LEPTON) & (rng.random(nj) < 0.10)
    kind = np.where(v0, V0DECAY, kind)

    is_k0 = rng.random(nj) < 0.7
    mass = np.select([kind == BDECAY, kind == CDECAY, kind == V0DECAY],
                     [5.279, 1.87, np.where(is_k0, 0.4976, 1.1157)], 0.0)
    ctau = np.select([kind == BDECAY, kind == CDECAY, kind == V0DECAY],
                     [0.0455, _D_CTAU[rng.choice(4, nj, p=_D_FRAC)], np.where(is_k0, 2.68, 7.89)], 0.0)
    x = np.select([kind == BDECAY, kind == CDECAY], [rng.beta(7.0, 3.0, nj), rng.beta(4.0, 4.0, nj)],
                  rng.beta(1.5, 6.0, nj))
    p_had = x * p_jet
    bg = np.divide(p_had, mass, out=np.zeros(nj), where=mass > 0)
    flight = bg * ctau * rng.exponential(1.0, nj)
    # V0s decaying beyond the tracker are invisible
    kind = np.where((kind == V0DECAY) & (flight > 30.0), NONE, kind)
    kind = np.where(tracker, kind, NONE)
    # B -> D cascade: extra flight of the charm daughter
    bg_d = 0.6 * p_had / 1.87
    cascade = np.where(kind == BDECAY, bg_d * _D_CTAU[rng.choice(4, nj, p=_D_FRAC)] * rng.exponential(1.0, nj), 0.0)
    sigma_dir = np.where(kind == V0DECAY, 0.0, 0.015 + 0.25 / np.sqrt(jets["pt"]))
    deta = sigma_dir * rng.standard_normal(nj)
    dphi = sigma_dir * rng.standard_normal(nj)
    ueta, uphi = _disk(rng, nj, 0.3)
    deta = np.where(kind == V0DECAY, ueta, deta)
    dphi = np.where(kind == V0DECAY, uphi, dphi)
    return {"kind": kind, "mass": mass, "p": p_had, "pt": p_had / np.cosh(jets["eta"]),
            "flight": np.where(kind == NONE, 0.0, flight), "cascade": cascade,
            "deta": deta, "dphi": dphi}


def multiplicities(rng, jets: dict, decay: dict):
    """Numbers of charged and neutral constituents, and of displaced tracks, per jet."""
    nj = len(jets["pt"])
    hf = jets["hadron_flavour"]
    logpt = np.log(jets["pt"] / 15.0)
    gluon = np.where(jets["parton_flavour"] == 21, 1.3, 1.0)
    pu = np.where(jets["source"] == PILEUP, 0.6, 1.0)
    mu_ch = ((8.0 + 3.5 * logpt) * gluon + 2.0 * (hf == 5) + 0.8 * (hf == 4)) * pu
    mu_ne = (6.5 + 3.0 * logpt) * gluon * pu
    lep = jets["source"] == LEPTON
    mu_ch = np.where(lep, 0.7, mu_ch)
    mu_ne = np.where(lep, 1.5, mu_ne)
    n_ch = rng.poisson(mu_ch) + lep
    n_ne = rng.poisson(mu_ne)
    forward = np.abs(jets["eta"]) >= 2.5
    n_ne = np.where(forward, n_ne + n_ch, n_ne)
    n_ch = np.where(forward, 0, n_ch)
    kind = decay["kind"]
    want = np.select([kind == BDECAY, kind == CDECAY, kind == V0DECAY],
                     [1 + rng.poisson(3.2, nj), 1 + rng.poisson(1.0, nj), np.full(nj, 2)], 0)
    n_disp = np.minimum(want, n_ch)
    return n_ch.astype(np.int64), n_ne.astype(np.int64), n_disp.astype(np.int64)


def _momentum_shares(parent, counts, weights, total, floor=0.25):
    """Split ``total[parent]`` between the elements of each parent by ``weights``.

    Every element first gets ``floor`` GeV (scaled down when the parent cannot
    afford it); the rest is shared in proportion to ``weights``.
    """
    s = jagged.segment_sum(parent, weights, len(counts))
    base = np.minimum(floor, 0.5 * total / np.maximum(counts, 1))
    rest = total - base * counts
    return base[parent] + rest[parent] * weights / np.where(s > 0, s, 1.0)[parent]


def charged_tracks(rng, jets, decay, n_ch, n_disp, f_ch, ip_smear: float) -> dict:
    """Flat table of charged constituents (grouped by jet) with b-tagging track variables."""
    jet = jagged.parent_index(n_ch)
    k = jagged.local_index(n_ch)
    m = len(jet)
    kind = decay["kind"][jet]
    disp = k < n_disp[jet]
    heavy = disp & ((kind == BDECAY) | (kind == CDECAY))
    lead_lep = (jets["source"][jet] == LEPTON) & (k == 0)

    w = rng.gamma(0.6, 1.0, m)
    w = np.where(heavy, 4.0 * w + 0.5, w)
    w = np.where(lead_lep, 50.0, w)
    pt = _momentum_shares(jet, n_ch, w, jets["pt"] * f_ch)

    jpt, jeta = jets["pt"][jet], jets["eta"][jet]
    # direction: prompt tracks spread in the cone, displaced ones around the hadron
    scale = np.clip(0.4 * (30.0 / jpt) ** 0.3, 0.05, 0.5)
    r = np.clip(scale * rng.beta(1.0, 3.5, m), 0.002, 0.4)
    a = rng.uniform(-np.pi, np.pi, m)
    deta, dphi = r * np.cos(a), r * np.sin(a)
    p_had = np.maximum(decay["p"][jet], 1e-3)
    # opening angle to the hadron: decay transverse momentum ~ 0.6 GeV over the track momentum
    psi = np.clip(rng.exponential(1.0, m) * (0.6 / (pt * np.cosh(jeta)) + 0.5 * decay["mass"][jet] / p_had),
                  1e-4, 0.3)
    open_r = np.clip(psi * np.cosh(jeta), 0.001, 0.35)
    a2 = rng.uniform(-np.pi, np.pi, m)
    deta = np.where(disp, decay["deta"][jet] + open_r * np.cos(a2), deta)
    dphi = np.where(disp, decay["dphi"][jet] + open_r * np.sin(a2), dphi)
    lead_r = rng.exponential(0.01, m)
    deta = np.where(lead_lep, lead_r * np.cos(a2), deta)
    dphi = np.where(lead_lep, lead_r * np.sin(a2), dphi)
    dr = np.hypot(deta, dphi)
    eta = jeta + deta
    phi = wrap_phi(jets["phi"][jet] + dphi)

    # true impact parameters (cm) from the decay geometry
    cascade = heavy & (kind == BDECAY) & (rng.random(m) < 0.5)
    flight = decay["flight"][jet] + np.where(cascade, decay["cascade"][jet], 0.0)
    ip3_true = np.where(disp, flight * np.sin(psi), 0.0)
    ip2_true = ip3_true * np.sqrt(rng.uniform(0.3, 1.0, m))
    sign = np.where(rng.random(m) < np.where(kind == V0DECAY, 0.75, 0.92), 1.0, -1.0)

    # resolution and measurement
    aeta = np.abs(eta)
    s2 = np.hypot(0.0015, 0.0095 / pt) * (1.0 + 0.3 * (aeta > 1.5))
    sz = np.hypot(0.0030, 0.0120 / pt) * np.sqrt(np.cosh(eta))
    s3 = np.hypot(s2, 0.6 * sz)
    tail = np.where(rng.random(m) < 0.03, 3.0, 1.0) * ip_smear
    g1 = rng.standard_normal(m)
    g2 = 0.7 * g1 + np.sqrt(1 - 0.49) * rng.standard_normal(m)
    d2 = sign * ip2_true + g1 * s2 * tail
    d3 = sign * ip3_true + g2 * s3 * tail
    dz_true = np.where(disp, ip3_true * rng.uniform(0.0, 1.0, m) * np.where(rng.random(m) < 0.5, 1, -1), 0.0)
    dz = dz_true + rng.standard_normal(m) * sz * tail

    # kinematics relative to the jet axis
    theta = np.clip(dr / np.cosh(jeta), 1e-5, np.pi / 2)
    p = pt * np.cosh(eta)
    jet_dist = -(np.abs(rng.standard_normal(m)) * 0.7 * s2
                 + np.where(disp, np.abs(ip3_true) * rng.uniform(0.05, 0.4, m), 0.0))
    decay_len = np.where(disp, flight * rng.uniform(0.7, 1.1, m) + rng.exponential(0.01, m),
                         rng.exponential(0.05, m) + np.abs(g2) * s3)

    u = rng.random(m)
    vtx_prompt = np.select([u < 0.88, u < 0.95, u < 0.99], [7, 6, 5], 4)
    vtx_disp = np.select([u < 0.45, u < 0.65, u < 0.80], [7, 6, 5], 4)
    lost = np.where(disp, rng.choice([0, 0, 1, 2], m), rng.choice([-1, -1, 0], m))
    charge = np.where(lead_lep, jets["lep_charge"][jet], np.where(rng.random(m) < 0.5, 1, -1))
    lep_pdg = -jets["lep_flavour"][jet] * charge
    pdg = np.where(lead_lep, lep_pdg, 211 * charge)
    mass = np.where(lead_lep, np.where(np.abs(lep_pdg) == 13, 0.10566, 0.000511), PION_MASS)
    return {
        "jet": jet, "pt": pt, "eta": eta, "phi": phi, "mass": mass, "deta": deta, "dphi": dphi, "dr": dr,
        "charge": charge, "pdgId": pdg, "displaced": disp,
        "sip2d_val": d2, "sip2d_sig": d2 / s2, "sip3d_val": d3, "sip3d_sig": d3 / s3,
        "d0": np.abs(d2) * np.where(rng.random(m) < 0.5, 1, -1), "d0_err": s2, "dz": dz, "dz_err": sz,
        "jet_dist": jet_dist, "decay_len": decay_len,
        "ptrel": p * np.sin(theta), "ppar": p * np.cos(theta), "ptratio": np.sin(theta),
        "pparratio": np.cos(theta), "etarel": -np.log(np.tan(theta / 2.0)),
        "pt_frac": pt / jpt,
        "puppiw": np.where(rng.random(m) < 0.97, 1.0, rng.random(m)),
        "vtx_ass": np.where(disp, vtx_disp, vtx_prompt),
        "quality": np.where(rng.random(m) < 0.95, 5, 1),
        "chi2": rng.gamma(3.0, 0.33, m) * np.where(disp, 1.3, 1.0),
        "lost_hits": lost,
    }


def neutral_particles(rng, jets, n_ne, f_ch) -> dict:
    """Flat table of neutral constituents (photons, neutral hadrons; HF cells forward)."""
    jet = jagged.parent_index(n_ne)
    m = len(jet)
    w = rng.gamma(0.6, 1.0, m)
    pt = _momentum_shares(jet, n_ne, w, jets["pt"] * (1.0 - f_ch))
    jpt, jeta = jets["pt"][jet], jets["eta"][jet]
    scale = np.clip(0.4 * (30.0 / jpt) ** 0.3, 0.05, 0.5)
    r = np.clip(scale * rng.beta(1.0, 3.0, m), 0.002, 0.4)
    a = rng.uniform(-np.pi, np.pi, m)
    deta, dphi = r * np.cos(a), r * np.sin(a)
    eta = jeta + deta
    gamma = rng.random(m) < 0.62
    hf = np.abs(eta) > 3.0
    pdg = np.where(hf, np.where(gamma, 2, 1), np.where(gamma, 22, 130))
    return {
        "jet": jet, "pt": pt, "eta": eta, "phi": wrap_phi(jets["phi"][jet] + dphi), "mass": np.zeros(m),
        "deta": deta, "dphi": dphi, "dr": np.hypot(deta, dphi), "pdgId": pdg, "is_gamma": gamma,
        "hadfrac": np.where(gamma, rng.beta(1.0, 30.0, m), rng.beta(8.0, 1.5, m)),
        "puppiw": np.where(rng.random(m) < 0.55, 1.0, rng.beta(3.0, 1.0, m)),
        "pt_frac": pt / jpt,
    }


def generate(rng, jets: dict, ip_smear: float = 1.0):
    """Constituents of every jet: ``(decay, n_ch, n_ne, n_disp, charged, neutral)``."""
    nj = len(jets["pt"])
    decay = decays(rng, jets)
    n_ch, n_ne, n_disp = multiplicities(rng, jets, decay)
    f_ch = np.clip(rng.beta(6.0, 4.0, nj) + 0.05 * (jets["hadron_flavour"] > 0), 0.05, 0.95)
    f_ch = np.where(jets["source"] == LEPTON, 0.9, f_ch)
    f_ch = np.where(n_ch == 0, 0.0, np.where(n_ne == 0, 1.0, f_ch))
    charged = charged_tracks(rng, jets, decay, n_ch, n_disp, f_ch, ip_smear)
    neutral = neutral_particles(rng, jets, n_ne, f_ch)
    return decay, n_ch, n_ne, n_disp, charged, neutral
