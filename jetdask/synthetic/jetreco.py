"""Jet-level reconstructed quantities that are not tagging inputs.

Energy fractions (``chHEF``, ``neHEF``, ``chEmEF``, ``neEmEF``, ``muEF``) are
the pT shares of the jet's own constituents by particle type; ``jetId`` is 6
(tight + lepton veto) unless a lepton carries > 80 % of the jet (then 2), with
1 % failing jets (0); pile-up jets mostly fail ``puId`` (0) while hard-scatter
jets pass it (7); ``area`` ~ 0.5, ``rawFactor`` a few % (replaced by the JEC-consistent value
of :mod:`.calibration` in :mod:`.batch`; still drawn here to keep the random path); ``cleanmask`` is 0 for
jets made of a prompt lepton.
"""
from __future__ import annotations

import numpy as np

from . import jagged
from .jets import LEPTON, PILEUP


def _choice(rng, n, values, probs):
    return np.asarray(values)[rng.choice(len(values), size=n, p=probs)]


def build(rng, jets: dict, charged: dict, neutral: dict, n_ch, n_ne) -> dict:
    """Per-jet ID and composition fields."""
    nj = len(jets["pt"])
    cpdg = np.abs(charged["pdgId"])
    npdg = np.abs(neutral["pdgId"])
    frac = {
        "chHEF": jagged.segment_sum(charged["jet"], charged["pt"] * (cpdg == 211), nj),
        "chEmEF": jagged.segment_sum(charged["jet"], charged["pt"] * (cpdg == 11), nj),
        "muEF": jagged.segment_sum(charged["jet"], charged["pt"] * (cpdg == 13), nj),
        "neHEF": jagged.segment_sum(neutral["jet"], neutral["pt"] * ((npdg == 130) | (npdg == 1)), nj),
        "neEmEF": jagged.segment_sum(neutral["jet"], neutral["pt"] * ((npdg == 22) | (npdg == 2)), nj),
    }
    total = sum(frac.values())
    total = np.where(total > 0, total, 1.0)
    out = {k: v / total for k, v in frac.items()}

    lep_dominated = (out["muEF"] > 0.8) | (out["chEmEF"] > 0.8)
    jet_id = np.where(lep_dominated, 2, 6)
    jet_id = np.where(rng.random(nj) < 0.01, 0, jet_id)
    pu = jets["source"] == PILEUP
    pu_id = np.where(pu, _choice(rng, nj, [0, 4, 6, 7], [0.70, 0.15, 0.05, 0.10]),
                     _choice(rng, nj, [7, 6, 4, 0], [0.85, 0.05, 0.05, 0.05]))
    out.update(
        jetId=jet_id, puId=pu_id,
        puIdDisc=np.clip(np.where(pu_id >= 6, rng.normal(0.8, 0.15, nj), rng.normal(-0.4, 0.3, nj)), -1, 1),
        nConstituents=n_ch + n_ne,
        area=np.clip(rng.normal(0.50, 0.03, nj), 0.3, 0.65),
        rawFactor=np.clip(rng.normal(0.03, 0.06, nj), -0.3, 0.4),
        cleanmask=np.where(jets["source"] == LEPTON, 0, 1),
    )
    return out
