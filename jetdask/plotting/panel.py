"""The numbers behind one data/MC panel (what is drawn, and what the summary reports)."""
from __future__ import annotations

import dataclasses

import numpy as np

from .hists import arrays
from .summary import agreement


@dataclasses.dataclass
class Panel:
    """The numbers of one data/MC figure panel: bin edges, data and MC per flavour with their
    variances, the MC total, the data/MC ratio and its error, the relative MC band, the χ²
    agreement and a note.
    """
    edges: np.ndarray
    data: np.ndarray | None            # observed per bin (None: MC only)
    data_var: np.ndarray | None
    mc: dict                           # flavour -> expected per bin (already normalised)
    mc_var: dict
    mc_total: np.ndarray
    mc_total_var: np.ndarray
    ratio: np.ndarray | None           # data / MC, NaN where MC <= 0
    ratio_err: np.ndarray | None       # sqrt(var_data) / MC
    band: np.ndarray                   # relative MC stat uncertainty, sqrt(var_MC) / MC
    agreement: dict | None
    note: str | None = None

    @property
    def peak(self) -> float:
        """The tallest content: the top of the MC stack or the highest data point (no error bars)."""
        top = self.mc_total if self.data is None else np.maximum(self.mc_total, self.data)
        top = top[np.isfinite(top)]
        return float(top.max()) if top.size and top.max() > 0 else 1.0

    def as_dict(self) -> dict:
        """The panel's yields and agreement as JSON-able numbers (for ``summary.json``)."""
        return {"data_events": None if self.data is None else float(self.data.sum()),
                "mc_events": float(self.mc_total.sum()),
                "mc_by_flavour": {k: float(v.sum()) for k, v in self.mc.items()},
                **(self.agreement or {})}


def datamc_values(data, mc_by_flavour: dict) -> Panel:
    """Numbers of one data/MC panel; the MC must already be normalised.

    ``data``: 1D histogram or ``(values, edges[, variances])`` (None: MC only);
    ``mc_by_flavour``: flavour -> the same. Histograms enter without their flow bins
    (fold them first, :func:`jetdask.plotting.hists.fold`, to include them).
    """
    if not mc_by_flavour:
        raise ValueError("no MC histogram to compare with")
    mc, mc_var, edges = {}, {}, None
    for k, h in mc_by_flavour.items():
        v, e, var = arrays(h)
        if edges is not None and (len(e) != len(edges) or not np.allclose(e, edges)):
            raise ValueError(f"MC component {k!r} has a different binning")
        edges = e
        mc[k], mc_var[k] = v, var
    total = np.sum(list(mc.values()), axis=0)
    total_var = np.sum(list(mc_var.values()), axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        band = np.where(total > 0, np.sqrt(total_var) / total, np.nan)
    if data is None:
        return Panel(edges, None, None, mc, mc_var, total, total_var, None, None, band, None)
    d, de, dvar = arrays(data)
    if len(de) != len(edges) or not np.allclose(de, edges):
        raise ValueError("data and MC have different binning")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(total > 0, d / total, np.nan)
        ratio_err = np.where(total > 0, np.sqrt(dvar) / total, np.nan)
    return Panel(edges, d, dvar, mc, mc_var, total, total_var, ratio, ratio_err, band,
                 agreement(d, total, data_var=dvar, mc_var=total_var))
