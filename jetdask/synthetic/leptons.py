"""Reconstructed muons and electrons: prompt Z leptons, leptons in jets, fakes.

Sources of lepton candidates (flat tables with an ``event`` column):

* **prompt** (``genPartFlav`` 1): the two Z decay leptons, kept inside the
  tracker acceptance (muons |eta| < 2.4, electrons |eta| < 2.5 with a lossy
  barrel/endcap crack) with efficiencies 96 % (mu) / 90 % (e), pT resolution
  1-2 % (mu) and 2-3 % (e), and a radiative low-side tail (FSR / brems).
  So some events have one (or no) reconstructed Z lepton.
* **non-prompt in jets**: semileptonic b decays (``Jet_FlavSplit`` 520 -> flav 5,
  521 -> flav 4) and rare light-hadron decays in flight (flav 3). They sit in
  the jet cone, are not isolated and have displaced impact parameters.
* **fakes** (flav 0): a few soft, badly isolated, mostly loose-ID objects per
  event.

:func:`build_collections` sorts each flavour by pT inside the event and writes
the NanoAOD fields (IDs, isolation, impact parameters, ``jetIdx``...).
Prompt leptons are isolated (pfRelIso04 of a few %, growing with pile-up);
leptons in jets have relIso ~ 0.2-2. Electrons from Z have a 0.2 % charge flip.
"""
from __future__ import annotations

import numpy as np

from . import jagged
from .kinematics import wrap_phi
from .zboson import ELECTRON_MASS, MUON_MASS

_FIELDS = ("event", "flavour", "pt", "eta", "phi", "charge", "origin", "jet", "iso_scale")


def _table(**cols):
    return {k: np.asarray(cols[k]) for k in _FIELDS}


def concat(*tables) -> dict:
    """Concatenate lepton candidate tables column by column."""
    return {k: np.concatenate([t[k] for t in tables]) for k in _FIELDS}


def prompt_candidates(rng, z: dict) -> dict:
    """Reconstructed Z decay leptons (before sorting); ``jet`` is -1 for now."""
    n = len(z["flavour"])
    ev = np.concatenate([np.arange(n), np.arange(n)])
    flav = np.concatenate([z["flavour"], z["flavour"]])
    pt = np.concatenate([z["l1_pt"], z["l2_pt"]])
    eta = np.concatenate([z["l1_eta"], z["l2_eta"]])
    phi = np.concatenate([z["l1_phi"], z["l2_phi"]])
    charge = np.concatenate([z["l1_charge"], z["l2_charge"]])
    mu = flav == 13
    aeta = np.abs(eta)

    # resolution and radiative tail
    res = np.where(mu, 0.010 + 0.01 * (aeta > 1.2) + 1e-4 * pt, 0.022 + 0.01 * (aeta > 1.479))
    pt = pt * (1.0 + res * rng.standard_normal(len(pt)))
    rad = rng.random(len(pt)) < np.where(mu, 0.05, 0.12)
    pt[rad] *= 1.0 - rng.exponential(np.where(mu[rad], 0.03, 0.06))
    pt = np.clip(pt, 0.0, None)

    eff = np.where(mu, 0.96, 0.90)
    crack = (~mu) & (aeta > 1.4442) & (aeta < 1.566)
    eff = np.where(crack, 0.5, eff)
    acc = np.where(mu, aeta < 2.4, aeta < 2.5) & (pt > np.where(mu, 3.0, 5.0))
    keep = acc & (rng.random(len(pt)) < eff)
    flip = (~mu) & (rng.random(len(pt)) < 0.002)
    charge = np.where(flip, -charge, charge)
    order = np.argsort(ev[keep], kind="stable")
    k = np.flatnonzero(keep)[order]
    return _table(event=ev[k], flavour=flav[k], pt=pt[k], eta=eta[k], phi=phi[k],
                  charge=charge[k], origin=np.ones(len(k), np.int64),
                  jet=np.full(len(k), -1), iso_scale=np.full(len(k), 1.0))


