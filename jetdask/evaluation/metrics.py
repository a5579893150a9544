"""Weighted ROC curves, AUC and the flavour discriminants on numpy arrays (no sklearn needed).

Flavour groups of the DeepJet classes: ``b`` = b + bb + lepb, ``c``, ``light`` = uds + g.
Discriminants (:mod:`jetdask.inference.discriminants`) and their signal / background:

=========  ========  ============
``BvsL``   b         light
``CvsB``   c         b
``CvsL``   c         light
=========  ========  ============
"""
from __future__ import annotations

import numpy as np

GROUPS = {"b": ("b", "bb", "lepb"), "c": ("c",), "light": ("uds", "g", "udsg", "l", "light")}
DISCRIMINANTS = {"BvsL": ("b", "light"), "CvsB": ("c", "b"), "CvsL": ("c", "light")}


def flavour_groups(labels: np.ndarray, classes) -> np.ndarray:
    """Group name (``"b"``, ``"c"``, ``"light"``, ``""`` for none) of each jet from its class index."""
    classes = list(classes)
    names = np.array(classes + [""], dtype=object)[np.where(labels >= 0, labels, len(classes))]
    out = np.full(len(labels), "", dtype=object)
    for g, members in GROUPS.items():
        out[np.isin(names, members)] = g
    return out


def discriminant_values(scores: np.ndarray, classes) -> dict:
    """``{"BvsL": ..., "CvsB": ..., "CvsL": ...}`` from class probabilities (N, C)."""
    classes = list(classes)
    grp = {g: sum((scores[:, classes.index(c)] for c in members if c in classes), np.zeros(len(scores)))
           for g, members in GROUPS.items()}
    out = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for name, (s, b) in DISCRIMINANTS.items():
            if not any(c in classes for c in GROUPS[s]) or not any(c in classes for c in GROUPS[b]):
                continue
            den = grp[s] + grp[b]
            out[name] = np.where(den > 0, grp[s] / np.where(den > 0, den, 1.0), -1.0)
    return out


def roc_curve(score: np.ndarray, is_signal: np.ndarray, weight: np.ndarray | None = None):
    """(background efficiency, signal efficiency, thresholds), thresholds decreasing; ties merged."""
    score = np.asarray(score, np.float64)
    sig = np.asarray(is_signal, bool)
    w = np.ones(len(score)) if weight is None else np.asarray(weight, np.float64)
    order = np.argsort(-score, kind="stable")
    s, y, w = score[order], sig[order], w[order]
    tp = np.cumsum(w * y)
    fp = np.cumsum(w * ~y)
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1] if len(s) else np.array([], int)
    tp, fp, thr = tp[last], fp[last], s[last]
    ts, fs = (tp[-1], fp[-1]) if len(tp) else (0.0, 0.0)
    tpr = np.r_[0.0, tp / ts if ts > 0 else tp * np.nan]
    fpr = np.r_[0.0, fp / fs if fs > 0 else fp * np.nan]
    return fpr, tpr, np.r_[np.inf, thr]


def auc(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """Area under the ROC curve (trapezoids)."""
    return float(np.trapezoid(tpr, fpr)) if hasattr(np, "trapezoid") else float(np.trapz(tpr, fpr))


def discriminant_rocs(scores: np.ndarray, labels: np.ndarray, classes, weight=None, counts=None) -> dict:
    """Per discriminant: ``{"fpr", "tpr", "auc", "n_signal", "n_background"}`` over the jets of its two groups.

    ``counts``: bootstrap multiplicities (replicas, jets) of :func:`.bootstrap.multiplicities`;
    with them each entry also has ``"auc_std"``, ``"auc_lo"``, ``"auc_hi"`` (68 % interval).
    """
    groups = flavour_groups(labels, classes)
    out = {}
    for name, values in discriminant_values(scores, classes).items():
        s, b = DISCRIMINANTS[name]
        sel = ((groups == s) | (groups == b)) & (values >= 0)
        if not (groups[sel] == s).any() or not (groups[sel] == b).any():
            continue
        fpr, tpr, _ = roc_curve(values[sel], groups[sel] == s, None if weight is None else weight[sel])
        out[name] = {"fpr": fpr, "tpr": tpr, "auc": auc(fpr, tpr), "n_signal": int((groups[sel] == s).sum()),
                     "n_background": int((groups[sel] == b).sum())}
        if counts is not None:
            from .bootstrap import bootstrap_auc, summary
            boot = summary(bootstrap_auc(values[sel], groups[sel] == s, None if weight is None else weight[sel],
                                         counts=counts[:, sel]))
            out[name].update(auc_std=boot["std"], auc_lo=boot["lo"], auc_hi=boot["hi"])
    return out
