"""Flavour discriminants from the six class scores (b, bb, lepb, c, uds, g).

============  =========================================
``BvsL``      (b+bb+lepb) / (b+bb+lepb+uds+g)
``CvsB``      c / (c+b+bb+lepb)
``CvsL``      c / (c+uds+g)
``BvsC``      (b+bb+lepb) / (b+bb+lepb+c)
============  =========================================

The value is **-1** (undefined) where the denominator is 0 or any input score is negative
(the -1 that the inference pass writes for jets it did not evaluate, or NanoAOD's -1
defaults). Inputs: anything indexable by class name (an awkward record array such as
``events.Jet["mytagger"]``, a dict of numpy arrays); outputs have the inputs' type and shape.

Official NanoAOD DeepJet branches (:func:`official_scores`, :func:`official_bvsl`):
standard NanoAOD has ``btagDeepFlavB`` (= b+bb+lepb, i.e. BvsAll), ``btagDeepFlavCvB``,
``btagDeepFlavCvL`` and ``btagDeepFlavQG`` (g/(g+uds)); PFNano adds the nodes
``btagDeepFlavB_b/_bb/_lepb``, ``btagDeepFlavC``, ``btagDeepFlavUDS``, ``btagDeepFlavG``.
With the nodes every discriminant above is exact. Without them, BvsL is recovered from
B and CvB, using that the nodes sum to 1: c = CvB B / (1 - CvB), L = uds+g = 1 - B - c,
BvsL = B / (B + L) (NanoAOD stores scores with a 10-bit mantissa, so this holds to ~1e-3;
-1 where B or CvB is negative); CvsL and CvsB are the stored branches; the b / bb / lepb
split and BvsC beyond B and CvB (BvsC = 1 - CvB) need the nodes.
Older NanoAOD (v5/v6, e.g. 2018 ``102X``) stores ``btagDeepFlavB`` and ``btagDeepFlavC`` (= c)
instead of CvB/CvL: with light = 1 - B - C, BvsL = B / (1 - C), CvsB = C / (C + B),
CvsL = C / (1 - B), BvsC = B / (B + C) (:func:`from_b_and_c`; -1 where B or C is negative or a
denominator is not positive). Priority: nodes, then the stored CvB/CvL, then B and C.
"""
from __future__ import annotations

import awkward as ak
import numpy as np

B_CLASSES = ("b", "bb", "lepb")
NAMES = ("BvsL", "CvsB", "CvsL", "BvsC")


def _where(cond, a, b):
    if any(isinstance(x, ak.Array) for x in (cond, a, b)):
        return ak.where(cond, a, b)
    return np.where(cond, a, b)


