"""Evaluation figures of distributions per true flavour: output scores, discriminants, raw inputs.

Each flavour (b, c, light) is normalised to unit sum ("fraction of jets"); one legend for the
figure, outside on the right, titled with the model's display name. Inputs are shown **raw**,
as the preprocessing wrote them (before scaling; :func:`input_distributions`): standardised
values of long-tailed inputs mislead (a 2 % light-jet tail beyond 50 in the impact-parameter
significance inflates the pooled width, which shrinks the scaled b-jet values below the light
ones). Range rule (:func:`display_range`): the bulk of every flavour, from its first quartile
minus ``FENCE`` (4) interquartile ranges to its third quartile plus 4, within the 0.5 % and
99.5 % quantiles of all jets (a few far outliers never set the range), entries outside counted
in the edge bins (stated below the panels); integer inputs get one bin per value; long tails a
log y axis. Entries without a value (no SV, no track) are left out and their share named in the panel.
"""
from __future__ import annotations

import numpy as np

from ..plotting.style import cms_style, flavour_colour, flavour_label
from .figure import LABEL, header, legend_outside, note_below, panels, save
from .metrics import DISCRIMINANTS

FLAVOURS = ("b", "c", "light")
BINS = 40
MAX_INTEGER_BINS = 40
FENCE = 4.0                     # the bulk of a flavour: Q1 - FENCE x IQR to Q3 + FENCE x IQR
NO_VALUE_SHOWN = 0.005          # the share of jets without a value is named from 0.5 % on


def display_range(values_by_flavour, bins: int = BINS) -> tuple[np.ndarray, bool]:
    """(bin edges, log y) for the values of each flavour (see the module docstring)."""
    los, his, qlo, qhi, log, integer = [], [], [], [], False, True
    for x in values_by_flavour:
        x = np.asarray(x, float)
        if not x.size:
            continue
        lo, q1, med, q3, hi = np.percentile(x, [0.5, 25, 50, 75, 99.5])
        iqr = max(q3 - q1, 1e-12)
        los.append(q1 - FENCE * iqr)
        his.append(q3 + FENCE * iqr)
        qlo.append(lo)
        qhi.append(hi)
        log |= max(hi - med, med - lo) > 5 * iqr
        integer &= bool(np.all(x == np.round(x)))
    if not los:
        return np.linspace(0.0, 1.0, bins + 1), False
    lo, hi = max(min(los), min(qlo)), min(max(his), max(qhi))
    if integer and hi - lo < MAX_INTEGER_BINS:
        return np.arange(np.floor(lo + 1e-9) - 0.5, np.ceil(hi - 1e-9) + 1.0, 1.0), log
    if hi - lo <= 1e-9 * max(1.0, abs(lo)):                    # a constant: one unit to its right
        hi = lo + 1.0
    return np.linspace(lo, hi, bins + 1), log


def _hist_by_flavour(ax, values, groups, bins) -> list:
    """Step histograms per flavour (unit sum each); returns the legend handles."""
    handles = []
    for f in FLAVOURS:
        sel = groups == f
        if sel.any():
            w = np.full(int(sel.sum()), 1.0 / sel.sum())
            _, _, patches = ax.hist(values[sel], bins=bins, weights=w, histtype="step", lw=2.5,
                                    color=flavour_colour(f), label=flavour_label(f))
            handles.append(patches[0])
    return handles


def _grid(n: int, ncols: int, size):
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = panels(nrows, ncols, size=size)
    flat = [ax for row in axes for ax in row]
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, axes, flat[:n]


def _finish(fig, axes, handles, title, label) -> None:
    from ..plotting.layout import clear_corner
    for ax in (a for row in axes for a in row if a.get_visible()):
        clear_corner(ax)
    header(axes, label=label)
    legend_outside(fig, axes[0][-1], handles, [h.get_label() for h in handles], title)


