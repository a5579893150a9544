"""The DY+jets selection of ``analyses/dy_jets.py`` written on flat branch arrays (no events view).

Default cuts of ``dy_jets.Cuts``, MC or unskimmed data (no primary-dataset overlap rule).

The reference for ``benchmarks/events_view.py``: the same cuts as ``dy_jets.select`` on the
dict of branches that uproot returns (``arrays["Muon_pt"]``...), with the invariant mass and
deltaR written out from pt, eta, phi, mass. Returns the same cut masks and selected-jet mask,
so the benchmark checks that both paths select the same events and jets.
"""
from __future__ import annotations

import awkward as ak
import numpy as np

MUON_TRIGGERS = ("HLT_IsoMu24", "HLT_IsoMu27")
ELECTRON_TRIGGERS = ("HLT_Ele32_WPTight_Gsf", "HLT_Ele27_WPTight_Gsf")
Z_WINDOW = (71.0, 111.0)
LEAD_PT = {"mumu": 29.0, "ee": 35.0}  # dy_jets.Cuts defaults
LEPTON_PT, VETO_PT, JET_PT, PU_ID_LOOSE, PU_ID_MAX_PT = 15.0, 10.0, 20.0, 4, 50.0


def _trigger(arrays, names, n):
    fired = np.zeros(n, dtype=bool)
    for name in names:
        if name in arrays:
            fired |= np.asarray(arrays[name], dtype=bool)
    return fired


def _pick(arrays, name, is_mm, mu_mask, el_mask, two):
    """Field ``name`` of the two selected leptons of each event with two (None elsewhere)."""
    lep = ak.where(is_mm, arrays[f"Muon_{name}"][mu_mask], arrays[f"Electron_{name}"][el_mask])
    return ak.mask(lep, two)


def _delta_r(eta1, phi1, eta2, phi2):
    dphi = (phi1 - phi2 + np.pi) % (2 * np.pi) - np.pi
    return np.sqrt((eta1 - eta2) ** 2 + dphi ** 2)


def _pair_mass(pt, eta, phi, mass):
    px = pt * np.cos(phi)
    py = pt * np.sin(phi)
    pz = pt * np.sinh(eta)
    e = np.sqrt(px ** 2 + py ** 2 + pz ** 2 + mass ** 2)
    sx, sy, sz, se = px[:, 0] + px[:, 1], py[:, 0] + py[:, 1], pz[:, 0] + pz[:, 1], e[:, 0] + e[:, 1]
    m2 = se ** 2 - sx ** 2 - sy ** 2 - sz ** 2
    return np.sqrt(np.maximum(m2, 0))


def select_flat(arrays) -> dict:
    """The DY+jets selection on flat branches: ``{"cut": {step: mask}, "jet_mask": ..., "channel": ...}``."""
    a = arrays
    n = len(a["run"])
    keep = np.ones(n, dtype=bool)
    cut = {"all": np.ones(n, dtype=bool), "lumi": keep}
    mu_pt, mu_eta, mu_iso = a["Muon_pt"], abs(a["Muon_eta"]), a["Muon_pfRelIso04_all"]
    mu = (mu_pt > LEPTON_PT) & (mu_eta < 2.4) & a["Muon_tightId"] & (mu_iso < 0.15)
    el_pt, el_eta, el_id = a["Electron_pt"], abs(a["Electron_eta"]), a["Electron_cutBased"]
    sc = abs(a["Electron_eta"] + a["Electron_deltaEtaSC"])
    el = (el_pt > LEPTON_PT) & (el_eta < 2.5) & (el_id >= 4) & ((sc < 1.4442) | (sc > 1.566))
    n_mu, n_el = np.asarray(ak.sum(mu, axis=1)), np.asarray(ak.sum(el, axis=1))
    mu_trig, el_trig = _trigger(a, MUON_TRIGGERS, n), _trigger(a, ELECTRON_TRIGGERS, n)
    is_mm = (n_mu == 2) & mu_trig
    is_ee = (n_el == 2) & el_trig & ~(n_mu == 2)
    cut["trigger"] = keep & (mu_trig | el_trig)
    lead_pt = np.where(is_mm, LEAD_PT["mumu"], LEAD_PT["ee"])
    two = (is_mm | is_ee) & keep
    pt, eta, phi, mass, charge = (_pick(a, f, is_mm, mu, el, two) for f in ("pt", "eta", "phi", "mass", "charge"))
    ok2 = ak.fill_none((charge[:, 0] != charge[:, 1]) & (pt[:, 0] > lead_pt), False)
    two = two & np.asarray(ok2)
    cut["two leptons"] = two
    loose_mu = (mu_pt > VETO_PT) & (mu_eta < 2.4) & a["Muon_looseId"] & (mu_iso < 0.25)
    loose_el = (el_pt > VETO_PT) & (el_eta < 2.5) & (el_id >= 1)
    n_veto = np.asarray(ak.sum(mu | loose_mu, axis=1) + ak.sum(el | loose_el, axis=1))
    two = two & (n_veto == 2)
    cut["lepton veto"] = two
    mll = _pair_mass(pt, eta, phi, mass)
    z = two & np.asarray(ak.fill_none((mll > Z_WINDOW[0]) & (mll < Z_WINDOW[1]), False))
    cut["Z window"] = z
    j_eta, j_phi = a["Jet_eta"], a["Jet_phi"]
    far = None
    for i in (0, 1):  # events without two leptons: every jet is far (eta at infinity)
        l_eta = np.asarray(ak.fill_none(eta[:, i], np.inf))
        l_phi = np.asarray(ak.fill_none(phi[:, i], 0.0))
        far_i = _delta_r(j_eta, j_phi, l_eta, l_phi) > 0.4
        far = far_i if far is None else far & far_i
    j_pt = a["Jet_pt"]
    jet_ok = (j_pt > JET_PT) & (abs(j_eta) < 2.5) & (a["Jet_jetId"] >= 2) & far
    if "Jet_puId" in a:  # loose pile-up ID below 50 GeV
        jet_ok = jet_ok & ((j_pt >= PU_ID_MAX_PT) | ((a["Jet_puId"] & PU_ID_LOOSE) > 0))
    final = z & np.asarray(ak.sum(jet_ok, axis=1) > 0)
    cut["jets"] = final
    return {"cut": cut, "jet_mask": jet_ok[final], "channel": np.where(is_mm, "mumu", "ee")[final]}
