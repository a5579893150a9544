"""Sums of chunk results in their UHI form, added bin by bin without building ``Hist`` objects.

:class:`Partial` adds like :meth:`jetdask.result.Result.iadd` and gives the same
bits: for Double, Int64 and Weight storages with identical axes the bin arrays
are added elementwise (what ``hist`` addition does); any other case (growing
category axes that differ, Mean storages) goes through ``hist`` addition.
"""
from __future__ import annotations

import hist
import numpy as np
import uhi.io

from ..result import Result
from . import histcodec

ADDITIVE = ("double", "int", "weighted")


class Partial:
    """Histograms (UHI dicts), counters and array paths summed so far, plus the chunks summed."""

    __slots__ = ("hists", "counters", "array_files", "n_chunks")

    def __init__(self, hists=None, counters=None, array_files=None, n_chunks: int = 0):
        self.hists: dict[str, dict] = hists or {}
        self.counters: dict[str, float] = counters or {}
        self.array_files: dict[str, list[str]] = array_files or {}
        self.n_chunks = n_chunks

    @classmethod
    def from_blob(cls, blob: bytes, n_chunks: int = 1) -> "Partial":
        hists, counters, array_files = histcodec.decode(blob)
        return cls(hists, counters, array_files, n_chunks)

    @classmethod
    def from_result(cls, result: Result, n_chunks: int = 1) -> "Partial":
        return cls({k: h._to_uhi_() for k, h in result.hists.items()}, dict(result.counters),
                   {k: list(v) for k, v in result.array_files.items()}, n_chunks)

    def add(self, other: "Partial") -> "Partial":
        """``self += other`` (in place; ``other``'s arrays are never written)."""
        for k, ir in other.hists.items():
            self.hists[k] = add_ir(self.hists[k], ir) if k in self.hists else ir
        for k, v in other.counters.items():
            self.counters[k] = self.counters.get(k, 0) + v
        for k, paths in other.array_files.items():
            self.array_files.setdefault(k, []).extend(paths)
        self.n_chunks += other.n_chunks
        return self

    def to_blob(self) -> bytes:
        return histcodec.encode_ir(self.hists, self.counters, self.array_files)

    def to_result(self) -> Result:
        return Result({k: hist.Hist(ir) for k, ir in self.hists.items()}, dict(self.counters), {},
                      {k: list(v) for k, v in self.array_files.items()})


def add_ir(a: dict, b: dict) -> dict:
    """The UHI form of ``Hist(a) + Hist(b)``."""
    sa, sb = a["storage"], b["storage"]
    if sa["type"] in ADDITIVE and sa["type"] == sb["type"] and _same_axes(a["axes"], b["axes"]):
        keys = uhi.io.ARRAY_KEYS & sa.keys()
        if keys == uhi.io.ARRAY_KEYS & sb.keys():
            storage = {"type": sa["type"], **{k: np.add(sa[k], sb[k]) for k in keys}}
            return {**a, "storage": storage}
    return (hist.Hist(a) + hist.Hist(b))._to_uhi_()


def _same_axes(xs: list[dict], ys: list[dict]) -> bool:
    if len(xs) != len(ys):
        return False
    for x, y in zip(xs, ys):
        if x.keys() != y.keys():
            return False
        for k, v in x.items():
            w = y[k]
            if isinstance(v, np.ndarray) or isinstance(w, np.ndarray):
                if not np.array_equal(v, w):
                    return False
            elif v != w:
                return False
    return True
