"""Cutflow figure: fraction of events kept per step (bars, one per dataset) and a table of counts.

Per-channel rows of the last step are filled for the datasets of that channel
(:func:`dataset_channels`: the metadata's ``channels``/``channel``, else the primary dataset
name — ``*Muon*`` is mumu, ``EGamma``/``*Electron*``/``*EG`` is ee — MC belongs to every channel)
and for every dataset with events in that channel at the last step (what that channel's
figures show: unskimmed data read as one data set fill both channels); a cell is blank only
for a dataset of another channel without such events.
Steps in ``drop_steps`` (e.g. ``lumi`` when no golden JSON was applied) are left out.
"""
from __future__ import annotations

import re

import numpy as np

from .style import cms_label, cms_style, new_figure

DATA_GREYS = ("#333333", "#7f7f7f", "#b3b3b3")
PALETTE = ("#5790fc", "#e42536", "#f89c20", "#964a8b", "#9c9ca1", "#7a21dd")
_CHANNEL_OF_PD = ((re.compile(r"muon", re.I), "mumu"),
                  (re.compile(r"egamma|electron|(^|[^a-z])eg($|[^a-z])|doubleeg", re.I), "ee"))


def cutflow_numbers(cutflows: dict, drop_steps=()) -> dict:
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
            by = {c: vals[:, i] for i, c in enumerate(chans) if c != "all"}
        else:
            total, by = np.asarray(h.values()), {}
        keep = [i for i, s in enumerate(steps) if s not in drop_steps]
        out[ds] = {"steps": [steps[i] for i in keep], "total": [float(total[i]) for i in keep],
                   "by_channel": {c: [float(v[i]) for i in keep] for c, v in by.items()}}
    return out


def dataset_channels(name: str, metadata: dict | None, is_data: bool, channels) -> list[str]:
    """The channels whose rows a dataset contributes to (see the module docstring)."""
    md = metadata or {}
    given = md.get("channels", md.get("channel"))
    if given is not None:
        given = [given] if isinstance(given, str) else list(given)
        return [c for c in channels if c in given]
    if not is_data:
        return list(channels)
    for pattern, ch in _CHANNEL_OF_PD:
        if pattern.search(name):
            return [c for c in channels if c == ch]
    return list(channels)


def _table_rows(nums: dict, datasets: list, members: dict) -> list[list[str]]:
    steps = nums[datasets[0]]["steps"]
    rows = []
    for j, s in enumerate(steps):
        row = [s]
        for ds in datasets:
            tot = nums[ds]["total"]
            row += [f"{tot[j]:,.0f}", f"{100 * tot[j] / tot[0]:.2f}%" if tot[0] else "-"]
        rows.append(row)
    chans = sorted({c for ds in datasets for c in nums[ds]["by_channel"]}, key=lambda c: (c != "mumu", c))
    for ch in chans:
        if not any(ch in members[ds] or nums[ds]["by_channel"].get(ch, [0])[-1] for ds in datasets):
            continue
        row = [f"{steps[-1]} ({ch})"]
        for ds in datasets:
            v, tot = nums[ds]["by_channel"].get(ch), nums[ds]["total"]
            if v is None or (ch not in members[ds] and not v[-1]):
                row += ["", ""]
            else:
                row += [f"{v[-1]:,.0f}", f"{100 * v[-1] / tot[0]:.2f}%" if tot[0] else "-"]
        rows.append(row)
    return rows


def _short(name: str, n: int = 24) -> str:
    return name if len(name) <= n else name[:n - 1] + "…"


