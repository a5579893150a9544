"""y range from the content, with the space a legend box needs, and the corner that box goes in.

Rules:

* linear y: from 0; the top is the lowest that keeps the box clear of the content beneath it,
  at least ``LINEAR_MIN_HEADROOM`` above the tallest bin;
* log y: from half the smallest positive bin of any stack layer or the data (so that the
  smallest component, stacked at the bottom, is visible; at most ``LOG_MAX_DECADES`` below the peak) to
  at most ``HEADROOM_DECADES`` (one decade) above the tallest bin of the stack or the data;
* the box (legend and/or the text of the panel) goes in the upper corner that needs the least
  headroom, as one column or two (the first that fits); when none fits, the figure is widened
  and the box goes outside the axes on the right.
"""
from __future__ import annotations

import numpy as np

HEADROOM_DECADES = 1.0
LOG_MAX_DECADES = 5.0
LINEAR_MIN_HEADROOM = 1.05
LINEAR_MAX_HEADROOM = 2.2
PAD = 0.03                      # gap between content and box, in axes fraction
CORNERS = ("upper right", "upper left")


def log_floor(values: list, peak: float) -> float:
    """Lower y limit of a log axis: half the smallest positive entry of ``values`` (arrays or None),
    at most LOG_MAX_DECADES below ``peak``."""
    pos = np.concatenate([np.asarray(v, float)[np.asarray(v, float) > 0] for v in values if v is not None]) \
        if values else np.zeros(0)
    lo = float(pos.min()) * 0.5 if pos.size else peak * 1e-3
    return max(lo, peak * 10 ** -LOG_MAX_DECADES)


def needed_top(tops, edges, corner: str, box_w: float, box_h: float, *, lo: float, log: bool) -> float:
    """Smallest y top so that a box of ``box_w`` x ``box_h`` (axes fraction) in ``corner`` stays clear
    of the bin contents ``tops`` (per bin, data coordinates) under it; the full x range is ``edges``."""
    tops = np.asarray(tops, float)
    x0, x1 = float(edges[0]), float(edges[-1])
    frac_lo = (np.asarray(edges[:-1]) - x0) / (x1 - x0)
    frac_hi = (np.asarray(edges[1:]) - x0) / (x1 - x0)
    if corner == "upper right":
        under = frac_hi > 1 - box_w - PAD
    else:
        under = frac_lo < box_w + PAD
    region = float(np.nanmax(tops[under])) if under.any() else 0.0
    free = 1.0 - box_h - PAD
    if free <= 0.05:
        return np.inf
    if not log:
        return region / free
    if region <= lo:
        return lo
    return lo * (region / lo) ** (1.0 / free)


def y_limits(tops_per_panel: list, peak: float, lo: float, log: bool, boxes: list, edges_per_panel: list):
    """(lo, hi, corners) for panels sharing one y range; ``boxes``: (w, h) per panel or None.

    ``corners``: per panel the chosen corner (None without a box), or "outside" when no corner
    fits within the headroom rule (one decade on a log axis, LINEAR_MAX_HEADROOM on a linear one).
    """
    floor_hi = peak * (10 ** 0.15 if log else LINEAR_MIN_HEADROOM)
    cap = peak * (10 ** HEADROOM_DECADES if log else LINEAR_MAX_HEADROOM)
    hi, corners = floor_hi, []
    for tops, box, edges in zip(tops_per_panel, boxes, edges_per_panel):
        if box is None:
            corners.append(None)
            continue
        needs = {c: needed_top(tops, edges, c, box[0], box[1], lo=lo, log=log) for c in CORNERS}
        best = min(CORNERS, key=lambda c: needs[c])
        if needs[best] > cap:
            corners.append("outside")
            continue
        corners.append(best)
        hi = max(hi, needs[best])
    return lo, min(max(hi, floor_hi), cap), corners


def box_size(ax, artist) -> tuple[float, float]:
    """(width, height) of a drawn legend/text box as fractions of the axes."""
    renderer = ax.figure.canvas.get_renderer()
    bb = artist.get_window_extent(renderer)
    ab = ax.get_window_extent(renderer)
    return bb.width / ab.width, bb.height / ab.height


