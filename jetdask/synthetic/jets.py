"""AK4 jets of Drell-Yan + jets events: multiplicity, kinematics and truth flavour.

Three sources, merged and sorted by pT inside each event (NanoAOD order),
all with pT > 15 GeV and |eta| < 4.7:

* **hadronic jets**: a recoil jet balancing the Z pT (when the Z is hard enough)
  plus a Poisson number (mean 3.45) of extra jets with a falling power-law pT
  spectrum; they carry the truth flavour below;
* **pile-up jets**: Poisson(0.012 x nPU), steeply falling pT, flat in eta;
  no generator match (``partonFlavour`` 0, ``FlavSplit`` 1000, ``genJetIdx`` -1);
* **lepton jets**: 60 % of the reconstructed prompt leptons above 15 GeV are
  also clustered as a jet (as in NanoAOD, where analyses remove them by
  deltaR); ``Jet_muonIdx1``/``Jet_electronIdx1`` point back to the lepton.

Truth flavour of hadronic jets (DY+jets-like; overall about 2.5 % b, 6 % c):
b 3.5 %, c 8.5 % (x the data-like charm scale), light the rest. Inside b:
single b (``FlavSplit`` 500) 62 %, leptonic b 520 14 %, leptonic b via c 521
6 %, bb 510 10 %, gluon splitting gbb 511 8 %; inside c: c 400 80 %, cc 410
8 %, gcc 411 12 %; light: ud (1) 45 %, s (2) 12 %, g (0) 43 %.
``partonFlavour`` is +-5 / +-4 / +-1,2 / +-3 / 21 accordingly (21 for g->bb and
g->cc splitting, as in real samples), ``nBHadrons`` is 2 for bb/gbb and 1
otherwise for b jets; ``nCHadrons`` 1 for c, 2 for cc/gcc, sometimes 1 in b
jets (B -> D cascade).
"""
from __future__ import annotations

import numpy as np

from . import jagged
from .kinematics import wrap_phi

HADRONIC, PILEUP, LEPTON = 0, 1, 2

# FlavSplit codes (the PFNano DeepJet label)
G, UD, S, C, CC, GCC, B, BB, GBB, LEPB, LEPB_C, TAU, UNDEF = 0, 1, 2, 400, 410, 411, 500, 510, 511, 520, 521, 600, 1000

_B_SPLIT = ((B, 0.62), (LEPB, 0.14), (LEPB_C, 0.06), (BB, 0.10), (GBB, 0.08))
_C_SPLIT = ((C, 0.80), (CC, 0.08), (GCC, 0.12))
_L_SPLIT = ((UD, 0.45), (S, 0.12), (G, 0.43))


def _choose(rng, n, table):
    codes = np.array([c for c, _ in table])
    p = np.array([w for _, w in table], dtype=float)
    return codes[rng.choice(len(codes), size=n, p=p / p.sum())]


def _powerlaw(rng, n, pt_min, index):
    """pT with dN/dpT ~ pT^-(index+1) above ``pt_min``."""
    return pt_min * rng.random(n) ** (-1.0 / index)


def _central_eta(rng, n, width):
    eta = rng.normal(0.0, width, n)
    bad = np.abs(eta) > 4.7
    eta[bad] = rng.uniform(-4.7, 4.7, int(bad.sum()))
    return eta


def truth_labels(rng, n, charm_scale=1.0):
    """FlavSplit code, hadronFlavour, partonFlavour, nBHadrons, nCHadrons for hadronic jets."""
    f_b, f_c = 0.035, 0.085 * charm_scale
    u = rng.random(n)
    split = np.empty(n, np.int64)
    is_b = u < f_b
    is_c = (~is_b) & (u < f_b + f_c)
    is_l = ~(is_b | is_c)
    split[is_b] = _choose(rng, int(is_b.sum()), _B_SPLIT)
    split[is_c] = _choose(rng, int(is_c.sum()), _C_SPLIT)
    split[is_l] = _choose(rng, int(is_l.sum()), _L_SPLIT)
    return split


def labels_from_split(rng, split):
    """Derive hadron/parton flavour and hadron counts consistently from FlavSplit codes."""
    n = len(split)
    sign = np.where(rng.random(n) < 0.5, 1, -1)
    hadron = np.where(split >= 500, 5, np.where(split >= 400, 4, 0))
    hadron = np.where(split == UNDEF, 0, np.where(split == TAU, 0, hadron))
    ud = np.where(rng.random(n) < 0.5, 1, 2)
    parton = np.select(
        [split == UNDEF, (split == GBB) | (split == GCC) | (split == G),
         hadron == 5, hadron == 4, split == S, split == UD],
        [0, 21, 5 * sign, 4 * sign, 3 * sign, ud * sign], 0)
    n_b = np.where((split == BB) | (split == GBB), 2, np.where(hadron == 5, 1, 0))
    cascade = (hadron == 5) & ((split == LEPB_C) | (rng.random(n) < 0.4))
    n_c = np.where((split == CC) | (split == GCC), 2, np.where((split == C) | cascade, 1, 0))
    return hadron, parton, n_b, n_c


