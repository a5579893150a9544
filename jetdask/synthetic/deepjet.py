"""The PFNano DeepJet input table: per-jet slot branches from the constituents.

* charged candidates sorted by decreasing ``trackSip2dSig`` (the DeepJet order),
  first 25 written as ``Jet_DeepJet_Cpfcan_<feature>_<i>``;
* neutral candidates sorted by increasing ``drminsv``, then decreasing pT
  fraction, first 25 as ``Jet_DeepJet_Npfcan_<feature>_<i>``;
* SVs in their jet order (decreasing dxy significance), first 4 as
  ``Jet_DeepJet_sv_<feature>_<i>``;
* ``nCpfcand``/``nNpfcand``/``nsv`` are the full numbers in the jet (as the
  PFNano table writes them; they can exceed the slots), ``npv`` the number of
  good primary vertices.

Empty slots hold 0 (PFNano's default). A rare ``inf`` appears in
``BtagPf_trackPParRatio`` (1 in 10^4 filled slots: a track with a broken
momentum), so that default/inf handling downstream has something to do.
"""
from __future__ import annotations

import numpy as np

from . import jagged
from .schema import CPF_FEATURES, N_CPF, N_NPF, N_SV, NPF_FEATURES, SV_FEATURES

_CPF_SOURCE = {
    "puppiw": "puppiw", "VTX_ass": "vtx_ass", "drminsv": "drminsv", "ptrel": "pt_frac",
    "quality": "quality", "chi2": "chi2", "BtagPf_trackDeltaR": "dr", "BtagPf_trackEtaRel": "etarel",
    "BtagPf_trackJetDistVal": "jet_dist", "BtagPf_trackPPar": "ppar",
    "BtagPf_trackPParRatio": "pparratio", "BtagPf_trackPtRel": "ptrel",
    "BtagPf_trackSip2dSig": "sip2d_sig", "BtagPf_trackSip3dSig": "sip3d_sig",
    "BtagPf_trackSip2dVal": "sip2d_val", "BtagPf_trackSip3dVal": "sip3d_val",
}
_NPF_SOURCE = {"puppiw": "puppiw", "deltaR": "dr", "drminsv": "drminsv", "HadFrac": "hadfrac",
               "ptrel": "pt_frac", "isGamma": "is_gamma"}


def charged_rank(charged: dict) -> np.ndarray:
    """Position of every charged candidate in its jet's DeepJet order."""
    return jagged.rank_within(charged["jet"], charged["sip2d_sig"], descending=True)


def neutral_rank(neutral: dict) -> np.ndarray:
    """Position of every neutral candidate in its jet's DeepJet order."""
    # drminsv ascending, then pT fraction descending: order by the fraction first, stably by drminsv next
    by_frac = jagged.sort_within(neutral["jet"], neutral["pt_frac"], descending=True)
    sub = jagged.sort_within(neutral["jet"][by_frac], neutral["drminsv"][by_frac])
    perm = by_frac[sub]
    counts = np.bincount(neutral["jet"], minlength=int(neutral["jet"].max()) + 1 if len(perm) else 0)
    rank = np.empty(len(perm), np.int64)
    rank[perm] = jagged.local_index(counts)
    return rank


def _slots(table, rank, n_jets, n_slots, feats, source, prefix, out):
    slots = jagged.Slots(table["jet"], rank, n_jets, n_slots)
    for f, dtype in feats:
        mat = slots.fill(table[source[f]], 0, dtype)
        for i in range(n_slots):
            out[f"DeepJet_{prefix}_{f}_{i}"] = mat[i]


def build(rng, charged, neutral, svs, n_ch, n_ne, npv_per_jet) -> dict:
    """``{"DeepJet_...": per-jet array}`` for every DeepJet branch except FlavSplit."""
    n_jets = len(n_ch)
    out = {"DeepJet_nCpfcand": n_ch, "DeepJet_nNpfcand": n_ne,
           "DeepJet_nsv": svs["counts"], "DeepJet_npv": npv_per_jet}
    c_rank = charged_rank(charged)
    _slots(charged, c_rank, n_jets, N_CPF, CPF_FEATURES, _CPF_SOURCE, "Cpfcan", out)
    _slots(neutral, neutral_rank(neutral), n_jets, N_NPF, NPF_FEATURES, _NPF_SOURCE, "Npfcan", out)
    _slots(svs, svs["rank"], n_jets, N_SV, SV_FEATURES, {f: f for f, _ in SV_FEATURES}, "sv", out)
    for i in range(N_CPF):
        col = out[f"DeepJet_Cpfcan_BtagPf_trackPParRatio_{i}"]
        broken = (i < n_ch) & (rng.random(n_jets) < 1e-4)
        col[broken] = np.inf
    return out