def _flavour_panels(panels: list, path, formats, title: str, keep, label: str) -> list[str]:
    """One panel per ``(values, groups, x label)``: the values in [0, 1] per true flavour
    (normalised, log y), the legend and ``title`` over the grid."""
    bins = np.linspace(0, 1, 41)
    with cms_style():
        fig, axes, flat = _grid(max(len(panels), 1), 3, (6.5, 5.5))
        handles = []
        for ax, (values, grp, xlabel) in zip(flat, panels):
            handles = _hist_by_flavour(ax, values, grp, bins) or handles
            ax.set_xlabel(xlabel)
            ax.set_ylabel("fraction of jets")
            ax.set_yscale("log")
            ax.set_xlim(0, 1)
        _finish(fig, axes, handles, title or None, label)
        return save(fig, path, formats, keep)


def score_distributions(scores, groups, classes, path, formats=("png",), title: str = "", keep=None,
                        label: str = LABEL) -> list[str]:
    """Each output node, per true flavour (normalised); ``title``: the model's display name."""
    panels = [(scores[:, k], groups, f"P({c})") for k, c in enumerate(classes)]
    return _flavour_panels(panels, path, formats, title, keep, label)


def discriminant_distributions(discs: dict, groups, path, formats=("png",), title: str = "", keep=None,
                               label: str = LABEL) -> list[str]:
    """BvsL, CvsB, CvsL per true flavour (jets without a defined value, -1, left out)."""
    from ..plotting.labels import DISCRIMINANT_LABELS
    panels = []
    for d in (d for d in DISCRIMINANTS if d in discs):
        v = np.asarray(discs[d])
        ok = v >= 0
        panels.append((v[ok], groups[ok], f"{d} ({DISCRIMINANT_LABELS.get(d, d)})"))
    return _flavour_panels(panels, path, formats, title, keep, label)


def input_distributions(raw: dict, valid: dict, groups, features: list, path, formats=("png",), keep=None,
                        label: str = LABEL, title: str | None = "test jets") -> list[str]:
    """Raw inputs per true flavour; ``raw``/``valid``: input name -> values / valid mask (as
    :class:`jetdask.inference.layouts.Converted`); ``features``: (input name, index tuple, axis title)."""
    with cms_style():
        fig, axes, flat = _grid(len(features), 4, (6.0, 5.0))
        handles = []
        for ax, (name, idx, xtitle) in zip(flat, features):
            x = np.asarray(raw[name])[(slice(None),) + tuple(idx)]
            ok = np.asarray(valid[name])[(slice(None),) + tuple(idx)] if valid.get(name) is not None \
                else np.ones(len(x), bool)
            ax.set_xlabel(xtitle)
            ax.set_ylabel("fraction of jets")
            if not ok.any():
                continue
            edges, log = display_range([x[ok & (groups == f)] for f in FLAVOURS])
            handles = _hist_by_flavour(ax, np.clip(x[ok], edges[0], edges[-1]), groups[ok], edges) or handles
            ax.set_xlim(edges[0], edges[-1])
            if log:
                ax.set_yscale("log")
            missing = 1.0 - ok.mean()
            top = max(p.get_path().vertices[:, 1].max() for p in ax.patches)
            if missing >= NO_VALUE_SHOWN:
                ax.text(0.96, 0.95, f"no value: {100 * missing:.0f} %", transform=ax.transAxes, ha="right", va="top",
                        fontsize="x-small", gid="no-value")
                ax.set_ylim(top=top * (10 ** 0.9 if log else 1.3))
            else:
                ax.set_ylim(top=top * (10 ** 0.3 if log else 1.1))
            if not log:
                ax.set_ylim(bottom=0)
        _finish(fig, axes, handles, title, label)
        note_below(fig, "Raw values (before scaling). Range: the bulk of each flavour (quartiles $\\pm$ 4 "
                        "interquartile ranges); entries outside it in the first and last bins. Each flavour "
                        "normalised to unit sum.",
                   axes[-1][0])
        return save(fig, path, formats, keep)
