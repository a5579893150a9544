"""``PFCands`` and ``JetPFCands``: the candidate tables of PFNano.

``PFCands`` holds every jet constituent of the event, ordered by decreasing
pT (so, as in the real files, not grouped by jet). ``JetPFCands`` has one entry per (jet, constituent) pair,
ordered by ``jetIdx`` and, inside a jet, by ``pFCandsIdx`` (as in the real
files); ``pFCandsIdx`` points into the event's ``PFCands``. The ``btag*``
variables are filled for tracks and 0 for neutrals; neutral candidates have
``d0``/``dz``/errors/chi2 = -1 like in NanoAOD.
"""
from __future__ import annotations

import numpy as np

from . import jagged, schema


def build(charged: dict, neutral: dict, jet_event: np.ndarray, jet_local: np.ndarray,
          n_events: int) -> tuple:
    """Return ``((pf_counts, pf_fields), (jpf_counts, jpf_fields))``."""
    nc, nn = len(charged["jet"]), len(neutral["jet"])
    zeros, minus = np.zeros(nn), np.full(nn, -1.0)

    def cat(c, n):
        return np.concatenate([np.asarray(c), np.asarray(n)])

    jet = cat(charged["jet"], neutral["jet"])
    event = jet_event[jet]
    lead_lep = np.abs(charged["pdgId"]) != 211
    cols = {
        "pt": cat(charged["pt"], neutral["pt"]), "eta": cat(charged["eta"], neutral["eta"]),
        "phi": cat(charged["phi"], neutral["phi"]), "mass": cat(charged["mass"], neutral["mass"]),
        "charge": cat(charged["charge"], np.zeros(nn, np.int64)),
        "pdgId": cat(charged["pdgId"], neutral["pdgId"]),
        "d0": cat(charged["d0"], minus), "d0Err": cat(charged["d0_err"], minus),
        "dz": cat(charged["dz"], minus), "dzErr": cat(charged["dz_err"], minus),
        "puppiWeight": cat(charged["puppiw"], neutral["puppiw"]),
        "puppiWeightNoLep": cat(np.where(lead_lep, 1.0, charged["puppiw"]), neutral["puppiw"]),
        "trkChi2": cat(np.floor(charged["chi2"]), minus), "vtxChi2": cat(np.zeros(nc), minus),
        "lostInnerHits": cat(charged["lost_hits"], np.full(nn, -1)),
        "pvAssocQuality": cat(charged["vtx_ass"], np.full(nn, 7)),
        "trkQuality": cat(charged["quality"], np.zeros(nn, np.int64)),
    }
    btag = {
        "btagEtaRel": cat(charged["etarel"], zeros), "btagPtRatio": cat(charged["ptratio"], zeros),
        "btagPParRatio": cat(charged["pparratio"], zeros), "btagSip3dVal": cat(charged["sip3d_val"], zeros),
        "btagSip3dSig": cat(charged["sip3d_sig"], zeros), "btagJetDistVal": cat(charged["jet_dist"], zeros),
    }

    cols = schema.cast("PFCands", cols)
    btag = schema.cast("JetPFCands", btag)

    # PFCands: ordered by decreasing pT inside each event
    pf_perm = jagged.sort_within(event, cols["pt"], descending=True)
    pf_counts = np.bincount(event, minlength=n_events)
    pf_local = np.empty(len(jet), np.int32)
    pf_local[pf_perm] = jagged.local_index(pf_counts)
    pf_fields = {k: v[pf_perm] for k, v in cols.items()}

    # JetPFCands: by jet (hence by event and jetIdx), then by pFCandsIdx (= decreasing pT)
    j_perm = jagged.sort_within(jet, cols["pt"], descending=True)
    jpf_fields = {"pt": cols["pt"][j_perm], **{k: v[j_perm] for k, v in btag.items()},
                  "pFCandsIdx": pf_local[j_perm], "jetIdx": jet_local[jet[j_perm]]}
    return (pf_counts, pf_fields), (pf_counts.copy(), jpf_fields)
