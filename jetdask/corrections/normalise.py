"""Plotting-time normalisation of every variation: theory sums and the b-tag SF normalisation.

For an MC data set and a variation ``v`` the histograms are scaled by

* ``xsec x lumi / sumw_v``: ``sumw_v`` is the run counter ``sumw_<v>`` (the sum of genWeight x
  the theory weight over the processed events) for theory variations, the usual sum of
  genWeight otherwise (:func:`jetdask.plotting.normalisation.normalisation`);
* x ``k_v = Σw before / Σw after`` the b-tag shape SF, from the run's ``btag_sumw`` histogram
  (selected events, all jet multiplicities), when ``btag_norm`` (default): the shape SFs then
  keep the total yield before tagging. The table per jet multiplicity is
  :func:`btag_norm_table`.

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