def _ratio(num, den, inputs):
    bad = den <= 0
    for x in inputs:
        bad = bad | (x < 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _where(bad, -1.0, num / _where(bad, 1.0, den))


def _get(scores, k):
    return scores[k]


def bvsl(scores):
    """BvsL = (b+bb+lepb) / (b+bb+lepb+uds+g); -1 where undefined (see the module)."""
    b = [_get(scores, k) for k in B_CLASSES]
    light = [_get(scores, "uds"), _get(scores, "g")]
    nb = b[0] + b[1] + b[2]
    return _ratio(nb, nb + light[0] + light[1], b + light)


def cvsb(scores):
    """CvsB = c / (c+b+bb+lepb); -1 where undefined."""
    b = [_get(scores, k) for k in B_CLASSES]
    c = _get(scores, "c")
    return _ratio(c, c + b[0] + b[1] + b[2], b + [c])


def cvsl(scores):
    """CvsL = c / (c+uds+g); -1 where undefined."""
    c, uds, g = _get(scores, "c"), _get(scores, "uds"), _get(scores, "g")
    return _ratio(c, c + uds + g, [c, uds, g])


def bvsc(scores):
    """BvsC = (b+bb+lepb) / (b+bb+lepb+c); -1 where undefined."""
    b = [_get(scores, k) for k in B_CLASSES]
    c = _get(scores, "c")
    nb = b[0] + b[1] + b[2]
    return _ratio(nb, nb + c, b + [c])


FUNCTIONS = {"BvsL": bvsl, "CvsB": cvsb, "CvsL": cvsl, "BvsC": bvsc}


def discriminant(scores, name: str):
    return FUNCTIONS[name](scores)


def discriminants(scores) -> dict:
    """All four, as a dict name -> array."""
    return {n: f(scores) for n, f in FUNCTIONS.items()}


def has_classes(classes) -> bool:
    return set(B_CLASSES + ("c", "uds", "g")) <= set(classes)


# ----------------------------------------------------------------------------- official NanoAOD

NODE_BRANCHES = {"b": "btagDeepFlavB_b", "bb": "btagDeepFlavB_bb", "lepb": "btagDeepFlavB_lepb",
                 "c": "btagDeepFlavC", "uds": "btagDeepFlavUDS", "g": "btagDeepFlavG"}


def official_scores(jets) -> dict | None:
    """The six DeepJet nodes from PFNano's ``btagDeepFlav*`` node branches, or None without them."""
    fields = set(getattr(jets, "fields", []) or [])
    if not set(NODE_BRANCHES.values()) <= fields:
        return None
    return {k: jets[v] for k, v in NODE_BRANCHES.items()}


def official_bvsl(jets):
    """DeepJet BvsL from the official branches: exact from the nodes, else from B and CvB (see above)."""
    nodes = official_scores(jets)
    if nodes is not None:
        return bvsl(nodes)
    fields = set(getattr(jets, "fields", []) or [])
    if not {"btagDeepFlavCvB", "btagDeepFlavCvL"} <= fields and "btagDeepFlavC" in fields:
        return from_b_and_c(jets["btagDeepFlavB"], jets["btagDeepFlavC"])["BvsL"]
    B, cvb, cvl = jets["btagDeepFlavB"], jets["btagDeepFlavCvB"], jets["btagDeepFlavCvL"]
    bad = (B < 0) | (cvb < 0) | (cvb > 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = cvb * B / _where(cvb < 1, 1.0 - cvb, 1.0)
        light = 1.0 - B - c
        light = _where(light > 0, light, 0.0)
        den = B + light
        value = _where(den > 0, B / _where(den > 0, den, 1.0), -1.0)
        # CvB = 1 means B = 0: BvsL is 0 if there is any light score (CvL < 1), else undefined
        value = _where(cvb >= 1, _where((cvl >= 0) & (cvl < 1), 0.0, -1.0), value)
        return _where(bad, -1.0, value)


def from_b_and_c(B, C) -> dict:
    """BvsL, CvsB, CvsL, BvsC from the B (b+bb+lepb) and C (c) scores, the nodes summing to 1."""
    light = 1.0 - B - C
    light = _where(light > 0, light, 0.0)
    return {"BvsL": _ratio(B, B + light, [B, C]), "CvsB": _ratio(C, C + B, [B, C]),
            "CvsL": _ratio(C, C + light, [B, C]), "BvsC": _ratio(B, B + C, [B, C])}


def official_discriminants(jets) -> dict:
    """What the NanoAOD branches give: BvsL (exact or derived), CvsB, CvsL, BvsC (see above)."""
    nodes = official_scores(jets)
    if nodes is not None:
        return discriminants(nodes)
    fields = set(getattr(jets, "fields", []) or [])
    if not {"btagDeepFlavCvB", "btagDeepFlavCvL"} <= fields and "btagDeepFlavC" in fields:
        return from_b_and_c(jets["btagDeepFlavB"], jets["btagDeepFlavC"])
    cvb = jets["btagDeepFlavCvB"]
    return {"BvsL": official_bvsl(jets), "CvsB": cvb, "CvsL": jets["btagDeepFlavCvL"],
            "BvsC": _where(cvb < 0, -1.0, 1.0 - cvb)}
