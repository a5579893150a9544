"""Data/MC figures: MC stacked by jet flavour, data points, MC stat band, ratio panel below.

The numbers behind a panel are a :class:`~jetdask.plotting.panel.Panel`, attached to the
figure as ``fig.panels`` (left to right), so tests and notebooks read exactly what was drawn.
Artists carry gids: ``mc:<flavour>`` (stack layers), ``mc:total``, ``mc:band``, ``data``,
``ratio``, ``ratio:band``, ``ratio:offscale``, ``legend``, ``info``, ``note:incomplete``.
Layout rules (y range, legend corner): :mod:`jetdask.plotting.layout`; ratio range:
:mod:`jetdask.plotting.ratio`.
"""
from __future__ import annotations

import re
import textwrap

import numpy as np

from . import layout
from .labels import channel_text, label_text, p_text
from .panel import Panel, datamc_values
from .ratio import draw_ratio
from .style import cms_label, cms_style, flavour_colour, flavour_label, new_figure

BAND_LABEL = "MC stat. unc."
SYST_BAND_LABEL = r"stat. $\oplus$ syst. unc."   # jetdask.plotting.bands


def new_datamc_figure(columns: int = 1, ratio: bool = True, width: float = 10.0, height: float = 10.0):
    """A figure with ``columns`` main panels, each with a ratio panel below (shared x)."""
    fig = new_figure(width * columns, height)
    gs = fig.add_gridspec(2 if ratio else 1, columns, height_ratios=[3, 1] if ratio else [1], hspace=0.06,
                          wspace=0.25, left=0.13 / columns ** 0.5, right=1 - 0.04 / columns ** 0.5,
                          top=0.93, bottom=0.11)
    pairs = []
    for c in range(columns):
        ax = fig.add_subplot(gs[0, c])
        rax = fig.add_subplot(gs[1, c], sharex=ax) if ratio else None
        pairs.append((ax, rax))
    return fig, pairs


def _stack_order(panel: Panel) -> list[str]:
    """Components bottom to top: the smallest yield at the bottom (visible on log and linear y)."""
    return sorted(panel.mc, key=lambda k: (float(panel.mc[k].sum()), k))


def draw_main(p: Panel, ax, *, data_label: str = "Data") -> np.ndarray:
    """Stack, MC band and data points; returns the per-bin top of what was drawn (with error bars)."""
    edges = p.edges
    centers = 0.5 * (edges[1:] + edges[:-1])
    base = np.zeros_like(p.mc_total)
    for i, k in enumerate(_stack_order(p)):
        ax.stairs(base + p.mc[k], edges, baseline=base.copy(), fill=True, color=flavour_colour(k, i),
                  linewidth=0, label=flavour_label(k), gid=f"mc:{k}")
        base = base + p.mc[k]
    ax.stairs(p.mc_total, edges, color="black", linewidth=1.0, gid="mc:total", label="_total")
    err = np.sqrt(p.mc_total_var)
    ax.stairs(p.mc_total + err, edges, baseline=p.mc_total - err, fill=True, facecolor="none",
              edgecolor="#4d4d4d", hatch="////", linewidth=0, label=BAND_LABEL, gid="mc:band")
    top = p.mc_total + err
    if p.data is not None:
        shown = p.data > 0
        eb = ax.errorbar(centers[shown], p.data[shown], yerr=np.sqrt(p.data_var[shown]), fmt="o", color="black",
                         markersize=7, elinewidth=1.5, capsize=0, label=data_label, zorder=5)
        eb.lines[0].set_gid("data")
        top = np.maximum(top, p.data + np.sqrt(p.data_var))
    ax.set_xlim(edges[0], edges[-1])
    return top


def info_lines(p: Panel, title: str | None, channel: str | None, flow_note: str = "") -> list[str]:
    """Text lines of a panel's box: title (tagger), channel, chi2/ndf and p-value, flow folding."""
    lines = []
    for line in (title or "").split("\n"):
        lines += textwrap.wrap(line, 34)
    if channel_text(channel):
        lines.append(channel_text(channel))
    if p.agreement and p.agreement["ndf"]:
        a = p.agreement
        lines.append(rf"$\chi^2$/ndf = {a['chi2']:.1f}/{a['ndf']}, {p_text(a['p_value'])}")
    if flow_note:
        lines.append(flow_note)
    return lines


