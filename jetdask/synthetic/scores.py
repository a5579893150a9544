"""Official tagger outputs (DeepJet ``btagDeepFlav*``, DeepCSV ``btagDeep*``, ``qgl``).

The scores are *not* drawn from the truth label: a fixed, hand-tuned
multinomial-logistic "tagger" maps the jet's own tagging inputs to class
probabilities, plus Gaussian noise standing for information the inputs here
do not carry. So b jets (many significant tracks, a massive displaced SV)
peak near 1 in ``btagDeepFlavB``, light jets near 0, c jets in between; and
because the same function reads the (distorted) inputs of data-like files, a
data/MC difference in impact parameters or SV efficiency shows up in the
scores consistently.

Inputs of the b/c logits: the three largest 3D IP significances, the number
of tracks with significance > 3 (tracks with |IP| < 2 mm only), and for the leading SV its mass, flight
significance; the gluon/light split uses the constituent multiplicity
relative to the quark expectation at that pT; the b split into b / bb / lepb
uses the presence of a soft lepton. DeepCSV is computed the same way from its
own (6-track) inputs with more noise, and is -1 for jets without selected
tracks, as in NanoAOD.
"""
from __future__ import annotations

import numpy as np

from .schema import N_CPF


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _top3(sig, valid):
    s = np.where(valid, np.nan_to_num(sig, nan=0.0, posinf=50.0, neginf=-50.0), -5.0)
    s = -np.sort(-s, axis=1)
    return [np.clip(s[:, i], -5.0, 40.0) for i in range(3)]


def _heavy_logits(rng, ip, n_sig, has_sv, sv_mass, sv_fsig, noise):
    ip1, ip2, ip3 = ip
    fs = np.log1p(np.clip(sv_fsig, 0.0, None))
    lb = (-4.9 + 0.5 * np.clip(ip2, -3, 15) + 0.25 * np.clip(ip3, -3, 15) + 0.8 * np.minimum(n_sig, 6)
          + has_sv * (1.0 + 2.0 * _sigmoid((sv_mass - 1.8) / 0.35) + 0.5 * fs)
          + noise * rng.standard_normal(len(ip1)))
    lc = (-3.0 + 0.35 * np.clip(ip1, -3, 8) + 0.4 * np.minimum(n_sig, 3)
          + has_sv * (0.6 + 1.2 * np.exp(-(((sv_mass - 1.0) / 0.45) ** 2)) + 0.15 * fs)
          + noise * rng.standard_normal(len(ip1)))
    return lb, lc


def _probabilities(lb, lc):
    m = np.maximum(np.maximum(lb, lc), 0.0)
    eb, ec, el = np.exp(lb - m), np.exp(lc - m), np.exp(-m)
    s = eb + ec + el
    return eb / s, ec / s, el / s


def gluon_likeness(rng, jets, n_const):
    """Logit of gluon vs light-quark from the constituent multiplicity."""
    expected = 11.0 + 5.5 * np.log(jets["pt"] / 15.0)
    return 3.0 * (n_const / expected - 1.1) + 0.7 * rng.standard_normal(len(n_const))


def deepjet(rng, dj: dict, jets: dict, n_const, soft_lepton) -> dict:
    """``btagDeepFlav*`` probabilities and discriminants from the DeepJet inputs."""
    n = len(n_const)
    sig = np.stack([dj[f"DeepJet_Cpfcan_BtagPf_trackSip3dSig_{i}"] for i in range(N_CPF)], axis=1)
    val = np.stack([dj[f"DeepJet_Cpfcan_BtagPf_trackSip2dVal_{i}"] for i in range(N_CPF)], axis=1)
    # tracks with |IP| > 2 mm (K0s, Lambda, interactions) are not used, as in real taggers
    valid = (np.arange(N_CPF)[None, :] < dj["DeepJet_nCpfcand"][:, None]) & (np.abs(val) < 0.2)
    ip = _top3(sig, valid)
    n_sig = np.sum(valid & (sig > 3.0), axis=1)
    has_sv = dj["DeepJet_nsv"] > 0
    lb, lc = _heavy_logits(rng, ip, n_sig, has_sv, dj["DeepJet_sv_mass_0"], dj["DeepJet_sv_d3dsig_0"], 0.8)
    pb, pc, pl = _probabilities(lb, lc)
    g = _sigmoid(gluon_likeness(rng, jets, n_const))
    frac = rng.dirichlet((8.0, 0.6, 1.4), n)
    lep = np.where(soft_lepton, 0.55, frac[:, 2])
    bb = frac[:, 1] * (1.0 - lep) / (frac[:, 0] + frac[:, 1])
    b = 1.0 - lep - bb
    B = pb
    out = {
        "btagDeepFlavB": B, "btagDeepFlavB_b": pb * b, "btagDeepFlavB_bb": pb * bb, "btagDeepFlavB_lepb": pb * lep,
        "btagDeepFlavC": pc, "btagDeepFlavG": pl * g, "btagDeepFlavUDS": pl * (1.0 - g),
        "btagDeepFlavCvB": pc / (pc + B), "btagDeepFlavCvL": pc / (pc + pl), "btagDeepFlavQG": g,
    }
    return {k: np.clip(v, 0.0, 1.0) for k, v in out.items()}


def deepcsv(rng, csv: dict) -> dict:
    """``btagDeep*`` (DeepCSV) probabilities from the DeepCSV inputs; -1 without selected tracks."""
    n_sel = csv["DeepCSV_jetNSelectedTracks"]
    sig = np.stack([csv[f"DeepCSV_trackSip3dSig_{i}"] for i in range(6)], axis=1)
    valid = np.arange(6)[None, :] < n_sel[:, None]
    ip = _top3(sig, valid)
    n_sig = np.sum(valid & (np.nan_to_num(sig) > 3.0), axis=1)
    has_sv = csv["DeepCSV_vertexCategory"] == 0
    mass = np.where(csv["DeepCSV_vertexCategory"] >= 0, csv["DeepCSV_vertexMass"], 0.0)
    lb, lc = _heavy_logits(rng, ip, n_sig, has_sv, mass, csv["DeepCSV_flightDistance3dSig"], 1.1)
    pb, pc, pl = _probabilities(lb - 0.3, lc - 0.2)
    f_bb = rng.beta(1.0, 30.0, len(pb))
    out = {"btagDeepB_b": pb * (1 - f_bb), "btagDeepB_bb": pb * f_bb, "btagDeepB": pb, "btagDeepC": pc,
           "btagDeepL": pl, "btagDeepCvB": pc / (pc + pb), "btagDeepCvL": pc / (pc + pl)}
    none = n_sel == 0
    return {k: np.where(none, -1.0, np.clip(v, 0.0, 1.0)) for k, v in out.items()}


def qgl(rng, jets, n_const) -> np.ndarray:
    """Quark-gluon likelihood in [0, 1] (1 = quark-like); -1 outside |eta| < 4.7."""
    q = 1.0 - _sigmoid(gluon_likeness(rng, jets, n_const) + 0.5 * rng.standard_normal(len(n_const)))
    return np.where(np.abs(jets["eta"]) < 4.7, q, -1.0)
