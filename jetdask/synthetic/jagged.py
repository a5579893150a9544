"""Vectorised helpers for jagged data held as (counts, flat arrays).

The generator keeps every collection as a per-parent ``counts`` array plus flat
numpy arrays ordered by parent (event, or jet for per-jet candidates). These
helpers do the few operations it needs on that representation without a
Python loop over parents: offsets, parent and local indices, sorting inside a
parent, per-parent reductions and scattering into fixed-size slot matrices
(the 25-candidate / 4-SV tables of DeepJet).
"""
from __future__ import annotations

import numpy as np


def offsets(counts: np.ndarray) -> np.ndarray:
    """``[0, c0, c0+c1, ...]`` as int64, length ``len(counts) + 1``."""
    out = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def parent_index(counts: np.ndarray) -> np.ndarray:
    """For every flat element, the index of its parent."""
    return np.repeat(np.arange(len(counts), dtype=np.int64), counts)


def local_index(counts: np.ndarray) -> np.ndarray:
    """For every flat element, its position inside its parent (0, 1, ...)."""
    total = int(np.sum(counts))
    starts = offsets(counts)[:-1]
    return np.arange(total, dtype=np.int64) - np.repeat(starts, counts)


def _monotone_bits(key: np.ndarray) -> np.ndarray:
    """uint64 holding 32 bits that order like ``key`` as float32 (NaN last)."""
    bits = np.ascontiguousarray(key, dtype=np.float32).view(np.uint32).astype(np.uint64)
    negative = (bits & np.uint64(0x80000000)) != 0
    return np.where(negative, ~bits & np.uint64(0xFFFFFFFF), bits | np.uint64(0x80000000))


def sort_within(parent: np.ndarray, key: np.ndarray, descending: bool = False) -> np.ndarray:
    """Permutation that orders elements by parent, then by ``key`` inside a parent.

    ``parent`` (non-negative, < 2**32) need not be sorted; the result groups
    elements by parent in increasing parent order. Keys compare at float32
    precision; ties keep their original order (stable). One stable sort of a
    packed 64-bit key, several times faster than ``np.lexsort``.
    """
    k = -np.asarray(key, dtype=np.float64) if descending else key
    packed = (np.asarray(parent).astype(np.uint64) << np.uint64(32)) | _monotone_bits(k)
    return np.argsort(packed, kind="stable")


def rank_within(parent: np.ndarray, key: np.ndarray, descending: bool = False) -> np.ndarray:
    """Rank (0 = first) of every element inside its parent when ordered by ``key``.

    ``parent`` need not be sorted.
    """
    perm = sort_within(parent, key, descending)
    counts = np.bincount(parent, minlength=int(parent.max()) + 1 if len(parent) else 0)
    rank = np.empty(len(parent), dtype=np.int64)
    rank[perm] = local_index(counts)
    return rank


def segment_sum(parent: np.ndarray, values: np.ndarray, n_parents: int) -> np.ndarray:
    """Per-parent sum of ``values`` (float64)."""
    return np.bincount(parent, weights=values, minlength=n_parents)


class Slots:
    """Scatter flat per-element values into slot-major ``(n_slots, n_parents)`` matrices.

    Element ``i`` goes to column ``parent[i]``, row ``slot[i]``; elements with
    ``slot >= n_slots`` are dropped; empty cells hold ``fill``. Row ``k`` is the
    contiguous per-parent array of slot ``k`` (one DeepJet branch). The
    destination indices are computed once and reused for every feature.
    """

    def __init__(self, parent: np.ndarray, slot: np.ndarray, n_parents: int, n_slots: int):
        self.keep = slot < n_slots
        self.index = slot[self.keep] * n_parents + parent[self.keep]
        self.shape = (n_slots, n_parents)

    def fill(self, values: np.ndarray, fill=0, dtype=np.float32) -> np.ndarray:
        """The ``(n_slots, n_parents)`` matrix of ``values`` (``fill`` where empty)."""
        out = np.full(self.shape, fill, dtype=dtype)
        out.reshape(-1)[self.index] = values[self.keep]
        return out