def add_box(ax, p: Panel, title: str, with_legend: bool, data_label: str, ncol: int = 1):
    """The panel's box: the info lines as the title of the flavour legend (or alone)."""
    handles, labels = [], []
    if with_legend:
        got = dict(zip(*reversed(ax.get_legend_handles_labels())))
        order = ([data_label] if p.data is not None else []) \
            + [flavour_label(k) for k in reversed(_stack_order(p))] + [BAND_LABEL, SYST_BAND_LABEL]
        labels = [n for n in order if n in got]
        handles = [got[n] for n in labels]
    box = ax.legend(handles, labels, title=title or None, loc="upper right", fontsize="small", ncol=ncol,
                    columnspacing=1.0,
                    title_fontsize="small", frameon=False, handlelength=1.4, borderaxespad=0.5,
                    labelspacing=0.3, alignment="left")
    box.set_gid("legend" if with_legend else "info")
    return box


def _per_bin(edges, xlabel=None) -> str:
    """`` / 0.05`` or `` / 6 GeV`` (the unit from a trailing ``[unit]`` in the x title)."""
    w = np.diff(edges)
    if len(w) and np.allclose(w, w[0]):
        m = re.search(r"\[([^\]]+)\]\s*$", xlabel or "")
        return f" / {w[0]:.3g}" + (f" {m.group(1)}" if m else "")
    return " / bin"


def finish_panels(fig, specs: list, *, log: bool, label: str, lumi_fb, energy: str, note: str | None) -> None:
    """Common y range and boxes for panels drawn with :func:`draw_main`, then labels and ratio panels.

    ``specs``: per panel ``dict(panel, ax, rax, tops, lines, legend, xlabel, ylabel, data_label,
    ratio_range)``.
    """
    peak = max(s["panel"].peak for s in specs)
    lo = 0.0
    if log:
        lo = min(layout.log_floor([s["panel"].data, *s["panel"].mc.values()], peak) for s in specs)
        for s in specs:
            s["ax"].set_yscale("log")
    for ncol in (1, 2):                            # narrow and tall first, then wider and shorter
        boxes = [add_box(s["ax"], s["panel"], "\n".join(s["lines"]), s["legend"], s["data_label"], ncol)
                 if (s["lines"] or s["legend"]) else None for s in specs]
        sizes = [layout.box_size(s["ax"], b) if b is not None else None for s, b in zip(specs, boxes)]
        y_lo, hi, corners = layout.y_limits([s["tops"] for s in specs], peak, lo, log, sizes,
                                            [s["panel"].edges for s in specs])
        if "outside" not in corners:
            break
        if ncol == 1:
            for b in boxes:
                if b is not None:
                    b.remove()
    lo = y_lo
    for s, box, corner in zip(specs, boxes, corners):
        ax, rax = s["ax"], s["rax"]
        ax.set_ylim(lo, hi)
        if box is not None and corner != "outside":
            box.set_loc(corner)
        if not log:
            from matplotlib.ticker import ScalarFormatter
            fmt = ScalarFormatter(useMathText=True)
            fmt.set_powerlimits((-3, 5))
            ax.yaxis.set_major_formatter(fmt)
        if rax is None:                            # no y tick label on the first x tick label
            layout.clear_corner(ax)
        xlabel = s["xlabel"] or ""
        ax.set_ylabel(s["ylabel"] + _per_bin(s["panel"].edges, xlabel))
        cms_label(ax, label, lumi_fb=lumi_fb, energy=energy)
        if rax is None:
            ax.set_xlabel(xlabel)
        else:
            ax.tick_params(labelbottom=False)
            ax.set_xlabel("")
            draw_ratio(rax, s["panel"], xlabel, s["ratio_range"])
    for k, (s, c) in enumerate(zip(specs, corners)):
        if c == "outside" and ncol > 1:
            boxes[k].remove()                      # outside, one column (the height is free there)
            boxes[k] = add_box(s["ax"], s["panel"], "\n".join(s["lines"]), s["legend"], s["data_label"], 1)
    outside = [b for b, c in zip(boxes, corners) if c == "outside"]
    if outside:                                    # legend boxes first, then the text-only ones
        outside.sort(key=lambda b: b.get_gid() != "legend")
        layout.put_outside(fig, specs[-1]["ax"], outside)
    if note:
        fig.text(0.5, 0.005, textwrap.fill(note, 110), ha="center", va="bottom", color="#c00000",
                 fontweight="bold", fontsize="x-small", gid="note:incomplete")