def nonprompt_candidates(rng, jets: dict) -> dict:
    """Leptons inside jets: semileptonic b (FlavSplit 520/521) and light decays in flight."""
    split = jets["flav_split"]
    lepb = (split == 520) | (split == 521)
    dif = (jets["hadron_flavour"] == 0) & (jets["flav_split"] != 1000) & (rng.random(len(split)) < 0.01)
    src = np.flatnonzero(lepb | dif)
    m = len(src)
    flav = np.where(rng.random(m) < 0.5, 13, 11)
    z = rng.beta(2.0, 4.0, m)
    pt = jets["pt"][src] * z
    dr = np.clip(rng.exponential(0.08, m), 0.0, 0.35)
    ang = rng.uniform(-np.pi, np.pi, m)
    eta = jets["eta"][src] + dr * np.cos(ang)
    phi = wrap_phi(jets["phi"][src] + dr * np.sin(ang))
    origin = np.where(split[src] == 520, 5, np.where(split[src] == 521, 4, 3))
    aeta = np.abs(eta)
    keep = np.where(flav == 13, aeta < 2.4, aeta < 2.5) & (pt > np.where(flav == 13, 3.0, 5.0))
    keep &= rng.random(m) < 0.85
    s = src[keep]
    return _table(event=jets["event"][s], flavour=flav[keep], pt=pt[keep], eta=eta[keep],
                  phi=phi[keep], charge=np.where(rng.random(len(s)) < 0.5, 1, -1),
                  origin=origin[keep], jet=jets["local"][s],
                  iso_scale=1.0 / np.clip(z[keep], 0.05, None))


def fake_candidates(rng, n_events: int) -> dict:
    """Soft fake leptons not associated with a jet (mostly loose ID, not isolated)."""
    n_mu = rng.poisson(0.08, n_events)
    n_e = rng.poisson(0.25, n_events)
    ev = np.concatenate([jagged.parent_index(n_mu), jagged.parent_index(n_e)])
    flav = np.concatenate([np.full(n_mu.sum(), 13), np.full(n_e.sum(), 11)])
    m = len(ev)
    eta = rng.uniform(-2.4, 2.4, m)
    order = np.argsort(ev, kind="stable")
    return _table(event=ev[order], flavour=flav[order],
                  pt=(np.where(flav == 13, 3.0, 5.0) + rng.exponential(6.0, m))[order],
                  eta=eta[order], phi=rng.uniform(-np.pi, np.pi, m)[order],
                  charge=np.where(rng.random(m) < 0.5, 1, -1)[order],
                  origin=np.zeros(m, np.int64), jet=np.full(m, -1),
                  iso_scale=rng.uniform(2.0, 30.0, m)[order])


def _categorical(u, probs):
    """Category index for uniform numbers ``u`` given category probabilities."""
    return np.minimum(np.searchsorted(np.cumsum(probs), u, side="right"), len(probs) - 1)


def _isolation(rng, c, pileup):
    """pfRelIso04 / 03 and charged part: prompt ~ few %, in-jet leptons ~ 0.2-2."""
    m = len(c["pt"])
    prompt = c["origin"] == 1
    pu = pileup[c["event"]] / 30.0
    iso = rng.exponential(0.025, m) * (0.6 + 0.4 * pu) + 0.003 * pu * rng.random(m)
    iso = np.where(prompt, iso, 0.06 * c["iso_scale"] * rng.gamma(2.0, 0.5, m))
    iso03 = iso * rng.uniform(0.6, 0.9, m)
    return iso.astype(np.float32), iso03.astype(np.float32), (iso03 * rng.uniform(0.3, 0.8, m)).astype(np.float32)


