"""Bootstrap uncertainty of a weighted AUC: resample the jets with replacement, seeded.

Each replica draws N jets out of N with replacement (the multiplicities multiply the jet
weights); its AUC is the weighted pair-count AUC (ties count one half), which equals the
trapezoid AUC of :func:`jetdask.evaluation.metrics.roc_curve`. Replicas are computed together
on the jets sorted once by score (O(replicas x N) memory in blocks), so 200 replicas of 20k jets
take a fraction of a second. The same ``seed`` and jet count give the same multiplicities:
AUCs of one jet set under different input distortions are resampled together, so their
differences keep their correlation.

:func:`delong_std` is the analytic (DeLong) standard error of an unweighted AUC, a
cross-check of the bootstrap width.
"""
from __future__ import annotations

import numpy as np

DEFAULT_REPLICAS = 200
DEFAULT_SEED = 12345
_BLOCK = 32


def multiplicities(n: int, replicas: int = DEFAULT_REPLICAS, seed: int = DEFAULT_SEED) -> np.ndarray:
    """(replicas, n) counts of each jet in each bootstrap replica (rows sum to n)."""
    rng = np.random.default_rng(seed)
    out = np.empty((replicas, n), np.float64)
    for r in range(replicas):
        out[r] = np.bincount(rng.integers(0, n, n), minlength=n)
    return out


def _pair_auc(score, sig, w) -> np.ndarray:
    """Weighted pair-count AUC for each row of ``w`` (replicas, n)."""
    order = np.argsort(score, kind="stable")
    s, y, w = score[order], sig[order], w[:, order]
    starts = np.r_[0, np.flatnonzero(np.diff(s) != 0) + 1]      # groups of equal score
    ws = np.add.reduceat(w * y, starts, axis=1)
    wb = np.add.reduceat(w * ~y, starts, axis=1)
    below = np.cumsum(wb, axis=1) - wb                            # background weight below each group
    tot_s, tot_b = ws.sum(axis=1), wb.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (ws * (below + 0.5 * wb)).sum(axis=1) / (tot_s * tot_b)


def bootstrap_auc(score, is_signal, weight=None, replicas: int = DEFAULT_REPLICAS, seed: int = DEFAULT_SEED,
                  counts: np.ndarray | None = None) -> np.ndarray:
    """AUC of each bootstrap replica (``replicas`` values; ``counts`` from :func:`multiplicities` to reuse)."""
    score = np.asarray(score, np.float64)
    sig = np.asarray(is_signal, bool)
    w = np.ones(len(score)) if weight is None else np.asarray(weight, np.float64)
    if counts is None:
        counts = multiplicities(len(score), replicas, seed)
    out = [_pair_auc(score, sig, counts[i:i + _BLOCK] * w) for i in range(0, len(counts), _BLOCK)]
    return np.concatenate(out) if out else np.zeros(0)


def summary(aucs: np.ndarray) -> dict:
    """``{"std", "lo", "hi"}``: standard deviation and the central 68 % interval of the replicas."""
    a = np.asarray(aucs, np.float64)
    a = a[np.isfinite(a)]
    if len(a) < 2:
        return {"std": float("nan"), "lo": float("nan"), "hi": float("nan")}
    lo, hi = np.percentile(a, [15.865, 84.135])
    return {"std": float(a.std(ddof=1)), "lo": float(lo), "hi": float(hi)}


def delong_std(score, is_signal) -> float:
    """Analytic (DeLong) standard error of the unweighted AUC: the variance of each signal jet's
    fraction of background below it over n_signal, plus the same for the background jets."""
    from scipy.stats import rankdata
    score = np.asarray(score, np.float64)
    sig = np.asarray(is_signal, bool)
    n_s, n_b = int(sig.sum()), int((~sig).sum())
    if n_s < 2 or n_b < 2:
        return float("nan")
    r = rankdata(score)
    v10 = (r[sig] - rankdata(score[sig])) / n_b
    v01 = 1.0 - (r[~sig] - rankdata(score[~sig])) / n_s
    return float(np.sqrt(v10.var(ddof=1) / n_s + v01.var(ddof=1) / n_b))
