"""Data/MC figures a CMS talk accepts as they are (mplhep CMS style), and the data/MC agreement.

* :func:`plot_run` — every figure of a finished run plus ``summary.json`` (chi2/ndf per figure);
* :func:`plot_datamc` — data vs stacked MC by flavour with a ratio panel;
* :func:`plot_datamc_pair` — two such panels side by side (one y range, one legend);
* :func:`plot_cutflow` — cutflow bars and table;
* :func:`agreement` — Pearson chi2, ndf, chi2/ndf and p-value of data vs MC.

Modules: ``hists`` (histogram preparation), ``panel`` (the numbers of a panel), ``datamc``
(drawing), ``layout`` (y range and legend corner), ``ratio``, ``cutflow``, ``run`` (a whole
run), ``labels`` (label modes, display names), ``style``, ``summary``, ``normalisation`` (MC
scaled to the data's luminosity, and the facts of a run the figures state).

matplotlib is imported only when a figure is made; figures are
:class:`matplotlib.figure.Figure` objects on an Agg canvas (no pyplot state, no backend switch).
"""
from .cutflow import plot_cutflow
from .datamc import plot_datamc, plot_datamc_pair
from .hists import data_hist, mc_flavour_hists
from .labels import LABEL_MODES, label_text
from .normalisation import Normalisation, normalisation
from .panel import Panel, datamc_values
from .run import PlotConfig, build_figures, load_run, plot_run
from .summary import agreement, chi2_sf, format_table

__all__ = ["plot_run", "build_figures", "PlotConfig", "plot_datamc", "plot_datamc_pair", "plot_cutflow",
           "agreement", "chi2_sf", "format_table", "datamc_values", "Panel", "normalisation", "Normalisation",
           "load_run", "data_hist", "mc_flavour_hists", "LABEL_MODES", "label_text"]