def _impact(rng, c):
    """dxy, dz (cm) with errors; displaced for leptons from heavy flavour."""
    m = len(c["pt"])
    dxy_err = np.hypot(0.0012, 0.01 / np.clip(c["pt"], 1.0, None)) * rng.uniform(0.8, 1.2, m)
    dz_err = 1.6 * dxy_err * np.cosh(c["eta"]) ** 0.5
    heavy = (c["origin"] == 5) | (c["origin"] == 4)
    dxy = dxy_err * rng.standard_normal(m) + heavy * rng.choice([-1.0, 1.0], m) * rng.exponential(0.02, m)
    dz = dz_err * rng.standard_normal(m) + heavy * rng.choice([-1.0, 1.0], m) * rng.exponential(0.03, m)
    ip3d = np.hypot(dxy, dz)
    sip3d = ip3d / np.hypot(dxy_err, dz_err)
    return dxy, dxy_err, dz, dz_err, ip3d, sip3d


def _muon_fields(rng, c, iso, iso03, iso03chg, imp):
    m = len(c["pt"])
    prompt = c["origin"] == 1
    fake = c["origin"] == 0
    u = rng.random(m)
    p_loose = np.where(fake, 0.9, 0.998)
    p_medium = np.where(prompt, 0.985, np.where(fake, 0.35, 0.9))
    p_tight = np.where(prompt, 0.965, np.where(fake, 0.15, 0.8))
    loose = u < p_loose
    medium = loose & (u < p_medium)
    tight = loose & (u < p_tight)
    dxy, dxy_err, dz, dz_err, ip3d, sip3d = imp
    pf_iso_id = np.select([iso < 0.05, iso < 0.1, iso < 0.15, iso < 0.2, iso < 0.25, iso < 0.4],
                          [6, 5, 4, 3, 2, 1], 0).astype(np.uint8)
    f = {
        "pt": c["pt"], "eta": c["eta"], "phi": c["phi"],
        "mass": np.full(m, MUON_MASS), "charge": c["charge"],
        "pdgId": -13 * c["charge"],
        "dxy": dxy, "dxyErr": dxy_err, "dz": dz, "dzErr": dz_err, "ip3d": ip3d, "sip3d": sip3d,
        "pfRelIso04_all": iso, "pfRelIso03_all": iso03, "pfRelIso03_chg": iso03chg,
        "miniPFRelIso_all": iso03 * rng.uniform(0.5, 1.0, m),
        "tkRelIso": iso03chg * rng.uniform(0.8, 1.2, m),
        "ptErr": c["pt"] * (0.01 + 1e-4 * c["pt"]),
        "jetIdx": c["jet"],
        "nStations": np.where(loose, rng.integers(2, 5, m), rng.integers(0, 2, m)),
        "nTrackerLayers": rng.integers(9, 18, m),
        "tightCharge": np.full(m, 2),
        "looseId": loose, "mediumId": medium, "tightId": tight,
        "mediumPromptId": medium & (np.abs(dxy) < 0.02),
        "softId": loose & (u < 0.97), "isGlobal": loose, "isTracker": u < 0.99,
        "isPFcand": loose, "highPurity": u < 0.995,
        "pfIsoId": pf_iso_id,
        "highPtId": np.where(tight & (c["pt"] > 53), 2, 0).astype(np.uint8),
        "jetRelIso": iso * rng.uniform(0.8, 1.6, m),
    }
    f["genPartFlav"] = c["origin"].astype(np.uint8)
    return f


