"""CMS figure style (mplhep), flavour colours and human-readable labels.

Figures are made with :class:`matplotlib.figure.Figure` directly (no pyplot, no
global backend switch, nothing to close); :func:`cms_style` is a context manager
that applies the mplhep CMS style only while a figure is built and saved.
"""
from __future__ import annotations

import contextlib
import re
import warnings

# stacking order, bottom to top (the light-enriched DY+jets region: light dominates)
FLAVOUR_ORDER = ("light", "c", "b")
FLAVOUR_COLOURS = {"b": "#e42536", "c": "#f89c20", "light": "#5790fc", "MC": "#9c9ca1"}
FLAVOUR_LABELS = {"b": "b jets", "c": "c jets", "light": "light jets (udsg)", "MC": "simulation"}
EXTRA_COLOURS = ("#964a8b", "#7a21dd", "#9c9ca1", "#a96b59", "#92dadd")

CHANNEL_LABELS = {"all": r"$\mu\!\mu$ + ee", "sum": r"$\mu\!\mu$ + ee", "mumu": r"$\mu\!\mu$", "ee": "ee"}
DISCRIMINANT_LABELS = {"BvsL": "b vs light", "CvsB": "c vs b", "CvsL": "c vs light", "BvsAll": "b vs all",
                       "BvsC": "b vs c"}


@contextlib.contextmanager
def cms_style():
    """Apply the mplhep CMS style (fonts, ticks, sizes) inside the block."""
    import matplotlib
    import mplhep

    with matplotlib.rc_context(), warnings.catch_warnings():
        matplotlib.style.use(mplhep.style.CMS)
        # mplhep: "Integer weights indicate poissonian data" and similar advice
        warnings.simplefilter("ignore", UserWarning)
        yield


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


def split_name(name: str) -> tuple[str, str]:
    """``"nominal@fgsm0.01_BvsL"`` -> ``("nominal@fgsm0.01", "BvsL")``; no discriminant -> ``(name, "")``."""
    if "_" in name:
        tagger, disc = name.rsplit("_", 1)
        if disc in DISCRIMINANT_LABELS or re.fullmatch(r"[A-Z][a-z]*vs[A-Z][A-Za-z]*", disc):
            return tagger, disc
    return name, ""


def tagger_label(tagger: str) -> str:
    """``"nominal@fgsm0.01"`` -> ``"nominal (FGSM $\\epsilon$=0.01)"``."""
    if "@" in tagger:
        base, attack = tagger.split("@", 1)
        m = re.fullmatch(r"([A-Za-z]+)([0-9.eE+-]+)", attack)
        if m:
            return rf"{base} ({m.group(1).upper()} $\epsilon$={m.group(2)})"
        return f"{base} ({attack})"
    return tagger


def xlabel_for(name: str, axis_label: str | None = None) -> str:
    """x-axis title of histogram ``name``: its axis label when that says more than the axis name."""
    tagger, disc = split_name(name)
    if disc:
        return f"{tagger_label(tagger)} {disc} discriminant"
    if axis_label and axis_label not in ("value", name):
        return axis_label
    return name.removeprefix("input_").replace("_", " ")


def file_stem(*parts: str) -> str:
    """A file-name-safe stem: ``@`` becomes ``-at-``; anything odd becomes ``_``."""
    s = "_".join(p for p in parts if p)
    s = s.replace("@", "-at-")
    return re.sub(r"[^A-Za-z0-9._+-]", "_", s)
