"""The data/MC ratio panel: a range adapted to the points, off-scale points marked with their value.

Range rule (:func:`ratio_range`): symmetric about 1, the half-width the smallest of
``HALF_WIDTHS`` that holds every ratio point with ``MARGIN`` (10 %) to spare; clamped to
``RATIO_CLAMP`` = (0, 2), i.e. a half-width of at most 1. Points outside the clamp are drawn
as red triangles on the frame with their value written beside them.
"""
from __future__ import annotations

import numpy as np

HALF_WIDTHS = (0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)
RATIO_CLAMP = (0.0, 2.0)
MARGIN = 1.1
OFF_SCALE_COLOUR = "#c00000"


def ratio_range(ratio) -> tuple[float, float]:
    """(lo, hi) of the ratio axis for the finite points in ``ratio`` (see the module docstring)."""
    r = np.asarray(ratio, dtype=float) if ratio is not None else np.zeros(0)
    r = r[np.isfinite(r)]
    dev = float(np.max(np.abs(r - 1.0))) * MARGIN if r.size else 0.0
    half = next((h for h in HALF_WIDTHS if h >= dev), HALF_WIDTHS[-1])
    return max(RATIO_CLAMP[0], 1.0 - half), min(RATIO_CLAMP[1], 1.0 + half)


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
        for sel, y, marker, va in ((ok & (panel.ratio > hi), hi - 0.07 * span, "^", "top"),
                                   (ok & (panel.ratio < lo), lo + 0.07 * span, "v", "bottom")):
            if not sel.any():
                continue
            rax.plot(centers[sel], np.full(sel.sum(), y), marker, color=OFF_SCALE_COLOUR, markersize=8,
                     gid="ratio:offscale", zorder=6)
            for i, (x, r) in enumerate(zip(centers[sel], panel.ratio[sel])):   # neighbours staggered
                dy = (0.09 + 0.16 * (np.flatnonzero(sel)[i] % 2)) * span
                ty = y - dy if va == "top" else y + dy
                rax.text(x, ty, f"{r:.2g}", ha="center", va=va, fontsize="xx-small", color=OFF_SCALE_COLOUR,
                         gid="ratio:offscale-value", zorder=6)
    rax.set_ylim(lo, hi)
    rax.yaxis.set_major_locator(MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10], prune="both"))
    rax.set_ylabel("Data / MC", fontsize="small")
    rax.set_xlabel(xlabel or "")
    rax.set_xlim(edges[0], edges[-1])
    return lo, hi
