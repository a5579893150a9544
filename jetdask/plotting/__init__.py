"""Publication-style data/MC plots (mplhep, CMS style) and the data/MC agreement summary.

* :func:`plot_run` — every figure of a finished run plus ``summary.json`` (chi2/ndf per plot);
* :func:`plot_datamc` — one data vs stacked-MC-by-flavour figure with a ratio panel;
* :func:`plot_datamc_pair` — two such panels side by side (nominal vs adversarial tagger);
* :func:`plot_cutflow` — cutflow bars and table;
* :func:`agreement` — Pearson chi2, ndf, chi2/ndf and p-value of data vs MC.

matplotlib is imported only when a figure is made; figures are
:class:`matplotlib.figure.Figure` objects (no pyplot state, no backend switch).
"""
from .datamc import (Normalisation, Panel, build_figures, data_hist, datamc_values, load_run, mc_flavour_hists,
                     normalisation, plot_cutflow, plot_datamc, plot_datamc_pair, plot_run, read_metadata)
from .summary import agreement, chi2_sf, format_table

__all__ = ["plot_run", "build_figures", "plot_datamc", "plot_datamc_pair", "plot_cutflow", "agreement",
           "chi2_sf", "format_table", "datamc_values", "Panel", "normalisation", "Normalisation",
           "load_run", "read_metadata", "data_hist", "mc_flavour_hists"]