def grow_top(fig, inches: float) -> None:
    """Make ``fig`` taller by ``inches`` at the top: every axes keeps its size and its distance from
    the bottom edge in inches, and so do the texts placed in figure coordinates."""
    w_in, h_in = fig.get_size_inches()
    scale = h_in / (h_in + inches)
    for a in fig.axes:
        p = a.get_position()
        a.set_position([p.x0, p.y0 * scale, p.width, p.height * scale])
    for t in fig.texts:
        if t.get_transform() is fig.transFigure:
            x, y = t.get_position()
            t.set_position((x, y * scale))
    fig.set_size_inches(w_in, h_in + inches)


def grow_bottom(fig, inches: float) -> None:
    """Make ``fig`` taller by ``inches`` at the bottom: every axes keeps its size and its distance from
    the top edge in inches (texts in figure coordinates keep their distance from the bottom)."""
    w_in, h_in = fig.get_size_inches()
    total = h_in + inches
    for a in fig.axes:
        p = a.get_position()
        a.set_position([p.x0, (p.y0 * h_in + inches) / total, p.width, p.height * h_in / total])
    for t in fig.texts:
        if t.get_transform() is fig.transFigure:
            x, y = t.get_position()
            t.set_position((x, y * h_in / total))
    fig.set_size_inches(w_in, total)


def put_outside(fig, anchor_ax, boxes: list) -> None:
    """Widen ``fig`` to the right (every axes keeps its size in inches) and stack ``boxes`` there,
    top-aligned with ``anchor_ax``."""
    renderer = fig.canvas.get_renderer()
    w_in, h_in = fig.get_size_inches()
    extra = max(b.get_window_extent(renderer).width for b in boxes) / fig.dpi + 0.3
    scale = w_in / (w_in + extra)
    for a in fig.axes:
        p = a.get_position()
        a.set_position([p.x0 * scale, p.y0, p.width * scale, p.height])
    fig.set_size_inches(w_in + extra, h_in)
    y = 1.0
    for b in boxes:
        b.set_loc("upper left")
        b.set_bbox_to_anchor((1.0, y), transform=anchor_ax.transAxes)
        y -= b.get_window_extent(renderer).height / anchor_ax.get_window_extent(renderer).height + 0.02


def clear_corner(ax, clearance_em: float = 0.75) -> None:
    """Leave out the y tick label that would sit on the first x tick label, in the lower left corner:
    a tick closer than ``clearance_em`` (of its font size) to the bottom of the axes gets no label.
    Decided when the figure is drawn (the final limits), for linear and log axes alike."""
    import matplotlib
    from matplotlib.font_manager import FontProperties
    from matplotlib.ticker import Formatter

    size_pt = FontProperties(size=matplotlib.rcParams["ytick.labelsize"]).get_size_in_points()

    class CornerClear(Formatter):
        corner_clear = True                            # how a second call knows the axis has one

        def __init__(self, base):
            self.base = base

        def set_axis(self, axis):
            super().set_axis(axis)
            self.base.set_axis(axis)

        def set_locs(self, locs):
            super().set_locs(locs)
            self.base.set_locs(locs)

        def get_offset(self):
            return self.base.get_offset()

        def __getattr__(self, name):                   # get_useOffset, format_data ... of the wrapped one
            if name == "base":
                raise AttributeError(name)
            return getattr(self.base, name)

        def __call__(self, x, pos=None):
            lo, hi = ax.get_ylim()
            if ax.get_yscale() == "log":
                frac = (np.log10(x) - np.log10(lo)) / (np.log10(hi) - np.log10(lo)) if x > 0 and lo > 0 else 1.0
            else:
                frac = (x - lo) / (hi - lo) if hi != lo else 1.0
            size_px = size_pt * ax.figure.dpi / 72.0
            if frac * ax.get_window_extent().height < clearance_em * size_px:
                return ""
            return self.base(x, pos)

    current = ax.yaxis.get_major_formatter()
    if not isinstance(current, Formatter) or getattr(type(current), "corner_clear", False):
        return
    ax.yaxis.set_major_formatter(CornerClear(ax.yaxis.get_major_formatter()))
