"""CMS figure style (mplhep), flavour colours, the CMS label and figure creation.

Figures are :class:`matplotlib.figure.Figure` objects on an Agg canvas (no pyplot, no global
backend switch, nothing to close); :func:`cms_style` applies the mplhep CMS style (fonts
shipped with mplhep, so the rendering is the same on every machine) only while a figure is
built and saved.
"""
from __future__ import annotations

import contextlib
import warnings

# stacking order, bottom to top: the smallest component at the bottom, so that in a
# light-dominated region the b and c layers stay visible (also on a log scale)
FLAVOUR_ORDER = ("b", "c", "light")
FLAVOUR_COLOURS = {"b": "#e42536", "c": "#f89c20", "light": "#5790fc", "MC": "#9c9ca1"}
FLAVOUR_LABELS = {"b": "b jets", "c": "c jets", "light": "light jets (udsg)", "MC": "simulation"}
EXTRA_COLOURS = ("#964a8b", "#7a21dd", "#9c9ca1", "#a96b59", "#92dadd")
PNG_DPI = 100


@contextlib.contextmanager
def cms_style():
    """Apply the mplhep CMS style (fonts, ticks, sizes) inside the block."""
    import matplotlib
    import mplhep

    with matplotlib.rc_context(), warnings.catch_warnings():
        matplotlib.style.use(mplhep.style.CMS)
        matplotlib.rcParams["svg.hashsalt"] = "jetdask"        # reproducible SVG ids
        # mplhep: "Integer weights indicate poissonian data" and similar advice
        warnings.simplefilter("ignore", UserWarning)
        yield


def new_figure(width: float, height: float):
    """A Figure with an Agg canvas (so text extents can be measured before saving)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def flavour_colour(flavour: str, index: int = 0) -> str:
    return FLAVOUR_COLOURS.get(flavour, EXTRA_COLOURS[index % len(EXTRA_COLOURS)])


def flavour_label(flavour: str) -> str:
    return FLAVOUR_LABELS.get(flavour, flavour)


def lumi_text(lumi_fb: float | None) -> str:
    """``138 fb$^{-1}$``; small luminosities in pb^-1 or nb^-1 so that the number stays readable."""
    if lumi_fb is None:
        return ""
    if lumi_fb >= 1:
        return f"{_num(lumi_fb)} fb$^{{-1}}$"
    if lumi_fb >= 1e-3:
        return f"{_num(lumi_fb * 1e3)} pb$^{{-1}}$"
    return f"{_num(lumi_fb * 1e6)} nb$^{{-1}}$"


def _num(x: float) -> str:
    if x >= 100:
        return f"{x:.0f}"
    return f"{x:.3g}"


def label_sizes():
    """Font sizes of the CMS label parts (CMS, label, luminosity)."""
    import matplotlib

    s = matplotlib.rcParams["font.size"]
    return (s * 1.25, s * 0.95, s * 0.85, s * 0.8)


def cms_label(ax, text: str, *, lumi_fb: float | None = None, energy: str = "13 TeV", right_ax=None) -> dict:
    """"CMS <text>" above the axes on the left; luminosity and energy on the right (see
    :mod:`jetdask.plotting.header`: never overlapping, inside the figure)."""
    from .header import cms_header

    return cms_header(ax, text, f"{lumi_text(lumi_fb)} ({energy})" if lumi_fb else f"({energy})",
                      right_ax=right_ax)