def plot_datamc(data, mc_by_flavour: dict, *, fig=None, ax=None, rax=None, lumi_fb: float | None = None,
                energy: str = "13 TeV", label: str | None = None, xlabel: str | None = None,
                ylabel: str = "Entries", log: bool = False, incomplete_note: str | None = None,
                title: str | None = None, channel: str | None = None, ratio_range=None,
                data_label: str = "Data", flow_note: str = "", syst_band=None, breakdown: bool = False):
    """Draw data vs MC stacked by flavour with a data/MC ratio panel; return the figure.

    ``data``: 1D ``hist.Hist`` (or ``(values, edges[, variances])``), None for MC only;
    ``mc_by_flavour``: flavour -> 1D histogram, already normalised to the luminosity.
    ``ax``/``rax``: draw into existing axes (``rax=None`` with ``ax`` given: no ratio panel).
    ``label``: text after "CMS" (default from :func:`~jetdask.plotting.labels.label_text`:
    "Private work", "Simulation Private work" without data). ``ratio_range``: fixed (lo, hi),
    default adapted to the points. ``flow_note``: a line in the panel's box (what was folded into the edge bins).
    The figure's ``panels`` list gets the :class:`Panel`. ``syst_band``: a
    :class:`jetdask.plotting.bands.Band` drawn as stat ⊕ syst (``breakdown``: by group in the ratio panel).
    """
    with cms_style():
        if ax is None:
            fig, [(ax, rax)] = new_datamc_figure(1, ratio=data is not None)
        elif fig is None:
            fig = ax.figure
        panel = datamc_values(data, mc_by_flavour)
        panel.note = incomplete_note
        tops = draw_main(panel, ax, data_label=data_label)
        if syst_band is not None:
            from .bands import draw_main_band
            tops = np.maximum(tops, draw_main_band(ax, panel, syst_band))
        spec = dict(panel=panel, ax=ax, rax=rax, tops=tops, lines=info_lines(panel, title, channel, flow_note),
                    legend=True, xlabel=xlabel, ylabel=ylabel, data_label=data_label, ratio_range=ratio_range)
        finish_panels(fig, [spec], log=log, label=label or label_text("auto", data is not None, False),
                      lumi_fb=lumi_fb, energy=energy, note=incomplete_note)
        if syst_band is not None and rax is not None:
            from .bands import draw_ratio_band
            draw_ratio_band(rax, panel, syst_band, breakdown)
    fig.panels = getattr(fig, "panels", []) + [panel]
    return fig


def plot_datamc_pair(left: tuple, right: tuple, *, titles=("left", "right"), xlabels=None, lumi_fb=None,
                     energy: str = "13 TeV", label: str | None = None, ylabel: str = "Entries", log: bool = False,
                     incomplete_note: str | None = None, channel: str | None = None, data_label: str = "Data",
                     flow_notes=("", ""), xlabel: str | None = None, ratio_range=None, syst_bands=(None, None),
                     breakdown: bool = False):
    """Two data/MC panels side by side, each with its ratio panel (4 axes), one y range, one legend.

    ``left``/``right``: ``(data, mc_by_flavour)``; ``titles``: the display name of each panel's
    tagger; ``xlabels``: one x title per panel (or ``xlabel`` for both). The flavour legend is
    drawn once (in the panel where it fits best); each panel names its tagger and its chi2.
    ``syst_bands``: one :class:`jetdask.plotting.bands.Band` (or None) per panel, drawn as in
    :func:`plot_datamc`.
    """
    xlabels = xlabels or (xlabel, xlabel)
    with cms_style():
        has_data = left[0] is not None
        fig, axes = new_datamc_figure(2, ratio=has_data)
        specs = []
        for i, ((data, mc), (ax, rax), t, xl, fn) in enumerate(zip((left, right), axes, titles, xlabels,
                                                                    flow_notes)):
            panel = datamc_values(data, mc)
            panel.note = incomplete_note
            tops = draw_main(panel, ax, data_label=data_label)
            if syst_bands[i] is not None:
                from .bands import draw_main_band
                tops = np.maximum(tops, draw_main_band(ax, panel, syst_bands[i]))
            specs.append(dict(panel=panel, ax=ax, rax=rax, tops=tops, lines=info_lines(panel, t, channel, fn),
                              legend=i == 1, xlabel=xl, ylabel=ylabel, data_label=data_label,
                              ratio_range=ratio_range))
        finish_panels(fig, specs, log=log, label=label or label_text("auto", has_data, False), lumi_fb=lumi_fb,
                      energy=energy, note=incomplete_note)
        for s, b in zip(specs, syst_bands):
            if b is not None and s["rax"] is not None:
                from .bands import draw_ratio_band
                draw_ratio_band(s["rax"], s["panel"], b, breakdown)
    fig.panels = [s["panel"] for s in specs]
    return fig
