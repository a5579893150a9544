"""Evaluating one correction on flat arrays: inputs by name, clamps counted, errors with context.

:class:`Evaluator` wraps a correction (or compound correction) of a loaded file. Inputs are given
by name (``ev(JetPt=pt, JetEta=eta, ...)``) and passed in the order the file declares, so an
official file whose input order differs still evaluates right. Before evaluating, every real input
that lies outside the range of the file's clamped binnings (``flow: "clamp"``) is counted into
``counters["clamp:<correction>:<input>"]`` (the run's counters); a value exactly on the last edge
is not a clamp. A correctionlib error becomes a :class:`CorrectionError` naming the file, the
correction and the inputs. Jagged columns are evaluated flat (:func:`flat`, :func:`unflat`).
"""
from __future__ import annotations

import awkward as ak
import numpy as np

from ..errors import JetdaskError
from .loader import FileRef, load


class CorrectionError(JetdaskError, ValueError):
    """A correction could not be evaluated (unknown name, a category the file lacks, bad input)."""

    def __init__(self, message: str, path: str | None = None, correction: str | None = None):
        super().__init__(message, path, correction)
        self.message = message
        self.path = path
        self.correction = correction

    def __str__(self) -> str:
        return self.message


def _edges(node) -> list:
    if isinstance(node, dict):   # UniformBinning
        return [float(node["low"]), float(node["high"])]
    return [float(e) for e in node]


def _collect_bounds(node, bounds: dict) -> None:
    """Input ranges of every clamped (Multi)Binning below ``node``."""
    if isinstance(node, dict):
        kind = node.get("nodetype")
        if kind == "binning" and node.get("flow") == "clamp":
            e = _edges(node["edges"])
            lo, hi = bounds.get(node["input"], (np.inf, -np.inf))
            bounds[node["input"]] = (min(lo, e[0]), max(hi, e[-1]))
        elif kind == "multibinning" and node.get("flow") == "clamp":
            for name, edges in zip(node["inputs"], node["edges"]):
                e = _edges(edges)
                lo, hi = bounds.get(name, (np.inf, -np.inf))
                bounds[name] = (min(lo, e[0]), max(hi, e[-1]))
        for value in node.values():
            if isinstance(value, (dict, list)):
                _collect_bounds(value, bounds)
    elif isinstance(node, list):
        for item in node:
            _collect_bounds(item, bounds)


def clamp_bounds(document: dict, name: str) -> dict:
    """``{input: (low, high)}`` of correction ``name`` (a compound: its stack) in a JSON document."""
    by_name = {c["name"]: c for c in document.get("corrections", [])}
    compounds = {c["name"]: c for c in document.get("compound_corrections", []) or []}
    bounds: dict = {}
    if name in compounds:
        for part in compounds[name]["stack"]:
            _collect_bounds(by_name[part]["data"], bounds)
    elif name in by_name:
        _collect_bounds(by_name[name]["data"], bounds)
    return bounds


class Evaluator:
    """One correction of one file, evaluated on numpy arrays with inputs by name."""

    def __init__(self, ref: FileRef, name: str):
        self.ref, self.name = ref, name
        loaded = load(ref)
        cset = loaded.cset
        try:
            self._corr = cset.compound[name] if name in cset.compound else cset[name]
        except (KeyError, IndexError):
            known = sorted(list(cset) + list(cset.compound))
            raise CorrectionError(f"{ref.path}: no correction {name!r}; the file has: {', '.join(known)}",
                                  ref.path, name) from None
        self.inputs = [v.name for v in self._corr.inputs]
        self.types = {v.name: v.type for v in self._corr.inputs}
        self.bounds = clamp_bounds(loaded.document, name)

    def __call__(self, counters: dict | None = None, **values) -> np.ndarray:
        missing = [n for n in self.inputs if n not in values]
        if missing:
            raise CorrectionError(f"{self.ref.path}: correction {self.name!r} needs input(s) {missing}; "
                                  f"given {sorted(values)}", self.ref.path, self.name)
        args = []
        for n in self.inputs:
            v = values[n]
            if self.types[n] == "string":
                args.append(v)
                continue
            a = np.asarray(v, dtype=np.int64 if self.types[n] == "int" else np.float64)
            if counters is not None and n in self.bounds and a.ndim:
                lo, hi = self.bounds[n]
                k = f"clamp:{self.name}:{n}"
                counters[k] = counters.get(k, 0) + int(np.count_nonzero((a < lo) | (a > hi)))
            args.append(a)
        try:
            return np.asarray(self._corr.evaluate(*args), dtype=np.float64)
        except Exception as err:  # noqa: BLE001 - correctionlib raises plain RuntimeError/IndexError
            shown = ", ".join(f"{n}={_show(values[n])}" for n in self.inputs)
            raise CorrectionError(f"{self.ref.path}: correction {self.name!r} failed ({err}) with {shown}",
                                  self.ref.path, self.name) from None


def _show(v) -> str:
    if isinstance(v, str):
        return repr(v)
    a = np.asarray(v)
    if a.ndim == 0:
        return repr(a.item())
    head = ", ".join(f"{x:.4g}" if isinstance(x, float) else str(x) for x in a[:3].tolist())
    return f"[{head}{', ...' if len(a) > 3 else ''}] ({len(a)} values)"


def flat(jagged) -> tuple[np.ndarray, np.ndarray]:
    """(flat values, counts per event) of a jagged array."""
    return np.asarray(ak.flatten(jagged, axis=1)), np.asarray(ak.num(jagged, axis=1))


def unflat(values, counts) -> ak.Array:
    return ak.unflatten(np.asarray(values), np.asarray(counts))


def segment_prod(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Product of ``values`` per event (1 for an event without entries)."""
    values = np.asarray(values, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.int64)
    out = np.ones(len(counts))
    nz = counts > 0
    if values.size and nz.any():
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[nz]
        out[nz] = np.multiply.reduceat(values, starts)
    return out