def _bars(ax, nums, datasets, is_data):
    """Bars of the fraction kept; the legend in the upper corner that needs the least headroom
    (the rule of :mod:`jetdask.plotting.layout`, with the bars as the content beneath it)."""
    from . import layout

    steps = nums[datasets[0]]["steps"]
    x = np.arange(len(steps))
    width = 0.8 / max(1, len(datasets))
    effmin, n_mc, n_data, tops = 1.0, 0, 0, np.zeros(len(steps))
    for i, ds in enumerate(datasets):
        tot = np.asarray(nums[ds]["total"])
        eff = tot / tot[0] if tot.size and tot[0] > 0 else np.zeros_like(tot)
        if is_data.get(ds):
            colour = DATA_GREYS[n_data % len(DATA_GREYS)]
            n_data += 1
        else:
            colour, n_mc = PALETTE[n_mc % len(PALETTE)], n_mc + 1
        if np.any(eff > 0):
            effmin = min(effmin, float(eff[eff > 0].min()))
        tops = np.maximum(tops, eff)
        ax.bar(x - 0.4 + width * (i + 0.5), np.maximum(eff, 1e-9), width, color=colour,
               label=f"{_short(ds)} ({'data' if is_data.get(ds) else 'MC'})", gid=f"cutflow:{ds}")
    log = effmin <= 0.05
    lo = 0.0 if not log else effmin * 0.5
    if log:
        from matplotlib.ticker import NullFormatter
        ax.set_yscale("log")
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(x, steps, rotation=30, ha="right", fontsize="small")
    edges = np.arange(len(steps) + 1) - 0.5
    ax.set_xlim(edges[0], edges[-1])
    ax.set_ylim(lo if log else 0.0, 1.0)
    box = ax.legend(loc="upper right", fontsize="x-small", frameon=False)
    w, h = layout.box_size(ax, box)
    need = {c: layout.needed_top(tops, edges, c, w, h, lo=lo if log else 0.0, log=log) for c in layout.CORNERS}
    corner = min(layout.CORNERS, key=lambda c: need[c])
    floor = 1.0 * (1 / lo) ** 0.3 if log else 1.15
    ax.set_ylim(lo, max(floor, need[corner]) if np.isfinite(need[corner]) else floor)
    box.set_loc(corner)
    ax.set_ylabel("fraction of events kept")


def plot_cutflow(cutflows: dict, is_data: dict | None = None, *, label: str = "Private work",
                 energy: str = "13 TeV", lumi_fb: float | None = None, incomplete_note: str | None = None,
                 metadata: dict | None = None, drop_steps=()):
    """Cutflow figure (bars and table); ``fig.cutflow`` holds the numbers shown.

    ``is_data``: dataset -> bool; ``metadata``: dataset -> fileset metadata (channel
    membership); ``drop_steps``: step names left out.
    """
    nums = cutflow_numbers(cutflows, drop_steps)
    is_data = is_data or {}
    metadata = metadata or {}
    datasets = sorted(nums, key=lambda d: (not is_data.get(d, False), d))
    if not datasets:
        raise ValueError("no cutflow histogram to plot")
    chans = sorted({c for ds in datasets for c in nums[ds]["by_channel"]})
    members = {ds: dataset_channels(ds, metadata.get(ds), is_data.get(ds, False), chans) for ds in datasets}
    rows = _table_rows(nums, datasets, members)
    # sizes in inches: bars 7 wide; the table as tall as its rows, as wide as its columns (no empty area);
    # the header spans bars and table, the table's title level with the top of the bars
    height = max(6.35, 1.65 + 0.5 * (len(rows) + 1.5))
    bars_w, table_w = 7.0, max(5.6, 2.2 + 2.6 * len(datasets))     # at least as wide as its title
    width = 1.1 + bars_w + 0.5 + table_w + 0.15
    with cms_style():
        fig = new_figure(width, height)
        ax = fig.add_axes([1.1 / width, 1.6 / height, bars_w / width, (height - 1.6 - 0.7) / height])
        tab = fig.add_axes([(1.6 + bars_w) / width, 0.25 / height, table_w / width, (height - 0.25 - 1.2) / height])
        tab.axis("off")
        _bars(ax, nums, datasets, is_data)
        cms_label(ax, label, lumi_fb=lumi_fb, energy=energy, right_ax=tab)
        cols = ["step"]
        for ds in datasets:
            cols += [f"{_short(ds, 13)}\nevents", "eff."]
        widths = np.array([2.2] + [1.5, 1.1] * len(datasets))            # inches: step, then events and eff.
        t = tab.table(cellText=rows, colLabels=cols, cellLoc="right", colLoc="center", bbox=[0, 0, 1, 1],
                      colWidths=list(widths / widths.sum()))
        t.auto_set_font_size(False)
        t.set_fontsize(15)
        for (r, c), cell in t.get_celld().items():
            cell.set_edgecolor("#bbbbbb")
            if r == 0:
                cell.set_text_props(fontweight="bold", fontsize=12)
            if c == 0:
                cell.set_text_props(ha="left")
                cell._loc = "left"
        tab.set_title("events passing each step (unweighted)", fontsize="small", pad=12)
        if incomplete_note:
            fig.text(0.5, 0.01, incomplete_note, ha="center", va="bottom", color="#c00000", fontweight="bold",
                     fontsize="small", gid="note:incomplete")
    fig.cutflow = nums
    fig.cutflow_rows = rows
    return fig