def _electron_fields(rng, c, iso, iso03, iso03chg, imp):
    m = len(c["pt"])
    prompt = c["origin"] == 1
    fake = c["origin"] == 0
    dxy, dxy_err, dz, dz_err, ip3d, sip3d = imp
    # cut-based ID (0 fail ... 4 tight); prompt mostly tight, fakes mostly fail/veto
    u = rng.random(m)
    cut = np.where(prompt, _categorical(u, (0.02, 0.03, 0.05, 0.10, 0.80)),
                   np.where(fake, _categorical(u, (0.55, 0.25, 0.12, 0.05, 0.03)),
                            _categorical(u, (0.25, 0.25, 0.20, 0.15, 0.15)))).astype(np.int32)
    # isolated-lepton MVA score correlated with the cut-based level
    mva = np.clip(np.tanh(0.8 * cut - 1.2 + 0.6 * rng.standard_normal(m) - 2.0 * np.clip(iso - 0.1, 0, None)),
                  -1.0, 1.0)
    f = {
        "pt": c["pt"], "eta": c["eta"], "phi": c["phi"],
        "mass": np.full(m, ELECTRON_MASS), "charge": c["charge"],
        "pdgId": -11 * c["charge"],
        "dxy": dxy, "dxyErr": dxy_err, "dz": dz, "dzErr": dz_err, "ip3d": ip3d, "sip3d": sip3d,
        "pfRelIso03_all": iso03, "pfRelIso03_chg": iso03chg,
        "miniPFRelIso_all": iso03 * rng.uniform(0.5, 1.0, m),
        "cutBased": cut,
        "mvaFall17V2Iso": mva,
        "mvaFall17V2Iso_WP80": mva > 0.94, "mvaFall17V2Iso_WP90": mva > 0.80,
        "mvaFall17V2Iso_WPL": mva > 0.0, "mvaFall17V2noIso_WP90": (mva + 0.1 * iso) > 0.8,
        "deltaEtaSC": rng.normal(0.0, 0.02, m),
        "r9": np.clip(rng.normal(0.9, 0.06, m), 0.3, 1.05),
        "sieie": np.where(np.abs(c["eta"]) < 1.479, rng.normal(0.0100, 0.0008, m), rng.normal(0.028, 0.002, m)),
        "hoe": rng.exponential(np.where(prompt, 0.01, 0.06), m),
        "jetIdx": c["jet"],
        "convVeto": rng.random(m) < np.where(prompt, 0.98, 0.85),
        "lostHits": rng.choice([0, 0, 0, 0, 0, 0, 0, 0, 1, 2], m).astype(np.uint8),
        "tightCharge": np.where(rng.random(m) < 0.9, 2, 1),
        "jetRelIso": iso * rng.uniform(0.8, 1.6, m),
    }
    f["genPartFlav"] = c["origin"].astype(np.uint8)
    return f


def build_collections(rng, cands: dict, n_events: int, pileup: np.ndarray):
    """Sort candidates by pT in each event and build the Muon and Electron tables.

    Returns ``{"Muon": (counts, fields), "Electron": (counts, fields)}`` where
    fields are flat arrays in the final order; ``fields["event"]``,
    ``fields["local"]`` and ``fields["jetIdx"]`` allow the jet cross-reference.
    """
    out = {}
    for name, pdg, build in (("Muon", 13, _muon_fields), ("Electron", 11, _electron_fields)):
        sel = np.flatnonzero(cands["flavour"] == pdg)
        sub = {k: v[sel] for k, v in cands.items()}
        perm = jagged.sort_within(sub["event"], sub["pt"], descending=True)
        sub = {k: v[perm] for k, v in sub.items()}
        counts = np.bincount(sub["event"], minlength=n_events)
        iso, iso03, iso03chg = _isolation(rng, sub, pileup)
        fields = build(rng, sub, iso, iso03, iso03chg, _impact(rng, sub))
        fields["_event"] = sub["event"]
        fields["_local"] = jagged.local_index(counts)
        fields["_origin"] = sub["origin"]
        out[name] = (counts, fields)
    return out


def jet_references(jet_counts: np.ndarray, lep_event, lep_jet, lep_local):
    """``(idx1, idx2, n)`` per jet: the first two leptons (in pT order) inside each jet.

    ``lep_jet`` is the local jet index of each lepton (-1 if none); leptons are
    in their final (pT-sorted) order.
    """
    n_jets = int(jet_counts.sum())
    idx1 = np.full(n_jets, -1, np.int32)
    idx2 = np.full(n_jets, -1, np.int32)
    has = lep_jet >= 0
    gjet = jagged.offsets(jet_counts)[:-1][lep_event[has]] + lep_jet[has]
    loc = lep_local[has]
    n = np.bincount(gjet, minlength=n_jets)
    if len(gjet):
        rank = jagged.rank_within(gjet, loc)
        idx1[gjet[rank == 0]] = loc[rank == 0]
        idx2[gjet[rank == 1]] = loc[rank == 1]
    return idx1, idx2, n.astype(np.int32)
