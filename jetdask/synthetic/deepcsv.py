"""DeepCSV inputs (``Jet_DeepCSV_*``) from the same tracks and SVs as DeepJet.

Definitions follow the b-tagging TrackIP/SV tag infos as stored in PFNano:

* **selected tracks**: pT > 1 GeV, |distance to jet axis| < 0.07 cm,
  |IP| < 0.2 cm, decay length < 5 cm (so K0s/Lambda tracks mostly fail),
  ordered by decreasing 2D IP significance; the first 6 fill the
  ``track*_0..5`` branches;
* ``vertexCategory``: 0 if the jet has an SV, 1 ("pseudo vertex") if at least
  two selected tracks have 2D IP significance > 2, else 2; vertex mass,
  energy ratio and deltaR come from the SV (cat 0) or from the pseudo-vertex
  tracks (cat 1); flight distances only for cat 0;
  ``trackEtaRel_0..3``: the SV tracks in increasing eta_rel;
* ``track*AboveCharm``: the first track (in significance order) at which the
  running invariant mass of the selected tracks exceeds 1.5 GeV.

Defaults as in the real files: jets without any track (outside the tracker)
hold -999 everywhere (counts 0); per-track slots hold -999 when the jet has no
selected track and 0 beyond the last selected track; vertex quantities without
a vertex hold -999; ``AboveCharm`` values are -1 when the mass is never
reached. A rare NaN (1 in 10^4 filled slots) appears in ``trackSip3dSig_*``.
"""
from __future__ import annotations

import numpy as np

from . import jagged
from .constituents import PION_MASS
from .kinematics import delta_phi, to_cartesian

N_TRACKS, N_ETAREL, MAX_RUNNING = 6, 4, 25
_TRACK_SLOTS = {"trackSip2dSig": "sip2d_sig", "trackSip3dSig": "sip3d_sig", "trackPtRel": "ptrel",
                "trackPtRatio": "ptratio", "trackDeltaR": "dr", "trackJetDistVal": "jet_dist",
                "trackDecayLenVal": "decay_len"}
_DEFAULT = -999.0


def _leading_sv(svs, n_jets, key, fill=_DEFAULT):
    out = np.full(n_jets, fill, dtype=np.float64)
    lead = svs["rank"] == 0
    out[svs["jet"][lead]] = svs[key][lead]
    return out


