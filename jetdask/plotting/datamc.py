"""Data/MC figures: MC stacked by jet flavour, data points, MC stat band, ratio panel.

The numbers behind a panel are computed by :func:`datamc_values` (a
:class:`Panel`) and attached to the figure as ``fig.panels`` (one per data/MC
panel, left to right), so tests and notebooks can read exactly what was drawn.
Artists carry gids: ``mc:<flavour>`` (stack layers), ``mc:total``, ``mc:band``,
``data``, ``ratio``, ``ratio:band``, ``note:incomplete``.
"""
from __future__ import annotations

import dataclasses
import re
import textwrap

import numpy as np

from .style import (CHANNEL_LABELS, FLAVOUR_ORDER, cms_style, file_stem, flavour_colour, flavour_label, lumi_text,
                    split_name, tagger_label, xlabel_for)
from .summary import agreement

NON_VALUE_AXES = ("channel", "flavour")
RATIO_RANGE = (0.5, 1.5)


# -- histogram handling ------------------------------------------------------------
def value_axis(h):
    """The one axis of ``h`` that is not ``channel``/``flavour`` (the plotted variable)."""
    rest = [ax for ax in h.axes if ax.name not in NON_VALUE_AXES]
    if len(rest) != 1:
        raise ValueError(f"expected exactly one variable axis besides {NON_VALUE_AXES}, got "
                         f"{[ax.name for ax in rest]}")
    return rest[0]


def _categories(h, name):
    return [str(c) for c in h.axes[name]] if name in h.axes.name else []


def select_channel(h, channel: str = "all"):
    """Sum the ``channel`` axis (``"all"``/``"sum"``) or pick one channel."""
    if "channel" not in h.axes.name:
        return h
    if channel in ("all", "sum", None):
        return h[{"channel": sum}]
    if channel not in _categories(h, "channel"):
        return None
    return h[{"channel": channel}]


def data_hist(h, channel: str = "all"):
    """1D data histogram: the channel selection, summed over every flavour category."""
    h = select_channel(h, channel)
    if h is None:
        return None
    if "flavour" in h.axes.name:
        h = h[{"flavour": sum}]
    return h


def mc_flavour_hists(h, channel: str = "all") -> dict:
    """1D MC histograms by flavour (``b``, ``c``, ``light`` and any other non-empty category).

    A ``data`` category (the analysis books it for collision data) is ignored when the
    flavour categories hold the MC; MC without flavour information (all of it in one
    non-flavour category, or no flavour axis) comes back as ``{"MC": total}``.
    """
    h = select_channel(h, channel)
    if h is None:
        return {}
    if "flavour" not in h.axes.name:
        return {"MC": h}
    cats = _categories(h, "flavour")
    out = {}
    for c in cats:
        one = h[{"flavour": c}]
        if c in FLAVOUR_ORDER or (c != "data" and one.values().sum() != 0):
            out[c] = one
    if not any(np.any(v.values() != 0) for v in out.values()):
        return {"MC": h[{"flavour": sum}]}
    order = [c for c in FLAVOUR_ORDER if c in out] + [c for c in out if c not in FLAVOUR_ORDER]
    return {c: out[c] for c in order}


def _arrays(h, scale: float = 1.0):
    """(values, variances, edges) of a 1D histogram or a ``(values, edges[, variances])`` tuple."""
    if isinstance(h, tuple):
        values, edges = np.asarray(h[0], float), np.asarray(h[1], float)
        var = np.asarray(h[2], float) if len(h) > 2 and h[2] is not None else values.copy()
    else:
        if len(h.axes) != 1:
            raise ValueError(f"expected a 1D histogram, got axes {list(h.axes.name)}; project it first "
                             "(data_hist / mc_flavour_hists)")
        values = np.asarray(h.values(), float)
        var = h.variances()
        var = values.copy() if var is None else np.asarray(var, float)
        edges = np.asarray(h.axes[0].edges, float)
    return values * scale, var * scale * scale, edges


# -- the numbers ------------------------------------------------------------------
@dataclasses.dataclass
class Panel:
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

    def as_dict(self) -> dict:
        return {"data_events": None if self.data is None else float(self.data.sum()),
                "mc_events": float(self.mc_total.sum()),
                "mc_by_flavour": {k: float(v.sum()) for k, v in self.mc.items()},
                **(self.agreement or {})}


