"""Kinematic and class reweighting from 2D (pT, eta) histograms per class.

**Map** (pass 1, per chunk): a ``hist.Hist`` with axes ``cls`` (class index), ``split``
(0 train, 1 validation, 2 test), ``pt`` and ``eta`` (``|eta|`` when ``abs_eta``) on the fine
binning of the config is filled with the cleaned, labelled jets (values outside the range
are clipped into the first/last bin). The engine adds the chunk histograms.

**Reduce** (client, :func:`compute_weights`) on the histogram of ``source_split``:

1. *Binning*: equal-width (``{n, lo, hi}``), log-spaced (``log: true``) or custom edges.
   Per class, bins are **merged until populated**: eta rows are merged, low to high, until
   each group of rows holds at least ``min_count`` jets of the class (a remainder joins the
   last group); inside each group of rows, pT bins are merged the same way. Each class thus
   gets its own partition of the fine grid into groups of >= ``min_count`` jets (one group
   when the class has fewer than ``min_count`` jets).
2. *Target* density ``T`` on the fine grid (normalised to 1): ``average`` (mean over the
   classes of each class's normalised histogram), ``flat`` (uniform per unit pT x eta area)
   or a class name (that class's normalised histogram: the reference flavour).
3. *Weights* of class c in group G: ``w = T(G) / H_c(G)`` (sums over the cells of G), so the
   weighted histogram of c equals the target in every group. Normalisation per ``correct``:
   ``kinematics`` (sum of weights of c = its number of jets: shapes corrected, class
   fractions kept), ``both`` (sum = total / number of classes: shapes and class imbalance)
   or ``classes`` (no shape correction: constant ``N_total / (K N_c)`` per class).
   ``max_weight`` clips afterwards (breaks the exact closure; off by default).

**Lookup** (pass 2, :meth:`WeightMap.lookup`): the weight of a jet is that of its class in
its fine cell; the map travels to the workers as ``weights.json`` (:meth:`WeightMap.to_json`).
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np

from ..atomicwrite import write_json


def edges_from_spec(spec) -> np.ndarray:
    """Bin edges from ``[e0, e1, ...]`` or ``{n, lo, hi, log}``."""
    if isinstance(spec, (list, tuple, np.ndarray)):
        return np.asarray(spec, dtype=np.float64)
    if "edges" in spec:
        return np.asarray(spec["edges"], dtype=np.float64)
    n, lo, hi = int(spec["n"]), float(spec["lo"]), float(spec["hi"])
    if spec.get("log"):
        return np.geomspace(lo, hi, n + 1)
    return np.linspace(lo, hi, n + 1)


def clip_into(x, edges) -> np.ndarray:
    """Values clipped into ``[edges[0], edges[-1])`` (under/overflow go to the first/last bin)."""
    return np.clip(np.asarray(x, dtype=np.float64), edges[0], np.nextafter(edges[-1], -np.inf))


def bin_index(x, edges) -> np.ndarray:
    """Bin of each (clipped) value: ``edges[i] <= x < edges[i+1]``, as ``hist`` bins it."""
    i = np.searchsorted(edges, clip_into(x, edges), side="right") - 1
    return np.clip(i, 0, len(edges) - 2)


def make_hist(n_classes: int, pt_edges, eta_edges, eta_label: str = "|eta|"):
    import hist
    return hist.Hist(hist.axis.IntCategory(list(range(n_classes)), name="cls", label="class"),
                     hist.axis.IntCategory([0, 1, 2], name="split", label="split"),
                     hist.axis.Variable(pt_edges, name="pt", label="pT [GeV]"),
                     hist.axis.Variable(eta_edges, name="eta", label=eta_label),
                     storage=hist.storage.Weight())


def fill_hist(h, cls, split, pt, eta, pt_edges, eta_edges, weight=None) -> None:
    if len(cls) == 0:
        return
    h.fill(cls=np.asarray(cls, np.int64), split=np.asarray(split, np.int64), pt=clip_into(pt, pt_edges),
           eta=clip_into(eta, eta_edges), weight=weight)


def _runs(counts, min_count) -> list[list[int]]:
    """Contiguous runs of indices, low to high, each holding >= min_count (remainder joins the last run)."""
    runs, cur, acc = [], [], 0.0
    for i, v in enumerate(counts):
        cur.append(i)
        acc += float(v)
        if acc >= min_count:
            runs.append(cur)
            cur, acc = [], 0.0
    if cur:
        if runs:
            runs[-1].extend(cur)
        else:
            runs.append(cur)
    return runs


def group_cells(counts2d: np.ndarray, min_count: float) -> np.ndarray:
    """Group id per fine cell ``(n_pt, n_eta)``: rows of eta merged, then pT bins in each row group."""
    counts2d = np.asarray(counts2d, dtype=np.float64)
    groups = np.empty(counts2d.shape, dtype=np.int64)
    gid = 0
    for rows in _runs(counts2d.sum(axis=0), min_count):
        for cols in _runs(counts2d[:, rows].sum(axis=1), min_count):
            groups[np.ix_(cols, rows)] = gid
            gid += 1
    return groups


def target_density(counts: np.ndarray, target: str, classes: list[str], pt_edges, eta_edges) -> np.ndarray:
    """Normalised target on the fine grid (see the module docstring)."""
    n = counts.sum(axis=(1, 2))
    if target == "flat":
        area = np.outer(np.diff(pt_edges), np.diff(eta_edges))
        return area / area.sum()
    if target == "average":
        present = n > 0
        if not present.any():
            return np.zeros(counts.shape[1:])
        dens = counts[present] / n[present][:, None, None]
        return dens.mean(axis=0)
    r = classes.index(target)
    if n[r] <= 0:
        raise ValueError(f"the reference class {target!r} has no jets in the reweighting histogram")
    return counts[r] / n[r]


@dataclasses.dataclass
class WeightMap:
    classes: list
    pt_edges: np.ndarray
    eta_edges: np.ndarray
    abs_eta: bool
    weights: np.ndarray        # (K, n_pt, n_eta)
    groups: np.ndarray         # (K, n_pt, n_eta) group id per class
    target: np.ndarray         # (n_pt, n_eta), sums to 1
    counts: np.ndarray         # (K, n_pt, n_eta) source histogram
    info: dict = dataclasses.field(default_factory=dict)

    def lookup(self, cls, pt, eta) -> np.ndarray:
        """Weight per jet (``cls`` >= 0)."""
        cls = np.asarray(cls, dtype=np.int64)
        if len(cls) == 0:
            return np.zeros(0)
        eta = np.abs(eta) if self.abs_eta else np.asarray(eta)
        return self.weights[cls, bin_index(pt, self.pt_edges), bin_index(eta, self.eta_edges)]

    def to_json(self) -> dict:
        return {"classes": list(self.classes), "pt_edges": self.pt_edges.tolist(),
                "eta_edges": self.eta_edges.tolist(), "abs_eta": self.abs_eta,
                "weights": self.weights.tolist(), "groups": self.groups.tolist(),
                "target": self.target.tolist(), "counts": self.counts.tolist(), "info": self.info}

    @classmethod
    def from_json(cls, d: dict) -> "WeightMap":
        return cls(list(d["classes"]), np.asarray(d["pt_edges"], float), np.asarray(d["eta_edges"], float),
                   bool(d["abs_eta"]), np.asarray(d["weights"], float), np.asarray(d["groups"], np.int64),
                   np.asarray(d["target"], float), np.asarray(d["counts"], float), dict(d.get("info", {})))

    def save(self, path: str) -> None:
        write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str) -> "WeightMap":
        with open(path) as f:
            return cls.from_json(json.load(f))

    @classmethod
    def unit(cls, classes, pt_edges, eta_edges, abs_eta=True) -> "WeightMap":
        """All weights 1 (reweighting disabled)."""
        shape = (len(classes), len(pt_edges) - 1, len(eta_edges) - 1)
        return cls(list(classes), np.asarray(pt_edges, float), np.asarray(eta_edges, float), abs_eta,
                   np.ones(shape), np.zeros(shape, np.int64), np.full(shape[1:], 1.0 / np.prod(shape[1:])),
                   np.zeros(shape), {"enabled": False})


def compute_weights(counts, classes, pt_edges, eta_edges, *, target="average", correct="both",
                    min_count=20, max_weight=None, abs_eta=True) -> WeightMap:
    """The :class:`WeightMap` from source histograms ``counts[class, pt, eta]``."""
    counts = np.asarray(counts, dtype=np.float64)
    pt_edges, eta_edges = np.asarray(pt_edges, float), np.asarray(eta_edges, float)
    k = counts.shape[0]
    n = counts.sum(axis=(1, 2))
    present = n > 0
    k_eff = max(int(present.sum()), 1)
    n_tot = float(n.sum())
    T = target_density(counts, target, list(classes), pt_edges, eta_edges)
    weights = np.zeros_like(counts)
    groups = np.zeros(counts.shape, dtype=np.int64)
    for c in range(k):
        groups[c] = group_cells(counts[c], min_count)
        if not present[c]:
            continue
        if correct == "classes":
            weights[c] = n_tot / (k_eff * n[c])
            continue
        g = groups[c].ravel()
        h_g = np.bincount(g, weights=counts[c].ravel())
        t_g = np.bincount(g, weights=T.ravel())
        ratio = np.divide(t_g, h_g, out=np.zeros_like(t_g), where=h_g > 0)
        w = ratio[groups[c]]
        norm = n[c] if correct == "kinematics" else n_tot / k_eff
        s = float((counts[c] * w).sum())
        weights[c] = w * (norm / s) if s > 0 else 0.0
    if max_weight is not None:
        weights = np.minimum(weights, float(max_weight))
    info = {"target": target, "correct": correct, "min_count": min_count, "max_weight": max_weight,
            "n_groups": [int(groups[c].max()) + 1 for c in range(k)], "source_counts": n.tolist()}
    return WeightMap(list(classes), pt_edges, eta_edges, abs_eta, weights, groups, T, counts, info)


def from_config(h, classes, rcfg: dict) -> WeightMap:
    """:func:`compute_weights` from the merged pass-1 histogram and the ``reweighting`` section."""
    from .split import SPLITS
    pt_edges, eta_edges = h.axes["pt"].edges, h.axes["eta"].edges
    vals = h.values()  # (cls, split, pt, eta)
    if rcfg["source_split"] == "all":
        counts = vals.sum(axis=1)
    else:
        counts = vals[:, SPLITS.index(rcfg["source_split"])]
    if not rcfg["enabled"]:
        wm = WeightMap.unit(classes, pt_edges, eta_edges, rcfg["abs_eta"])
        wm.counts = counts
        return wm
    return compute_weights(counts, classes, pt_edges, eta_edges, target=rcfg["target"], correct=rcfg["correct"],
                           min_count=rcfg["min_count"], max_weight=rcfg["max_weight"], abs_eta=rcfg["abs_eta"])


def closure_chi2(wm: WeightMap, c: int, pt, eta, w) -> tuple[float, int]:
    """chi2 and ndf of the weighted (pT, eta) distribution of class ``c`` against the target.

    ``pt, eta, w``: jets of class ``c`` from a sample distributed like the source histogram
    (e.g. the validation split when the weights come from the training split), with their
    weights. Per group G of the class: observed ``O = sum w``; expected
    ``E = T(G) * S_c * n / H_c`` where ``S_c`` is the weighted sum of the source histogram,
    ``H_c`` its number of jets and ``n`` that of the sample (no fitted normalisation: a few
    high-weight groups would otherwise pull every other one); variance ``sum w^2 + O^2 / H_c(G)``
    (the sample's own fluctuation and that of the source histogram through the weight).
    ndf = groups with jets. On the source sample itself chi2 is 0 (exact closure).
    """
    eta = np.abs(eta) if wm.abs_eta else np.asarray(eta)
    w = np.asarray(w, dtype=np.float64)
    g_cell = wm.groups[c]
    g = g_cell[bin_index(pt, wm.pt_edges), bin_index(eta, wm.eta_edges)]
    ng = int(g_cell.max()) + 1
    O = np.bincount(g, weights=w, minlength=ng)  # noqa: E741 - the docstring's O (observed)
    W2 = np.bincount(g, weights=w ** 2, minlength=ng)
    T = np.bincount(g_cell.ravel(), weights=wm.target.ravel(), minlength=ng)
    H = np.bincount(g_cell.ravel(), weights=wm.counts[c].ravel(), minlength=ng)
    h_tot = float(wm.counts[c].sum())
    s_c = float((wm.counts[c] * wm.weights[c]).sum())
    if h_tot <= 0 or T.sum() <= 0:
        return 0.0, 0
    E = T / T.sum() * s_c * len(w) / h_tot
    use = (H > 0) & (W2 > 0)
    if not use.any():
        return 0.0, 0
    var = W2[use] + O[use] ** 2 / H[use]
    return float(((O[use] - E[use]) ** 2 / var).sum()), int(use.sum())