def generate(rng, z: dict, prompt: dict, n_pu: np.ndarray, charm_scale: float = 1.0, smear=None):
    """All jets of a batch, sorted by pT inside each event.

    ``prompt`` (reconstructed Z leptons) gets its ``jet`` column filled with the
    local index of the lepton jet it formed (-1 if none). ``smear(pt, eta)``: multiplicative
    factors applied to the hadronic and pile-up jets before sorting (the data-like resolution,
    :func:`jetdask.synthetic.calibration.data_smear`; it draws from its own generator). Returns
    ``(counts, jets)`` with flat per-jet arrays in the final order.
    """
    n = len(z["pt"])
    # recoil jet
    has_recoil = rng.random(n) < 0.85
    rec_pt = z["pt"] * rng.normal(1.0, 0.2, n) + rng.normal(0.0, 3.0, n)
    has_recoil &= rec_pt > 15.0
    r_ev = np.flatnonzero(has_recoil)
    r_pt = rec_pt[r_ev]
    r_phi = wrap_phi(z["phi"][r_ev] + np.pi + rng.normal(0.0, 0.25, len(r_ev)))
    r_eta = np.clip(0.4 * z["y"][r_ev] + rng.normal(0.0, 1.6, len(r_ev)), -4.7, 4.7)
    # extra hadronic jets
    n_extra = rng.poisson(3.45, n)
    x_ev = jagged.parent_index(n_extra)
    x_pt = _powerlaw(rng, len(x_ev), 15.0, 2.2)
    x_eta = _central_eta(rng, len(x_ev), 2.0)
    x_phi = rng.uniform(-np.pi, np.pi, len(x_ev))
    # pile-up jets
    n_pujet = rng.poisson(0.012 * n_pu)
    p_ev = jagged.parent_index(n_pujet)
    p_pt = _powerlaw(rng, len(p_ev), 15.0, 5.0)
    p_eta = rng.uniform(-4.7, 4.7, len(p_ev))
    p_phi = rng.uniform(-np.pi, np.pi, len(p_ev))
    # lepton jets
    lsrc = np.flatnonzero((prompt["pt"] > 15.0) & (rng.random(len(prompt["pt"])) < 0.6))
    l_ev = prompt["event"][lsrc]
    l_pt = prompt["pt"][lsrc] * rng.uniform(1.0, 1.12, len(lsrc)) + rng.exponential(1.5, len(lsrc))
    l_eta = prompt["eta"][lsrc] + rng.normal(0.0, 0.01, len(lsrc))
    l_phi = wrap_phi(prompt["phi"][lsrc] + rng.normal(0.0, 0.01, len(lsrc)))

    n_had = len(r_ev) + len(x_ev)
    event = np.concatenate([r_ev, x_ev, p_ev, l_ev])
    pt = np.concatenate([r_pt, x_pt, p_pt, l_pt])
    eta = np.concatenate([r_eta, x_eta, p_eta, l_eta])
    phi = np.concatenate([r_phi, x_phi, p_phi, l_phi])
    source = np.concatenate([np.full(n_had, HADRONIC), np.full(len(p_ev), PILEUP), np.full(len(l_ev), LEPTON)])
    if smear is not None:
        hard = source != LEPTON
        pt[hard] = np.maximum(pt[hard] * smear(pt[hard], eta[hard]), 15.0)
    lep_src = np.concatenate([np.full(n_had + len(p_ev), -1), lsrc])
    split = np.concatenate([truth_labels(rng, n_had, charm_scale), np.full(len(p_ev) + len(l_ev), UNDEF)])

    perm = jagged.sort_within(event, pt, descending=True)
    jets = {"event": event[perm], "pt": pt[perm], "eta": eta[perm], "phi": phi[perm],
            "source": source[perm], "lep_src": lep_src[perm], "flav_split": split[perm]}
    counts = np.bincount(jets["event"], minlength=n)
    jets["local"] = jagged.local_index(counts)
    hadron, parton, n_b, n_c = labels_from_split(rng, jets["flav_split"])
    jets.update(hadron_flavour=hadron, parton_flavour=parton, n_b=n_b, n_c=n_c)
    jets["lep_flavour"] = np.zeros(len(perm), np.int64)
    is_lj = jets["lep_src"] >= 0
    jets["lep_flavour"][is_lj] = prompt["flavour"][jets["lep_src"][is_lj]]
    jets["lep_charge"] = np.zeros(len(perm), np.int64)
    jets["lep_charge"][is_lj] = prompt["charge"][jets["lep_src"][is_lj]]
    prompt["jet"][jets["lep_src"][is_lj]] = jets["local"][is_lj]

    width = np.clip(rng.normal(0.11, 0.04, len(perm)), 0.03, 0.3) + 0.03 * (hadron == 5)
    jets["mass"] = jets["pt"] * np.where(is_lj, 0.02 * rng.random(len(perm)), width)
    return counts, jets


def gen_jets(rng, counts: np.ndarray, jets: dict):
    """Generator-level jets matched to every non-pile-up jet (MC only).

    Returns ``(gen_counts, gen_fields, genJetIdx)``: GenJets sorted by their own
    pT, and for every reco jet the local index of its GenJet (-1 for pile-up).
    """
    matched = jets["source"] != PILEUP
    idx = np.flatnonzero(matched)
    m = len(idx)
    res = 0.05 + 0.9 / np.sqrt(jets["pt"][idx])
    g_pt = jets["pt"][idx] / np.clip(1.0 + res * rng.standard_normal(m), 0.5, 1.8)
    g_ev = jets["event"][idx]
    perm = jagged.sort_within(g_ev, g_pt, descending=True)
    g_counts = np.bincount(g_ev, minlength=len(counts))
    local = jagged.local_index(g_counts)
    gen_idx = np.full(len(jets["pt"]), -1, np.int32)
    gen_idx[idx[perm]] = local
    src = idx[perm]
    fields = {
        "pt": g_pt[perm],
        "eta": jets["eta"][src] + rng.normal(0.0, 0.02, m),
        "phi": wrap_phi(jets["phi"][src] + rng.normal(0.0, 0.02, m)),
        "mass": jets["mass"][src] * rng.uniform(0.85, 1.1, m),
        "partonFlavour": jets["parton_flavour"][src],
        "hadronFlavour": jets["hadron_flavour"][src].astype(np.uint8),
    }
    return g_counts, fields, gen_idx
