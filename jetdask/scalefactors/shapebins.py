"""Adaptive discriminant bins of the shape SF: sparse bins are measured together.

In each (pT, |eta|) bin the discriminant bins are scanned from the lowest up and closed into a
group as soon as the group's expected MC light jets (normalised as in the measurement) reach
``min_expected``; what is left open at the top joins the last closed group. Every bin of a
group gets the group's SF and uncertainties, so the exported grid stays the histogram's (a
fixed correctionlib MultiBinning) while no SF rests on a handful of jets. Pure functions.
"""
from __future__ import annotations

import numpy as np

MIN_EXPECTED = 10.0


def groups_1d(expected, min_expected: float = MIN_EXPECTED) -> np.ndarray:
    """Group id (the group's lowest bin) of each bin of one discriminant axis."""
    expected = np.nan_to_num(np.asarray(expected, float), nan=0.0)
    n = len(expected)
    ids = np.empty(n, dtype=int)
    start, acc, last_closed = 0, 0.0, None
    for i in range(n):
        acc += expected[i]
        if acc >= min_expected:
            ids[start:i + 1] = start
            last_closed = start
            start, acc = i + 1, 0.0
    if start < n:
        ids[start:] = last_closed if last_closed is not None else start
    return ids


def group_ids(expected, min_expected: float = MIN_EXPECTED) -> np.ndarray:
    """:func:`groups_1d` along the last axis of ``expected`` (abseta, pt, discriminant bin)."""
    expected = np.asarray(expected, float)
    out = np.empty(expected.shape, dtype=int)
    for idx in np.ndindex(expected.shape[:-1]):
        out[idx] = groups_1d(expected[idx], min_expected)
    return out


def slot_masks(ids: np.ndarray) -> list[np.ndarray]:
    """For each visible bin ``i``: a boolean mask over the with-flow discriminant slots (underflow,
    bins, overflow) of the group holding ``i``; the underflow goes with bin 0, the overflow with
    the last bin (as correctionlib's clamp reads them)."""
    n = ids.shape[-1]
    masks = []
    for i in range(n):
        same = ids == ids[..., i:i + 1]                        # (..., n) bins of i's group
        m = np.zeros(ids.shape[:-1] + (n + 2,), dtype=bool)
        m[..., 1:-1] = same
        m[..., 0] = same[..., 0]
        m[..., -1] = same[..., -1]
        masks.append(m)
    return masks


def in_mask(values, variances, mask):
    """``(group, rest)`` value and variance sums of the slots in ``mask``."""
    values, variances = np.asarray(values, float), np.asarray(variances, float)
    vb, wb = (values * mask).sum(-1), (variances * mask).sum(-1)
    return (vb, wb), (values.sum(-1) - vb, variances.sum(-1) - wb)


def merged(ids: np.ndarray) -> np.ndarray:
    """True for the bins that share their group with another bin."""
    n = ids.shape[-1]
    counts = np.stack([(ids == ids[..., i:i + 1]).sum(-1) for i in range(n)], axis=-1)
    return counts > 1
