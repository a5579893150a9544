"""The data/MC ratio panel: a range adapted to the points, off-scale points marked with their value.

Range rule (:func:`ratio_range`): symmetric about 1, the half-width the smallest of
``HALF_WIDTHS`` that holds every ratio point with ``MARGIN`` (10 %) to spare; clamped to
``RATIO_CLAMP`` = (0, 2), i.e. a half-width of at most 1. Points outside the clamp are drawn
as red triangles on the frame with their value written beside them, in one of two rows
(:func:`place_labels`): a value that would overlap one already written is left out, its
triangle stays.
"""
from __future__ import annotations

import numpy as np

HALF_WIDTHS = (0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)
RATIO_CLAMP = (0.0, 2.0)
MARGIN = 1.1
OFF_SCALE_COLOUR = "#c00000"
LABEL_ROWS = (0.09, 0.27)       # offsets of the value labels from the off-scale marker, in units of the range
LABEL_GAP_EM = 0.6             # least gap between two value labels (and to the frame), in em


def ratio_range(ratio) -> tuple[float, float]:
    """(lo, hi) of the ratio axis for the finite points in ``ratio`` (see the module docstring)."""
    r = np.asarray(ratio, dtype=float) if ratio is not None else np.zeros(0)
    r = r[np.isfinite(r)]
    dev = float(np.max(np.abs(r - 1.0))) * MARGIN if r.size else 0.0
    half = next((h for h in HALF_WIDTHS if h >= dev), HALF_WIDTHS[-1])
    return max(RATIO_CLAMP[0], 1.0 - half), min(RATIO_CLAMP[1], 1.0 + half)


def free_slot(box: tuple, placed: list, pad: float) -> bool:
    """Whether ``box`` (x0, y0, x1, y1 in pixels) keeps ``pad`` away from every box in ``placed``
    (sideways; a third of it above and below)."""
    x0, y0, x1, y1 = box
    return all(x1 + pad <= p[0] or p[2] + pad <= x0 or y1 + pad / 3 <= p[1] or p[3] + pad / 3 <= y0
               for p in placed)


def place_labels(rax, xs, values, rows, va: str) -> list:
    """Write each off-scale value beside its marker, left to right, in the first of ``rows`` (y in
    data coordinates) where it overlaps no label already written; a value with no free row is left
    out (its marker stays). Returns the texts written."""
    renderer = rax.figure.canvas.get_renderer()
    frame = rax.get_window_extent(renderer)
    placed, texts = [], []
    for x, r in sorted(zip(xs, values)):
        for y in rows:
            t = rax.text(x, y, f"{r:.2g}", ha="center", va=va, fontsize="xx-small", color=OFF_SCALE_COLOUR,
                         gid="ratio:offscale-value", zorder=6)
            bb = t.get_window_extent(renderer)
            gap = LABEL_GAP_EM * t.get_fontsize() * rax.figure.dpi / 72.0
            inside = frame.x0 + gap / 2 <= bb.x0 and bb.x1 <= frame.x1 - gap / 2
            if inside and free_slot((bb.x0, bb.y0, bb.x1, bb.y1), placed, gap):
                placed.append((bb.x0, bb.y0, bb.x1, bb.y1))
                texts.append(t)
                break
            t.remove()
    return texts


def draw_ratio(rax, panel, xlabel: str, ratio_range_=None) -> tuple[float, float]:
    """Draw the ratio points, the MC stat band and the unity line into ``rax``; return the y range."""
    from matplotlib.ticker import MaxNLocator

    edges = panel.edges
    centers = 0.5 * (edges[1:] + edges[:-1])
    ok = np.isfinite(panel.ratio) & (panel.data > 0) if panel.ratio is not None else np.zeros(len(centers), bool)
    lo, hi = ratio_range_ or ratio_range(panel.ratio[ok] if panel.ratio is not None else None)
    band = np.nan_to_num(panel.band)
    rax.stairs(np.minimum(1 + band, hi), edges, baseline=np.maximum(1 - band, lo), fill=True, facecolor="none",
               edgecolor="#4d4d4d", hatch="////", linewidth=0, gid="ratio:band")
    rax.axhline(1.0, color="black", linestyle="--", linewidth=1)
    if panel.ratio is not None:
        reb = rax.errorbar(centers[ok], panel.ratio[ok], yerr=panel.ratio_err[ok], fmt="o", color="black",
                           markersize=6, elinewidth=1.5, capsize=0, zorder=5)
        reb.lines[0].set_gid("ratio")
        span = hi - lo
        rax.set_xlim(edges[0], edges[-1])
        rax.set_ylim(lo, hi)
        for sel, y, marker, va in ((ok & (panel.ratio > hi), hi - 0.07 * span, "^", "top"),
                                   (ok & (panel.ratio < lo), lo + 0.07 * span, "v", "bottom")):
            if not sel.any():
                continue
            rax.plot(centers[sel], np.full(sel.sum(), y), marker, color=OFF_SCALE_COLOUR, markersize=8,
                     gid="ratio:offscale", zorder=6)
            rows = [y - d * span if va == "top" else y + d * span for d in LABEL_ROWS]
            place_labels(rax, centers[sel], panel.ratio[sel], rows, va)
    rax.set_ylim(lo, hi)
    rax.yaxis.set_major_locator(MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10], prune="both"))
    rax.set_ylabel("Data / MC", fontsize="small")
    rax.set_xlabel(xlabel or "")
    rax.set_xlim(edges[0], edges[-1])
    return lo, hi
