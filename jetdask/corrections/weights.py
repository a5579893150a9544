"""Event-weight corrections of MC: pile-up and theory (muR/muF, ISR/FSR) variations.

Theory weights come from the NanoAOD arrays: ``LHEScaleWeight`` (9 entries in the order
``(muR, muF)`` = (0.5,0.5) (0.5,1) (0.5,2) (1,0.5) (1,1) (1,2) (2,0.5) (2,1) (2,2), or 8 without
the nominal) and ``PSWeight`` (4: ISR 2, FSR 2, ISR 0.5, FSR 0.5). Each variation is normalised
with the sum of its own weights over the processed events (:func:`theory_sums`, stored as run
counters ``sumw_<syst>``, applied at plotting time like the sum of ``genWeight``), so that only
its shape effect remains.
"""
from __future__ import annotations

import awkward as ak
import numpy as np

from .evaluate import CorrectionError, Evaluator

#: LHEScaleWeight index of each variation, for 9 and 8 stored entries
SCALE_INDEX = {9: {"muRUp": 7, "muRDown": 1, "muFUp": 5, "muFDown": 3, "muRmuFUp": 8, "muRmuFDown": 0},
               8: {"muRUp": 6, "muRDown": 1, "muFUp": 4, "muFDown": 3, "muRmuFUp": 7, "muRmuFDown": 0}}
PS_INDEX = {"isrUp": 0, "fsrUp": 1, "isrDown": 2, "fsrDown": 3}
THEORY = tuple(SCALE_INDEX[9]) + tuple(PS_INDEX)


def pileup(cfg, events, counters: dict) -> dict:
    """``{"nominal"|"up"|"down": per-event weight}`` at ``Pileup_nTrueInt``."""
    block = cfg.blocks["pileup"]
    if "Pileup" not in events.fields or "nTrueInt" not in events.Pileup.fields:
        raise CorrectionError("pile-up weights need Pileup_nTrueInt, not in this file", block["file"].path,
                              block["correction"])
    ev = Evaluator(block["file"], block["correction"])
    n = np.asarray(events.Pileup.nTrueInt, dtype=np.float64)
    return {k: ev(counters, NumTrueInteractions=n, weights=k) for k in ("nominal", "up", "down")}


def _table(events, branch: str, sizes) -> np.ndarray:
    if branch not in events.fields:
        raise CorrectionError(f"theory variations need {branch}, not in this file")
    arr = events[branch]
    counts = np.asarray(ak.num(arr, axis=1))
    if len(counts) == 0:
        return np.zeros((0, max(sizes)))
    n = int(counts[0])
    if n not in sizes or np.any(counts != n):
        raise CorrectionError(f"{branch}: expected {' or '.join(map(str, sizes))} entries per event, "
                              f"got {sorted(set(counts.tolist()))[:5]}")
    return np.asarray(ak.flatten(arr), dtype=np.float64).reshape(len(counts), n)


def theory(cfg, events, wanted) -> dict:
    """``{syst: per-event weight}`` for the theory variations in ``wanted`` (e.g. ``"muRUp"``)."""
    block = cfg.blocks["theory"]
    out = {}
    need_scale = [w for w in wanted if w in SCALE_INDEX[9]]
    need_ps = [w for w in wanted if w in PS_INDEX]
    if need_scale:
        t = _table(events, block.get("scale", "LHEScaleWeight"), (9, 8))
        idx = SCALE_INDEX[t.shape[1]]
        out.update({w: t[:, idx[w]] for w in need_scale})
    if need_ps:
        t = _table(events, block.get("ps", "PSWeight"), (4,))
        out.update({w: t[:, PS_INDEX[w]] for w in need_ps})
    return out


def theory_sums(gen_weight: np.ndarray, weights: dict) -> dict:
    """Run counters ``sumw_<syst>``: sum of genWeight x the variation over the chunk's events."""
    return {f"sumw_{k}": float(np.sum(gen_weight * v)) for k, v in weights.items()}
