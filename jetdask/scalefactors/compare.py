"""Tagger comparison: each tagger's light-jet SF per working point and pT bin (|eta| summed),
with its uncertainty and its distance from 1 in units of that uncertainty.

Rows of :func:`records` are JSON-able; :func:`format_table` prints one block per working
point with the taggers side by side; :func:`figure` draws the same numbers (mplhep CMS style).
"""
from __future__ import annotations

import itertools

import numpy as np

from .measure import SFTable


def _f(x) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def records(tables: list[SFTable]) -> list[dict]:
    """One row per tagger, working point and pT bin of |eta|-inclusive working-point tables."""
    rows = []
    for t in tables:
        if t.kind != "wp":
            continue
        dist = t.distance(1.0)
        for iw, wp in enumerate(t.wps):
            for ie in range(len(t.abseta_edges) - 1):
                for ip in range(len(t.pt_edges) - 1):
                    i = (iw, ie, ip)
                    rows.append({"tagger": t.tagger, "discriminant": t.discriminant, "wp": wp.name, "cut": wp.used,
                                 "cut_origin": wp.origin, "abseta": [float(t.abseta_edges[ie]),
                                                                     float(t.abseta_edges[ie + 1])],
                                 "pt": [float(t.pt_edges[ip]), float(t.pt_edges[ip + 1])],
                                 "sf": _f(t.central[i]) if t.defined[i] else None,
                                 "undefined": t.why_undefined(i),
                                 "up": _f(t.up[i]) if t.defined[i] else None,
                                 "down": _f(t.down[i]) if t.defined[i] else None,
                                 "stat": _f(np.hypot(t.stat["data"][i], t.stat["mc"][i])) if t.defined[i] else None,
                                 "sigmas_from_1": _f(dist[i]) if t.defined[i] else None,
                                 "mc_light_efficiency": (_f(t.mc_efficiency[i]) if t.mc_efficiency is not None
                                                         else None)})
    return rows


def _num(x: float) -> str:
    return f"{x:.2f}" if abs(x) < 100 else f"{x:.3g}"


def _cell(r: dict | None) -> str:
    if r is None:
        return "-"
    if r["sf"] is None:
        return r.get("undefined") or "no data"
    s = r["sigmas_from_1"]
    sig = f"{s:+.1f}" if s is not None else "?"
    unc = f"+-{_num(r['up'])}" if _num(r["up"]) == _num(r["down"]) else f"+{_num(r['up'])}/-{_num(r['down'])}"
    return f"{_num(r['sf'])} {unc} ({sig})"


def format_table(tables: list[SFTable], taggers: list[str] | None = None) -> str:
    """Per working point: pT bins as rows, taggers side by side (two header lines: tagger and
    discriminant, cut); ``(+2.1)``: (SF - 1) in units of its uncertainty."""
    rows = records(tables)
    if taggers:
        rows = [r for r in rows if r["tagger"] in taggers]
    if not rows:
        return "no working-point scale factors"
    keys = list(dict.fromkeys((r["tagger"], r["discriminant"]) for r in rows))
    lines = [("light-jet SF = (data - MC non-light) / MC light, |eta| summed; (+2.1): (SF - 1) in units of its "
              "uncertainty")]
    for wp in dict.fromkeys(r["wp"] for r in rows):
        sel = [r for r in rows if r["wp"] == wp]
        pts = list(dict.fromkeys(tuple(r["pt"]) for r in sel))
        names, cuts = [], []
        for k in keys:
            cut = next((r["cut"] for r in sel if (r["tagger"], r["discriminant"]) == k), None)
            names.append(f"{k[0]} {k[1]}")
            cuts.append(f">= {cut:g}" if cut is not None else "")
        cells = [[_cell(next((r for r in sel if tuple(r["pt"]) == pt and (r["tagger"], r["discriminant"]) == k),
                             None)) for k in keys] for pt in pts]
        width = max(len(c) for c in names + [c for row in cells for c in row]) + 2
        lines += ["", f"{'WP ' + wp:<12}" + "".join(f"{h:>{width}}" for h in names),
                  f"{'':<12}" + "".join(f"{c:>{width}}" for c in cuts)]
        for pt, row in zip(pts, cells):
            lines.append(f"{f'pT {pt[0]:g}-{pt[1]:g}':<12}" + "".join(f"{c:>{width}}" for c in row))
    return "\n".join(lines)


def figure(tables: list[SFTable], *, label: str = "Simulation Private work", energy: str = "13 TeV",
           lumi_fb: float | None = None, names: dict | None = None):
    """Each tagger's SF vs pT, one panel per working point, taggers offset side by side."""
    from ..plotting.style import EXTRA_COLOURS, cms_label, cms_style, new_figure
    names = names or {}
    tables = [t for t in tables if t.kind == "wp"]
    wps = list(dict.fromkeys(w.name for t in tables for w in t.wps))
    with cms_style():
        fig = new_figure(6.5 * max(1, len(wps)), 6.0)
        axes = fig.subplots(1, max(1, len(wps)), squeeze=False)[0]
        for ax, wp in zip(axes, wps):
            n = len(tables)
            shown = [1.0]
            for k, t in enumerate(tables):
                if wp not in [w.name for w in t.wps]:
                    continue
                iw = [w.name for w in t.wps].index(wp)
                x = np.arange(len(t.pt_edges) - 1) + (k + 1) / (n + 1)     # pT bin i spans [i, i + 1)
                ok = t.defined[iw, 0]
                shown += list(t.central[iw, 0][ok])
                ax.errorbar(x[ok], t.central[iw, 0][ok], yerr=[t.down[iw, 0][ok], t.up[iw, 0][ok]], fmt="o",
                            color=EXTRA_COLOURS[k % len(EXTRA_COLOURS)] if k else "black", capsize=3,
                            label=names.get(t.tagger, t.tagger) + f" {t.discriminant}")
            edges = tables[0].pt_edges if tables else np.array([0.0, 1.0])
            for i in range(1, len(edges) - 1):
                ax.axvline(i, color="0.85", lw=0.8)
            ax.set_xticks(np.arange(len(edges) - 1) + 0.5)
            ax.set_xticklabels([f"{a:g}-{b:g}" for a, b in itertools.pairwise(edges)], rotation=45, ha="right",
                               fontsize="small")
            ax.set_xlim(0, len(edges) - 1)
            span = max(max(shown) - min(shown), 0.2)
            ax.set_ylim(min(shown) - 0.4 * span, max(shown) + 1.6 * span)   # room for the legend; long bars leave
            if len(shown) == 1:
                ax.text(0.5, 0.3, "no measured SF", transform=ax.transAxes, ha="center", color="0.4")
            ax.axhline(1.0, color="0.4", ls="--", lw=1)
            ax.set_xlabel(r"jet $p_T$ bin [GeV]")
            ax.set_ylabel(f"light-jet SF, WP {wp}")
            ax.legend(fontsize="x-small", loc="upper left")
            cms_label(ax, label, lumi_fb=lumi_fb, energy=energy)
        fig.tight_layout()
    return fig


def save_figure(res, path: str, names: dict | None = None) -> str:
    """Draw :func:`figure` of an :class:`~jetdask.scalefactors.derive.SFResult` into ``path``."""
    from ..plotting.style import PNG_DPI, cms_style
    f = res.facts or {}
    fig = figure(res.wp_inclusive, label=f.get("label", "Private work"), energy=f.get("energy", "13 TeV"),
                 lumi_fb=f.get("lumi_fb"), names=names)
    with cms_style():
        fig.savefig(path, dpi=PNG_DPI if path.endswith(".png") else None)
    return path
