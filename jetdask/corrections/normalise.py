"""Plotting-time normalisation of every variation: theory sums and the b-tag SF normalisation.

For an MC data set and a variation ``v`` the histograms are scaled by

* ``xsec x lumi / sumw_v``: ``sumw_v`` is the run counter ``sumw_<v>`` (the sum of genWeight x
  the theory weight over the processed events) for theory variations, the usual sum of
  genWeight otherwise (:func:`jetdask.plotting.normalisation.normalisation`);
* x the b-tag shape-SF normalisation ``k_v(n) = Σw before / Σw after`` of the events with ``n``
  selected jets, from the run's ``btag_sumw`` histogram (per data set, variation and jet
  multiplicity), when ``btag_norm`` (default): the shape SFs then keep the yield before tagging
  of every jet multiplicity. How a histogram gets it depends on what it knows
  (:func:`btag_factor`): one with a jet-multiplicity axis (``njet``, e.g. the DY study's
  ``n_jets``) gets ``k_v(n)`` bin by bin; a per-jet histogram (``label="Jets"``) the factor
  that applies ``k_v(n)`` to each jet of an event with ``n`` jets, summed over the histogram,
  ``Σ_n n·Σw_before(n) / Σ_n n·Σw_after(n)`` (its total is then exact, its shape within a
  multiplicity unchanged); any other histogram the inclusive ``Σw before / Σw after``.
  :func:`variation_scales` (one number per data set and variation, used by the scale-factor
  fits) keeps the inclusive factor. The table per jet multiplicity is :func:`btag_norm_table`.

Data sets of collision data get 1 for every variation.
"""
from __future__ import annotations

import numpy as np

from ..plotting.normalisation import normalisation


def syst_names_of(hists: dict) -> list[str]:
    """The ``syst`` categories of a dataset's histograms (first histogram that has the axis)."""
    for h in hists.values():
        if "syst" in h.axes.name:
            return [str(c) for c in h.axes["syst"]]
    return ["nominal"]


def btag_norm_table(h) -> dict:
    """``{syst: ratios per jet multiplicity}`` (Σw before / Σw after; 1 where nothing was selected)."""
    out = {}
    for i, s in enumerate(h.axes["syst"]):
        v = h.view(flow=True)["value"][i]
        before, after = v[0], v[1]
        out[str(s)] = np.where(after != 0, before / np.where(after != 0, after, 1.0), 1.0)
    return out


def btag_norm(h, syst: str) -> float:
    """Σw before / Σw after the b-tag SF of variation ``syst``, all multiplicities."""
    i = [str(c) for c in h.axes["syst"]].index(syst)
    v = h.view(flow=True)["value"][i]
    after = float(v[1].sum())
    return float(v[0].sum()) / after if after else 1.0


def btag_sums(h, syst: str) -> dict:
    """``{stage: per-multiplicity sums}`` of variation ``syst`` in a ``btag_sumw`` histogram (the
    last entry is the overflow, ``NJET_MAX`` or more jets). A run written before the jet-weighted
    stages existed gets ``n·Σw`` with the bin's multiplicity (the overflow bin counted as ``NJET_MAX``)."""
    i = [str(c) for c in h.axes["syst"]].index(syst)
    v = h.view(flow=True)["value"][i]
    stages = [str(c) for c in h.axes["stage"]]
    out = {st: np.asarray(v[k], dtype=float) for k, st in enumerate(stages)}
    n = np.arange(len(out["before"]), dtype=float)
    for st in ("before", "after"):
        out.setdefault(f"{st}_jets", n * out[st])
    return out


def _ratio(before, after) -> float:
    after = float(np.sum(after))
    return float(np.sum(before)) / after if after else 1.0


def btag_factor(h_sumw, syst: str, target) -> float | np.ndarray:
    """The b-tag normalisation factor of histogram ``target`` (a 1D-able ``hist.Hist`` of one data
    set) for variation ``syst``: an array over ``target``'s value axis with its flow bins (underflow
    first, zero-padded as :func:`jetdask.plotting.hists.with_flow`) when that axis is ``njet``; a
    number otherwise (per-jet or inclusive, see the module docstring)."""
    sums = btag_sums(h_sumw, syst)
    names = [n for n in target.axes.name if n not in ("syst", "channel", "flavour")]
    if names == ["njet"]:
        ax = target.axes["njet"]
        lows = np.asarray(ax.edges[:-1], dtype=float)
        top = len(sums["before"]) - 1                  # overflow bin of btag_sumw
        ks = [_bin_ratio(sums, int(lo), int(lo) + 1, top) for lo in lows]
        under = _bin_ratio(sums, 0, int(lows[0]), top) if ax.traits.underflow else 1.0
        over = _bin_ratio(sums, int(ax.edges[-1]), None, top)
        return np.asarray([under, *ks, over])
    if getattr(target, "label", None) == "Jets":
        return _ratio(sums["before_jets"], sums["after_jets"])
    return _ratio(sums["before"], sums["after"])


def _bin_ratio(sums, lo: int, hi: int | None, top: int) -> float:
    """Σw before / Σw after over the multiplicities ``lo .. hi-1`` (``hi`` None: and above); the
    ``btag_sumw`` bin ``top`` holds ``top`` or more jets."""
    idx = [j for j in range(top) if j >= lo and (hi is None or j < hi)]
    if hi is None or hi > top:
        idx.append(top)
    return _ratio(sums["before"][idx], sums["after"][idx])


def variation_scales(out, metadata: dict, btag_norm_on: bool = True, lumi_pb: float | None = None,
                     norm=None) -> dict:
    """``{dataset: {syst: scale}}`` for a RunOutput ``out`` (the figures' normalisation)."""
    norm = norm or normalisation(out, metadata, lumi_pb)
    scales = {}
    for ds, x in norm.datasets.items():
        hists = out.hists.get(ds, {})
        names = syst_names_of(hists)
        if x["is_data"]:
            scales[ds] = {s: 1.0 for s in names}
            continue
        c = out.counters.get(ds, {})
        base = float(x["scale"])
        sumw = x.get("sumw")
        per = {}
        for s in names:
            k = base
            alt = c.get(f"sumw_{s}")
            if alt and sumw:
                k = base * float(sumw) / float(alt)
            if btag_norm_on and "btag_sumw" in hists:
                k *= btag_norm(hists["btag_sumw"], s)
            per[s] = k
        scales[ds] = per
    return scales