def datamc_values(data, mc_by_flavour: dict) -> Panel:
    """Numbers of one data/MC panel; the MC histograms must already be normalised."""
    if not mc_by_flavour:
        raise ValueError("no MC histogram to compare with")
    mc, mc_var, edges = {}, {}, None
    for k, h in mc_by_flavour.items():
        v, var, e = _arrays(h)
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
    d, dvar, de = _arrays(data)
    if len(de) != len(edges) or not np.allclose(de, edges):
        raise ValueError("data and MC have different binning")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(total > 0, d / total, np.nan)
        ratio_err = np.where(total > 0, np.sqrt(dvar) / total, np.nan)
    return Panel(edges, d, dvar, mc, mc_var, total, total_var, ratio, ratio_err, band,
                 agreement(d, total, data_var=dvar, mc_var=total_var))


# -- drawing ----------------------------------------------------------------------
def new_datamc_figure(columns: int = 1, ratio: bool = True, width: float = 10.0, height: float = 10.0):
    """A figure with ``columns`` main panels, each with a ratio panel below (shared x)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * columns, height))
    rows = 2 if ratio else 1
    gs = fig.add_gridspec(rows, columns, height_ratios=[3, 1] if ratio else [1], hspace=0.06,
                          wspace=0.28, left=0.13 / columns ** 0.5, right=1 - 0.04 / columns ** 0.5,
                          top=0.93, bottom=0.1)
    pairs = []
    for c in range(columns):
        ax = fig.add_subplot(gs[0, c])
        rax = fig.add_subplot(gs[1, c], sharex=ax) if ratio else None
        pairs.append((ax, rax))
    return fig, pairs


def plot_datamc(data, mc_by_flavour: dict, *, fig=None, ax=None, rax=None, lumi_fb: float | None = None,
                energy: str = "13 TeV", label: str | None = None, xlabel: str | None = None,
                ylabel: str = "Jets", log: bool = False, incomplete_note: str | None = None,
                title: str | None = None, channel: str | None = None, ratio_range=RATIO_RANGE):
    """Draw data vs MC stacked by flavour with a data/MC ratio panel; return the figure.

    ``data``: 1D ``hist.Hist`` (or ``(values, edges[, variances])``), ``None`` for MC only;
    ``mc_by_flavour``: flavour -> 1D histogram, already normalised to the luminosity.
    ``ax``/``rax``: draw into existing main and ratio axes (``rax=None`` with ``ax`` given:
    no ratio panel); by default a new figure is made. ``label``: text after "CMS"
    (default "Preliminary", or "Simulation Preliminary" without data). ``incomplete_note``
    is written in red in the plot. The figure's ``panels`` list gets the :class:`Panel`.
    """
    with cms_style():
        if ax is None:
            fig, [(ax, rax)] = new_datamc_figure(1, ratio=data is not None)
        elif fig is None:
            fig = ax.figure
        panel = datamc_values(data, mc_by_flavour)
        panel.note = incomplete_note
        _draw(panel, ax, rax, lumi_fb=lumi_fb, energy=energy,
              label=label or ("Preliminary" if data is not None else "Simulation Preliminary"),
              xlabel=xlabel, ylabel=ylabel, log=log, note=incomplete_note, title=title, channel=channel,
              ratio_range=ratio_range)
    if not hasattr(fig, "panels"):
        fig.panels = []
    fig.panels.append(panel)
    return fig


def _draw(p: Panel, ax, rax, *, lumi_fb, energy, label, xlabel, ylabel, log, note, title, channel, ratio_range):
    import mplhep

    edges, centers = p.edges, 0.5 * (p.edges[1:] + p.edges[:-1])
    flavours = list(p.mc)
    # MC stack, bottom to top in the given order
    base = np.zeros_like(p.mc_total)
    for i, k in enumerate(flavours):
        ax.stairs(base + p.mc[k], edges, baseline=base.copy(), fill=True, color=flavour_colour(k, i),
                  linewidth=0, label=flavour_label(k), gid=f"mc:{k}")
        base = base + p.mc[k]
    tot = ax.stairs(p.mc_total, edges, color="black", linewidth=1.0, gid="mc:total")
    tot.set_label("_total")
    err = np.sqrt(p.mc_total_var)
    ax.stairs(p.mc_total + err, edges, baseline=p.mc_total - err, fill=True, facecolor="none",
              edgecolor="#4d4d4d", hatch="////", linewidth=0, label="MC stat. unc.", gid="mc:band")
    top = p.mc_total + err
    if p.data is not None:
        shown = p.data > 0
        eb = ax.errorbar(centers[shown], p.data[shown], yerr=np.sqrt(p.data_var[shown]),
                         fmt="o", color="black", markersize=7, elinewidth=1.5, capsize=0, label="Data", zorder=5)
        eb.lines[0].set_gid("data")
        top = np.maximum(top, p.data + np.sqrt(p.data_var))
    ax.set_ylabel(ylabel + _per_bin(edges, xlabel))
    ax.set_xlim(edges[0], edges[-1])

    # legend (top right): data first, then the stack top to bottom, then the band
    handles, labels = ax.get_legend_handles_labels()
    byname = dict(zip(labels, handles))
    order = (["Data"] if p.data is not None else []) + [flavour_label(k) for k in reversed(flavours)] \
        + ["MC stat. unc."]
    order = [n for n in order if n in byname]
    ax.legend([byname[n] for n in order], order, loc="upper right", ncol=1, fontsize="small", frameon=False,
              handlelength=1.4, borderaxespad=0.6, labelspacing=0.3)

    # text block top left inside: title, channel, chi2, note; CMS label above the axes
    block = []                                     # (text, size, extra kwargs)
    if title:  # the legend takes the right half: a long "tagger (distortion)" title goes on two lines
        if len(title) > 20 and " (" in title:
            title = title.replace(" (", "\n(", 1)
        block.append((title, "medium", {"fontweight": "bold"}))
    if channel:
        block.append((CHANNEL_LABELS.get(channel, channel), "small", {}))
    if p.agreement and p.agreement["ndf"]:
        a = p.agreement
        block.append((rf"$\chi^2$/ndf = {a['chi2']:.1f}/{a['ndf']}, p = {_p(a['p_value'])}", "x-small", {}))
    if note:
        block.append((textwrap.fill(note, 30), "x-small",
                      {"color": "#c00000", "fontweight": "bold", "gid": "note:incomplete",
                       "bbox": dict(facecolor="white", edgecolor="#c00000", boxstyle="round,pad=0.25", alpha=0.9)}))
    line = _line_height(ax)
    y = 1 - 0.6 * line
    for text, size, kw in block:
        ax.text(0.04, y, text, transform=ax.transAxes, ha="left", va="top", fontsize=size, **kw)
        y -= _scale(size) * line * (text.count("\n") + 1) + 0.25 * line
    left_used = 1 - y
    right_used = 0.6 * line + (len(order) + 0.3) * _scale("small") * line * 1.3
    _set_ylim(ax, top, p, log, reserved=max(left_used, right_used) + 0.04)
    if not log:                                    # large counts: x10^n above the axis, short tick labels
        from matplotlib.ticker import ScalarFormatter
        fmt = ScalarFormatter(useMathText=True)
        fmt.set_powerlimits((-2, 4))
        ax.yaxis.set_major_formatter(fmt)
    mplhep.cms.label(ax=ax, llabel=label, rlabel=f"{lumi_text(lumi_fb)} ({energy})" if lumi_fb
                     else f"({energy})", loc=0, fontsize=_label_sizes())

    if rax is None:
        ax.set_xlabel(xlabel or "")
        return
    ax.tick_params(labelbottom=False)
    ax.set_xlabel("")
    lo, hi = ratio_range
    rax.stairs(1 + np.nan_to_num(p.band), edges, baseline=1 - np.nan_to_num(p.band), fill=True,
               facecolor="none", edgecolor="#4d4d4d", hatch="////", linewidth=0, gid="ratio:band")
    rax.axhline(1.0, color="black", linestyle="--", linewidth=1)
    if p.ratio is not None:
        ok = np.isfinite(p.ratio) & (p.data > 0)
        reb = rax.errorbar(centers[ok], p.ratio[ok], yerr=p.ratio_err[ok], fmt="o", color="black",
                           markersize=6, elinewidth=1.5, capsize=0, zorder=5)
        reb.lines[0].set_gid("ratio")
        above, below = ok & (p.ratio > hi), ok & (p.ratio < lo)
        span = hi - lo
        rax.plot(centers[above], np.full(above.sum(), hi - 0.06 * span), "^", color="#c00000", markersize=8)
        rax.plot(centers[below], np.full(below.sum(), lo + 0.06 * span), "v", color="#c00000", markersize=8)
    rax.set_ylim(lo, hi)
    from matplotlib.ticker import MaxNLocator
    rax.yaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10], prune="both"))
    rax.set_ylabel("Data / MC", fontsize="small")
    rax.set_xlabel(xlabel or "")
    rax.set_xlim(edges[0], edges[-1])


def _label_sizes():
    import matplotlib

    s = matplotlib.rcParams["font.size"]
    return (s * 1.25, s * 0.95, s * 0.85, s * 0.8)


def _per_bin(edges, xlabel=None) -> str:
    """`` / 0.05`` or `` / 6 GeV`` (the unit from a trailing ``[unit]`` in the x title)."""
    w = np.diff(edges)
    if len(w) and np.allclose(w, w[0]):
        m = re.search(r"\[([^\]]+)\]\s*$", xlabel or "")
        return f" / {w[0]:.3g}" + (f" {m.group(1)}" if m else "")
    return " / bin"


_SIZES = {"xx-small": 0.579, "x-small": 0.694, "small": 0.833, "medium": 1.0, "large": 1.2}


def _scale(size: str) -> float:
    return _SIZES.get(size, 1.0)


def _line_height(ax) -> float:
    """Height of one line of medium text as a fraction of the axes height."""
    import matplotlib

    h_in = ax.get_position().height * ax.figure.get_figheight()
    return 1.2 * matplotlib.rcParams["font.size"] / 72.0 / max(h_in, 1e-3)


def _p(p) -> str:
    return f"{p:.2f}" if p >= 0.01 else f"{p:.1e}"


def _set_ylim(ax, top, p: Panel, log: bool, reserved: float = 0.4):
    """Leave the upper ``reserved`` fraction of the main panel free for the legend and the text."""
    top = np.asarray(top)
    peak = float(np.nanmax(top)) if top.size and np.any(np.isfinite(top)) else 1.0
    peak = peak if peak > 0 else 1.0
    if log:
        ax.set_yscale("log")
        pos = np.concatenate([v[v > 0] for v in [p.mc_total] + ([p.data] if p.data is not None else [])])
        lo = max(float(pos.min()) * 0.3 if pos.size else peak * 1e-4, peak * 1e-6)
        decades = np.log10(peak / lo)
        ax.set_ylim(lo, lo * 10 ** (decades / (1 - reserved)))
    else:
        ax.set_ylim(0, peak / (1 - reserved))


# -- side by side -------------------------------------------------------------------
def plot_datamc_pair(left: tuple, right: tuple, *, titles=("nominal", "adversarial"), xlabels=None, **kw):
    """Two data/MC panels side by side, each with its own ratio panel (4 axes); same y-range.

    ``left``/``right``: ``(data, mc_by_flavour)``; ``xlabels``: one x title per panel (or
    ``xlabel=`` for both); ``incomplete_note`` and the other keywords of
    :func:`plot_datamc` apply to both.
    """
    xlabels = xlabels or (kw.pop("xlabel", None),) * 2
    with cms_style():
        has_data = left[0] is not None
        fig, pairs = new_datamc_figure(2, ratio=has_data)
        fig.panels = []
        for (data, mc), (ax, rax), t, xl in zip((left, right), pairs, titles, xlabels):
            plot_datamc(data, mc, fig=fig, ax=ax, rax=rax, title=t, xlabel=xl, **kw)
        lims = [ax.get_ylim() for ax, _ in pairs]
        lo, hi = min(a for a, _ in lims), max(b for _, b in lims)
        for ax, _ in pairs:
            ax.set_ylim(lo, hi)
    return fig


# -- cutflow ------------------------------------------------------------------------
def cutflow_numbers(cutflows: dict) -> dict:
    """``{dataset: {"steps": [...], "total": [...], "by_channel": {ch: [...]}}}`` from cutflow hists."""
    out = {}
    for ds, h in cutflows.items():
        steps = [str(s) for s in h.axes["step"]]
        if "channel" in h.axes.name:
            chans = [str(c) for c in h.axes["channel"]]
            vals = np.asarray(h.values())
            if h.axes.name.index("step") != 0:
                vals = vals.T
            total = vals.sum(axis=1)
            by = {c: vals[:, i].tolist() for i, c in enumerate(chans) if c != "all"}
        else:
            total, by = np.asarray(h.values()), {}
        out[ds] = {"steps": steps, "total": [float(x) for x in total],
                   "by_channel": {c: [float(x) for x in v] for c, v in by.items()}}
    return out


def plot_cutflow(cutflows: dict, is_data: dict | None = None, *, label: str = "Preliminary",
                 energy: str = "13 TeV", lumi_fb: float | None = None, incomplete_note: str | None = None):
    """Cutflow: cumulative efficiency per step (bars, one per dataset) and a table of event counts."""
    import mplhep
    from matplotlib.figure import Figure

    nums = cutflow_numbers(cutflows)
    is_data = is_data or {}
    datasets = sorted(nums, key=lambda d: (not is_data.get(d, False), d))
    steps = nums[datasets[0]]["steps"] if datasets else []
    with cms_style():
        fig = Figure(figsize=(20, 8.5))
        gs = fig.add_gridspec(1, 2, width_ratios=[1, 1.15], left=0.08, right=0.99, top=0.9, bottom=0.2,
                              wspace=0.08)
        ax = fig.add_subplot(gs[0, 0])
        tab = fig.add_subplot(gs[0, 1])
        tab.axis("off")
        x = np.arange(len(steps))
        width = 0.8 / max(1, len(datasets))
        palette = ("#5790fc", "#e42536", "#f89c20", "#964a8b", "#9c9ca1", "#7a21dd")
        effmin, n_mc = 1.0, 0
        for i, ds in enumerate(datasets):
            tot = np.asarray(nums[ds]["total"])
            eff = tot / tot[0] if tot.size and tot[0] > 0 else np.zeros_like(tot)
            if is_data.get(ds):
                colour = "#333333"
            else:
                colour, n_mc = palette[n_mc % len(palette)], n_mc + 1
            if np.any(eff > 0):
                effmin = min(effmin, float(eff[eff > 0].min()))
            ax.bar(x - 0.4 + width * (i + 0.5), np.maximum(eff, 1e-9), width, color=colour,
                   label=f"{ds} ({'data' if is_data.get(ds) else 'MC'})")
        if effmin > 0.02:
            ax.set_ylim(0, 1.3)
        else:
            from matplotlib.ticker import NullFormatter
            ax.set_yscale("log")
            lo = effmin * 0.5
            ax.set_ylim(lo, (1 / lo) ** 0.35)
            ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xticks(x, steps, rotation=30, ha="right", fontsize="small")
        ax.set_ylabel("fraction of events kept")
        ax.legend(loc="upper right", fontsize="x-small", frameon=False)
        mplhep.cms.label(ax=ax, llabel=label, rlabel=f"{lumi_text(lumi_fb)} ({energy})" if lumi_fb
                         else f"({energy})", loc=0, fontsize=_label_sizes())
        # table: events per step per dataset, cumulative efficiency, and per channel for the last step
        cols, cells = ["step"], []
        for ds in datasets:
            short = ds if len(ds) <= 18 else ds[:16] + "…"
            cols += [f"{short}\nevents", "eff."]
        for j, s in enumerate(steps):
            row = [s]
            for ds in datasets:
                tot = nums[ds]["total"]
                row += [f"{tot[j]:,.0f}", f"{100 * tot[j] / tot[0]:.2f}%" if tot[0] else "-"]
            cells.append(row)
        for ch in ("mumu", "ee"):
            if all(ch in nums[ds]["by_channel"] for ds in datasets) and datasets:
                row = [f"{steps[-1]} ({ch})"]
                for ds in datasets:
                    v, tot = nums[ds]["by_channel"][ch][-1], nums[ds]["total"]
                    row += [f"{v:,.0f}", f"{100 * v / tot[0]:.2f}%" if tot[0] else "-"]
                cells.append(row)
        t = tab.table(cellText=cells, colLabels=cols, loc="upper center", cellLoc="right", colLoc="center")
        t.auto_set_font_size(False)
        t.set_fontsize(15)
        t.scale(1.0, 2.3)
        for (r, c), cell in t.get_celld().items():
            cell.set_edgecolor("#bbbbbb")
            if r == 0:
                cell.set_text_props(fontweight="bold", fontsize=13)
                cell.set_height(cell.get_height() * 1.5)
            if c == 0:
                cell.set_text_props(ha="left")
                cell._loc = "left"
        tab.set_title("events passing each step (unweighted)", fontsize="small")
        if incomplete_note:
            fig.text(0.5, 0.03, incomplete_note, ha="center", color="#c00000", fontweight="bold",
                     fontsize="small", gid="note:incomplete")
    fig.cutflow = nums
    return fig


# -- a whole run --------------------------------------------------------------------
@dataclasses.dataclass
class Normalisation:
    """How each dataset enters the plots: data, or MC scaled by ``scale``."""
    lumi_pb: float | None
    datasets: dict                     # dataset -> {"is_data", "scale", "xsec", "sumw", ...}
    to_data: bool                      # MC scaled to the data yield per plot (no xsec/lumi)
    notes: list                        # visible notes (incompleteness, fallbacks)

    @property
    def note(self) -> str | None:
        return "; ".join(self.notes) if self.notes else None

    @property
    def data(self) -> list:
        return [d for d, x in self.datasets.items() if x["is_data"]]

    @property
    def mc(self) -> list:
        return [d for d, x in self.datasets.items() if not x["is_data"]]


def read_metadata(run_dir: str) -> dict:
    """Per-dataset fileset metadata recorded by the run (``RUN/ledger.sqlite`` meta ``fileset``)."""
    import os

    from ..engine.ledger import Ledger

    path = os.path.join(run_dir, "ledger.sqlite")
    if not os.path.exists(path):
        return {}
    led = Ledger(path, readonly=True)
    try:
        return _metadata_of(led.get_meta("fileset") or {})
    finally:
        led.close()


def _metadata_of(fileset: dict) -> dict:
    """``{ds: metadata}`` from a coffea-style fileset dict or an already flat ``{ds: metadata}``."""
    if "datasets" in fileset and isinstance(fileset["datasets"], dict):
        fileset = fileset["datasets"]
    return {ds: dict(v.get("metadata", {}) if isinstance(v, dict) and ("files" in v or "metadata" in v)
                     else (v if isinstance(v, dict) else {}))
            for ds, v in fileset.items()}


def _pct(frac: float) -> str:
    import math

    pct = 100.0 * frac
    if pct >= 99:
        return f"{math.floor(pct * 10) / 10:.1f}%"
    return f"{math.floor(pct)}%" if pct >= 1 else f"{pct:.2g}%"


def completeness_notes(completeness: dict, datasets: dict) -> list[str]:
    """Visible notes for incompletely processed data or MC ("incomplete: 93% of MC events processed")."""
    notes = []
    for kind, names in (("MC", [d for d, x in datasets.items() if not x["is_data"]]),
                        ("data", [d for d, x in datasets.items() if x["is_data"]])):
        if not names:
            continue
        recs = [completeness.get(d) for d in names]
        if any(r is None for r in recs):
            notes.append(f"{kind} completeness not recorded")
            continue
        if all(r.get("complete", False) for r in recs):
            continue
        planned = sum(int(r.get("events_planned", 0) or 0) for r in recs)
        done = sum(int(r.get("events_processed", 0) or 0) for r in recs)
        bad = sum(int(r.get("files_unreadable", 0) or 0) for r in recs)
        parts = []
        if planned and done < planned:
            txt = f"{_pct(done / planned)} of {kind} events processed"
            parts.append(txt + (" (luminosity not corrected)" if kind == "data" else ""))
        if bad:
            parts.append(f"{bad} {kind} file{'s' if bad > 1 else ''} unreadable")
        if not parts:
            parts.append(f"{kind} not complete")
        notes.append("incomplete: " + ", ".join(parts))
    return notes


def normalisation(out, metadata: dict, lumi_pb: float | None = None) -> Normalisation:
    """Scale factors ``xsec * lumi / sumw`` per MC dataset (``sumw``: generator weights of the
    processed chunks; the event count when the sample has no ``genWeight``). ``lumi_pb``
    defaults to the summed ``lumi`` of the data datasets."""
    ds_info, notes = {}, []
    for ds in out.hists:
        md = metadata.get(ds, {})
        ds_info[ds] = {"is_data": bool(md.get("is_data", False)), "xsec": md.get("xsec"),
                       "lumi": md.get("lumi"), "in_fileset": ds in metadata}
    if lumi_pb is None:
        lumis = [x["lumi"] for x in ds_info.values() if x["is_data"] and x["lumi"] is not None]
        lumi_pb = float(sum(lumis)) if lumis else None
    to_data = False
    for ds, x in ds_info.items():
        if x["is_data"]:
            x["scale"] = 1.0
            continue
        c = out.counters.get(ds, {})
        sumw = c.get("sumw", out.completeness.get(ds, {}).get("sumw_processed"))
        x["sumw_source"] = "sumw"
        if sumw is None:
            sumw, x["sumw_source"] = c.get("events"), "events"
        x["sumw"] = sumw
        if x["xsec"] is None or lumi_pb is None or not sumw:
            to_data = True
            x["scale"] = None
        else:
            x["scale"] = float(x["xsec"]) * lumi_pb / float(sumw)
    if to_data:
        has_data = any(x["is_data"] for x in ds_info.values())
        why = "no luminosity" if lumi_pb is None else "no cross section or sum of weights"
        if has_data:
            notes.append(f"MC normalised to the data yield ({why})")
        else:
            notes.append(f"MC not normalised ({why})")
        for x in ds_info.values():
            if not x["is_data"]:
                x["scale"] = 1.0
    if not metadata:
        notes.append("no fileset metadata: every dataset taken as MC")
    notes = completeness_notes(out.completeness, ds_info) + notes
    return Normalisation(lumi_pb, ds_info, to_data, notes)


def _tuple_sum(items):
    """Sum of ``(values, edges, variances)`` tuples (same binning); None when empty."""
    items = [i for i in items if i is not None]
    if not items:
        return None
    v = np.sum([i[0] for i in items], axis=0)
    var = np.sum([i[2] for i in items], axis=0)
    return (v, items[0][1], var)


def _as_tuple(h, scale=1.0):
    v, var, e = _arrays(h, scale)
    return (v, e, var)


def run_components(hists: dict, name: str, norm: Normalisation, channel: str):
    """(data, mc_by_flavour, xlabel) for histogram ``name`` summed over datasets, MC normalised."""
    data_parts, mc_parts, label = [], {}, None
    for ds, x in norm.datasets.items():
        h = hists.get(ds, {}).get(name)
        if h is None:
            continue
        label = label or value_axis(h).label
        if x["is_data"]:
            d = data_hist(h, channel)
            if d is not None:
                data_parts.append(_as_tuple(d))
        else:
            for fl, hf in mc_flavour_hists(h, channel).items():
                mc_parts.setdefault(fl, []).append(_as_tuple(hf, x["scale"]))
    data = _tuple_sum(data_parts)
    mc = {fl: _tuple_sum(parts) for fl, parts in mc_parts.items()}
    if norm.to_data and data is not None and mc:
        tot = sum(float(t[0].sum()) for t in mc.values())
        k = float(data[0].sum()) / tot if tot > 0 else 1.0
        mc = {fl: (t[0] * k, t[1], t[2] * k * k) for fl, t in mc.items()}
    return data, mc, label


def _kind(name: str, h) -> str | None:
    if name == "cutflow" or "step" in h.axes.name:
        return "cutflow"
    try:
        value_axis(h)
    except ValueError:
        return None
    return "input" if name.startswith("input_") else "discriminant"


def _pairs(names) -> list[tuple[str, str]]:
    """(nominal, adversarial) name pairs: the names differ only by ``nominal`` -> ``adversarial``
    (``nominal_BvsL``/``adversarial_BvsL``, ``DeepJet_nominal@fgsm0.01_CvsL``/``DeepJet_adversarial@fgsm0.01_CvsL``)."""
    names = set(names)
    return sorted((n, n.replace("nominal", "adversarial", 1)) for n in names
                  if "nominal" in n and n.replace("nominal", "adversarial", 1) in names)


def _channels(hists, name, channel) -> list[str]:
    chans = []
    for hs in hists.values():
        if name in hs and "channel" in hs[name].axes.name:
            chans += [c for c in _categories(hs[name], "channel") if c not in chans and c != "all"]
    if channel in ("all", None):
        return ["all"] + chans
    if channel == "sum":
        return ["all"]
    return [channel] if channel in chans else []


def load_run(run, metadata: dict | None = None):
    """(RunOutput, {dataset: metadata}) from a run directory or a RunOutput (+ metadata)."""
    import os

    from ..errors import ConfigError
    from ..engine.outputs import RunOutput, load_output

    if isinstance(run, RunOutput):
        out = run
    else:
        run = os.fspath(run)
        if not os.path.exists(os.path.join(run, "output", "hists.json")):
            raise ConfigError(f"{run} has no merged output (output/hists.json); is it a finished jetdask run?",
                              "run_dir")
        out = load_output(run)
    if metadata is None:
        metadata = read_metadata(out.run_dir) if out.run_dir else {}
    else:
        metadata = _metadata_of(metadata)
    return out, metadata


def build_figures(run, *, metadata: dict | None = None, lumi: float | None = None, channel: str = "all",
                  energy: str = "13 TeV", label: str | None = None, log="auto", only=None,
                  norm: Normalisation | None = None):
    """Yield ``(file_stem, figure, summary_entry)`` for every plot of a run (see :func:`plot_run`).

    ``lumi`` in pb^-1 (as the fileset's ``lumi``) overrides the data luminosity; ``only``:
    glob patterns of histogram names to plot (default all).
    """
    import fnmatch

    out, md = load_run(run, metadata)
    norm = norm or normalisation(out, md, lumi)
    lumi_fb = norm.lumi_pb / 1000.0 if norm.lumi_pb else None
    has_data = bool(norm.data)
    label = label or ("Preliminary" if has_data else "Simulation Preliminary")
    kinds = {}
    patterns = [only] if isinstance(only, str) else only
    for hs in out.hists.values():
        for name, h in hs.items():
            if name not in kinds and (not patterns or any(fnmatch.fnmatchcase(name, x) for x in patterns)):
                kinds[name] = _kind(name, h)
    common = dict(lumi_fb=lumi_fb, energy=energy, label=label, incomplete_note=norm.note)

    def use_log(kind, mc=None):
        """auto: log for discriminants and for inputs spanning more than two decades."""
        if log != "auto":
            return bool(log)
        if kind == "discriminant":
            return True
        tot = np.sum([t[0] for t in mc.values()], axis=0) if mc else np.zeros(1)
        pos = tot[tot > 0]
        return bool(pos.size and pos.max() / pos.min() > 100)

    def one(name, kind):
        for ch in _channels(out.hists, name, channel):
            data, mc, axlabel = run_components(out.hists, name, norm, ch)
            if not mc:
                continue
            fig = plot_datamc(data if has_data else None, mc, xlabel=xlabel_for(name, axlabel),
                              log=use_log(kind, mc), channel=ch, **common)
            entry = {"histogram": name, "channel": ch, "kind": kind, "incomplete": norm.note,
                     **fig.panels[0].as_dict()}
            yield _stem(name, ch), fig, entry

    discs = sorted(n for n, k in kinds.items() if k == "discriminant")
    discs.sort(key=lambda n: (not n.startswith("DeepJet"), n))
    for name in discs:
        yield from one(name, "discriminant")
    for left, right in _pairs(discs):
        lt, disc = split_name(left)
        rt, _ = split_name(right)
        for ch in _channels(out.hists, left, channel):
            ld, lm, lax = run_components(out.hists, left, norm, ch)
            rd, rm, rax_ = run_components(out.hists, right, norm, ch)
            if not lm or not rm:
                continue
            fig = plot_datamc_pair((ld if has_data else None, lm), (rd if has_data else None, rm),
                                   titles=(tagger_label(lt), tagger_label(rt)),
                                   xlabels=(xlabel_for(left, lax), xlabel_for(right, rax_)),
                                   log=use_log("discriminant"), channel=ch, **common)
            entry = {"histogram": f"{left} vs {right}", "channel": ch, "kind": "comparison",
                     "incomplete": norm.note,
                     "panels": {left: fig.panels[0].as_dict(), right: fig.panels[1].as_dict()}}
            stem = _stem(f"{lt}_vs_{rt}" + (f"_{disc}" if disc else ""), ch)
            yield stem, fig, entry
    for name in sorted(n for n, k in kinds.items() if k == "input"):
        yield from one(name, "input")
    if "cutflow" in kinds and kinds["cutflow"] == "cutflow":
        cfs = {ds: hs["cutflow"] for ds, hs in out.hists.items() if "cutflow" in hs}
        fig = plot_cutflow(cfs, {ds: norm.datasets[ds]["is_data"] for ds in cfs}, label=label, energy=energy,
                           lumi_fb=lumi_fb, incomplete_note=norm.note)
        yield "cutflow", fig, {"histogram": "cutflow", "kind": "cutflow", "incomplete": norm.note,
                               "cutflow": fig.cutflow}


def _stem(name, channel):
    return file_stem(name, channel)


def plot_run(run, out_dir: str | None = None, formats=("png",), channel: str = "all", *,
             metadata: dict | None = None, lumi: float | None = None, energy: str = "13 TeV",
             label: str | None = None, log="auto", only=None, verbose: bool = True) -> list[str]:
    """Write every data/MC figure of a run and ``summary.json``; return the figure paths.

    ``run``: a run directory or a :class:`~jetdask.engine.outputs.RunOutput` (then ``metadata``,
    the fileset dict or ``{dataset: metadata}``, is read from ``run.run_dir`` unless given).
    ``out_dir`` defaults to ``RUN/plots``. ``channel``: ``"all"`` (channels summed and each
    channel), ``"sum"`` (summed only) or one channel (``"mumu"``, ``"ee"``). ``lumi`` in
    pb^-1 overrides the data luminosity. ``log``: ``"auto"`` (log y for discriminants and
    for inputs spanning more than two decades), True or False. ``only``: glob patterns of
    histogram names (e.g. ``["DeepJet_*", "cutflow"]``).

    Files (one per format): ``{tagger}_{disc}_{channel}``, ``{nominal}_vs_{adversarial}_{disc}_{channel}``
    (side by side, whenever ``nominal*`` and ``adversarial*`` with the same suffix exist),
    ``input_*_{channel}`` and ``cutflow``; ``channel`` is ``all`` for the channel sum.
    """
    import json
    import os
    import time

    from .summary import format_table

    out, md = load_run(run, metadata)
    if out_dir is None:
        if not out.run_dir:
            raise ValueError("out_dir is needed when the RunOutput has no run_dir")
        out_dir = os.path.join(out.run_dir, "plots")
    os.makedirs(out_dir, exist_ok=True)
    if isinstance(formats, str):
        formats = [f.strip() for f in formats.split(",") if f.strip()]
    norm = normalisation(out, md, lumi)
    paths, plots = [], {}
    for stem, fig, entry in build_figures(out, metadata=md, lumi=lumi, channel=channel, energy=energy,
                                          label=label, log=log, only=only, norm=norm):
        files = []
        with cms_style():
            for fmt in formats:
                path = os.path.join(out_dir, f"{stem}.{fmt}")
                fig.savefig(path, dpi=100 if fmt == "png" else None)
                files.append(path)
        entry["files"] = [os.path.basename(f) for f in files]
        plots[stem] = entry
        paths += files
    summary = {"run_dir": os.path.abspath(out.run_dir) if out.run_dir else None,
               "written": time.strftime("%Y-%m-%dT%H:%M:%S"), "lumi_pb": norm.lumi_pb, "energy": energy,
               "complete": bool(out.complete), "notes": norm.notes,
               "normalisation": norm.datasets, "plots": plots}
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2, default=_json_default)
        f.write("\n")
    if verbose:
        print(format_table(plots))
        for n in norm.notes:
            print(f"NOTE: {n}")
    return paths


def _json_default(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")