def build(rng, jets: dict, charged: dict, svs: dict, n_ch: np.ndarray) -> dict:
    """``{"DeepCSV_...": per-jet array}`` for every DeepCSV input branch of PFNano."""
    nj = len(n_ch)
    no_tracks = np.abs(jets["eta"]) >= 2.5
    cj = charged["jet"]
    sel = ((charged["pt"] > 1.0) & (np.abs(charged["jet_dist"]) < 0.07)
           & (np.abs(charged["sip2d_val"]) < 0.2) & (charged["decay_len"] < 5.0))
    sj = cj[sel]
    st = {k: v[sel] for k, v in charged.items()}
    n_sel = np.bincount(sj, minlength=nj)
    rank = jagged.rank_within(sj, st["sip2d_sig"], descending=True)
    slots = jagged.Slots(sj, rank, nj, N_TRACKS)
    out = {}
    for name, src in _TRACK_SLOTS.items():
        mat = slots.fill(st[src], 0.0, np.float32)
        mat[:, n_sel == 0] = _DEFAULT
        if name == "trackSip3dSig":
            filled = np.arange(N_TRACKS)[:, None] < n_sel[None, :]
            mat[filled & (rng.random(mat.shape) < 1e-4)] = np.nan
        for i in range(N_TRACKS):
            out[f"DeepCSV_{name}_{i}"] = mat[i]

    # running mass of the selected tracks -> first track above the charm mass
    run = jagged.Slots(sj, rank, nj, MAX_RUNNING)
    px, py, pz, e = to_cartesian(st["pt"], st["eta"], st["phi"], PION_MASS)
    cum = [np.cumsum(run.fill(x, 0.0, np.float64), axis=0) for x in (px, py, pz, e)]
    m2 = cum[3] ** 2 - cum[0] ** 2 - cum[1] ** 2 - cum[2] ** 2
    above = m2 > 1.5 ** 2
    has = above.any(axis=0)
    first = np.argmax(above, axis=0)
    for name, src in (("trackSip2dSigAboveCharm", "sip2d_sig"), ("trackSip2dValAboveCharm", "sip2d_val"),
                      ("trackSip3dSigAboveCharm", "sip3d_sig"), ("trackSip3dValAboveCharm", "sip3d_val")):
        mat = run.fill(st[src], 0.0, np.float64)
        out[f"DeepCSV_{name}"] = np.where(has, mat[first, np.arange(nj)], -1.0)

    # track-sum quantities over all tracks of the jet
    tpx, tpy, tpz, te = to_cartesian(charged["pt"], charged["eta"], charged["phi"], PION_MASS)
    sx, sy, sz = (jagged.segment_sum(cj, v, nj) for v in (tpx, tpy, tpz))
    track_pt = np.hypot(sx, sy)
    s_eta = np.arcsinh(np.divide(sz, track_pt, out=np.zeros(nj), where=track_pt > 0))
    s_phi = np.arctan2(sy, sx)
    dphi = delta_phi(s_phi, jets["phi"])
    out["DeepCSV_trackJetPt"] = track_pt
    out["DeepCSV_trackSumJetEtRatio"] = track_pt / jets["pt"]
    out["DeepCSV_trackSumJetDeltaR"] = np.where(n_ch > 0, np.hypot(s_eta - jets["eta"], dphi), 0.0)

    # vertex category and vertex quantities
    n_sv = svs["counts"]
    pseudo_trk = sel & (charged["sip2d_sig"] > 2.0)
    n_pseudo = np.bincount(cj[pseudo_trk], minlength=nj)
    cat = np.where(n_sv > 0, 0, np.where(n_pseudo >= 2, 1, 2)).astype(np.float64)
    ppx, ppy, ppz, pe = (jagged.segment_sum(cj[pseudo_trk], v[pseudo_trk], nj) for v in (tpx, tpy, tpz, te))
    p_mass = np.sqrt(np.clip(pe ** 2 - ppx ** 2 - ppy ** 2 - ppz ** 2, 0, None))
    p_pt = np.hypot(ppx, ppy)
    p_eta = np.arcsinh(np.divide(ppz, p_pt, out=np.zeros(nj), where=p_pt > 0))
    p_dr = np.hypot(p_eta - jets["eta"], delta_phi(np.arctan2(ppy, ppx), jets["phi"]))
    e_jet = np.sqrt((jets["pt"] * np.cosh(jets["eta"])) ** 2 + jets["mass"] ** 2)
    is0, is1 = cat == 0, cat == 1
    out["DeepCSV_vertexCategory"] = cat
    out["DeepCSV_vertexMass"] = np.select([is0, is1], [_leading_sv(svs, nj, "mass"), p_mass], _DEFAULT)
    out["DeepCSV_vertexEnergyRatio"] = np.select([is0, is1], [_leading_sv(svs, nj, "enratio"), pe / e_jet], _DEFAULT)
    out["DeepCSV_vertexJetDeltaR"] = np.select([is0, is1], [_leading_sv(svs, nj, "deltaR") + 0.5, p_dr], _DEFAULT)
    sv_ntr = _leading_sv(svs, nj, "ntracks", 0.0).astype(np.int64)
    out["DeepCSV_vertexNTracks"] = np.select([is0, is1], [sv_ntr, n_pseudo], 0)
    out["DeepCSV_jetNSecondaryVertices"] = n_sv.copy()
    out["DeepCSV_jetNSelectedTracks"] = n_sel
    for name, key in (("flightDistance2dVal", "dxy"), ("flightDistance2dSig", "dxysig"),
                      ("flightDistance3dVal", "d3d"), ("flightDistance3dSig", "d3dsig")):
        out[f"DeepCSV_{name}"] = np.where(is0, _leading_sv(svs, nj, key), _DEFAULT)

    # eta_rel of the SV tracks (the most significant tracks of the jet)
    n_eta = np.where(is0, np.minimum(sv_ntr, n_ch), 0)
    c_rank = jagged.rank_within(cj, charged["sip2d_sig"], descending=True)
    at_sv = c_rank < n_eta[cj]
    e_rank = jagged.rank_within(cj[at_sv], charged["etarel"][at_sv])
    mat = jagged.Slots(cj[at_sv], e_rank, nj, N_ETAREL).fill(charged["etarel"][at_sv], 0.0, np.float32)
    mat[:, n_eta == 0] = _DEFAULT
    for i in range(N_ETAREL):
        out[f"DeepCSV_trackEtaRel_{i}"] = mat[i]
    out["DeepCSV_jetNTracksEtaRel"] = n_eta

    for k, v in out.items():
        if k.startswith("DeepCSV_jetN") or k == "DeepCSV_vertexNTracks":
            v[no_tracks] = 0
        else:
            v[no_tracks] = _DEFAULT
    return out
