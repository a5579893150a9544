"""Cutflow figure: fraction of events kept per step (bars, one per dataset) and a table of counts.

Per-channel rows of the last step are shown only for the datasets of that channel
(:func:`dataset_channels`: the metadata's ``channels``/``channel``, else the primary dataset
name — ``*Muon*`` is mumu, ``EGamma``/``*Electron*``/``*EG`` is ee — MC belongs to every channel).
Steps in ``drop_steps`` (e.g. ``lumi`` when no golden JSON was applied) are left out.
"""
from __future__ import annotations

import re

import numpy as np

from .style import cms_label, cms_style, new_figure

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
        if not any(ch in members[ds] for ds in datasets):
            continue
        row = [f"{steps[-1]} ({ch})"]
        for ds in datasets:
            v, tot = nums[ds]["by_channel"].get(ch), nums[ds]["total"]
            if ch not in members[ds] or v is None:
                row += ["", ""]
            else:
                row += [f"{v[-1]:,.0f}", f"{100 * v[-1] / tot[0]:.2f}%" if tot[0] else "-"]
        rows.append(row)
    return rows


def _bars(ax, nums, datasets, is_data):
    steps = nums[datasets[0]]["steps"]
    x = np.arange(len(steps))
    width = 0.8 / max(1, len(datasets))
    effmin, n_mc = 1.0, 0
    for i, ds in enumerate(datasets):
        tot = np.asarray(nums[ds]["total"])
        eff = tot / tot[0] if tot.size and tot[0] > 0 else np.zeros_like(tot)
        if is_data.get(ds):
            colour = "#333333"
        else:
            colour, n_mc = PALETTE[n_mc % len(PALETTE)], n_mc + 1
        if np.any(eff > 0):
            effmin = min(effmin, float(eff[eff > 0].min()))
        ax.bar(x - 0.4 + width * (i + 0.5), np.maximum(eff, 1e-9), width, color=colour,
               label=f"{ds} ({'data' if is_data.get(ds) else 'MC'})", gid=f"cutflow:{ds}")
    if effmin > 0.05:
        ax.set_ylim(0, 1.35)
    else:
        from matplotlib.ticker import NullFormatter
        ax.set_yscale("log")
        lo = effmin * 0.5
        ax.set_ylim(lo, 1.0 * (1 / lo) ** 0.3)
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(x, steps, rotation=30, ha="right", fontsize="small")
    ax.set_xlim(-0.6, len(steps) - 0.4)
    ax.set_ylabel("fraction of events kept")
    ax.legend(loc="upper right", fontsize="x-small", frameon=False)


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
    # sizes in inches: bars 7 wide; the table as tall as its rows, as wide as its columns (no empty area)
    height = max(6.0, 1.3 + 0.5 * (len(rows) + 1.5))
    bars_w, table_w = 7.0, 2.2 + 2.6 * len(datasets)
    width = 1.1 + bars_w + 0.5 + table_w + 0.15
    with cms_style():
        fig = new_figure(width, height)
        ax = fig.add_axes([1.1 / width, 1.6 / height, bars_w / width, (height - 1.6 - 0.7) / height])
        tab = fig.add_axes([(1.6 + bars_w) / width, 0.25 / height, table_w / width, (height - 0.25 - 0.8) / height])
        tab.axis("off")
        _bars(ax, nums, datasets, is_data)
        cms_label(ax, label, lumi_fb=lumi_fb, energy=energy)
        cols = ["step"]
        for ds in datasets:
            cols += [f"{ds if len(ds) <= 18 else ds[:16] + '…'}\nevents", "eff."]
        t = tab.table(cellText=rows, colLabels=cols, cellLoc="right", colLoc="center", bbox=[0, 0, 1, 1])
        t.auto_set_font_size(False)
        t.set_fontsize(15)
        for (r, c), cell in t.get_celld().items():
            cell.set_edgecolor("#bbbbbb")
            if r == 0:
                cell.set_text_props(fontweight="bold", fontsize=12)
            if c == 0:
                cell.set_text_props(ha="left")
                cell._loc = "left"
        tab.set_title("events passing each step (unweighted)", fontsize="small")
        if incomplete_note:
            fig.text(0.5, 0.01, incomplete_note, ha="center", va="bottom", color="#c00000", fontweight="bold",
                     fontsize="small", gid="note:incomplete")
    fig.cutflow = nums
    fig.cutflow_rows = rows
    return fig
