"""Deterministic train/validation/test assignment from (run, luminosityBlock, event).

Each event gets ``u`` uniform in [0, 1) from a chained splitmix64 hash::

    h = splitmix64(seed);  h = splitmix64(h ^ run);  h = splitmix64(h ^ lumi);  h = splitmix64(h ^ event)
    u = (h >> 11) * 2**-53

and goes to ``train`` if ``u < f_train``, ``validation`` if ``u < f_train + f_validation``,
else ``test``. All jets of an event share its split (no leakage of an event between
splits), and a jet's split depends only on its event ids and the seed: never on the
chunking, the order of files or the worker. Vectorised numpy ``uint64`` arithmetic
(wrapping multiplication, as in the reference C implementation).
"""
from __future__ import annotations

import numpy as np

SPLITS = ("train", "validation", "test")
TRAIN, VALIDATION, TEST = 0, 1, 2

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def splitmix64(x) -> np.ndarray:
    """The splitmix64 finaliser of ``x + golden gamma`` on a uint64 array."""
    z = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = z + _GAMMA
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def event_hash(run, lumi, event, seed: int = 0) -> np.ndarray:
    run = np.asarray(run).astype(np.uint64)
    h = splitmix64(np.full(run.shape, int(seed), dtype=np.uint64))
    h = splitmix64(h ^ run)
    h = splitmix64(h ^ np.asarray(lumi).astype(np.uint64))
    return splitmix64(h ^ np.asarray(event).astype(np.uint64))


def uniform(run, lumi, event, seed: int = 0) -> np.ndarray:
    """Per-event uniform numbers in [0, 1) (53-bit resolution)."""
    return (event_hash(run, lumi, event, seed) >> np.uint64(11)).astype(np.float64) * (2.0 ** -53)


def assign(u, fractions) -> np.ndarray:
    """Split index (0 train, 1 validation, 2 test) from ``u`` and ``{"train": f, "validation": f, ...}``."""
    u = np.asarray(u, dtype=np.float64)
    a = float(fractions["train"])
    b = a + float(fractions["validation"])
    out = np.full(u.shape, TEST, dtype=np.int8)
    out[u < b] = VALIDATION
    out[u < a] = TRAIN
    return out


def event_splits(run, lumi, event, splits_cfg: dict) -> np.ndarray:
    """Split index per event from the ``splits`` config section."""
    return assign(uniform(run, lumi, event, splits_cfg.get("seed", 0)), splits_cfg)
