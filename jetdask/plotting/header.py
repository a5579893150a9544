"""The figure header: "CMS <label>" above the axes on the left, luminosity and energy on the right.

Placement rule (measured with the figure's own renderer, :func:`header_rows`):

* one row when "CMS <label>", a gap of ``GAP_EM`` times the right text's font size and the right
  text fit side by side between the left edge of the first axes and the right edge of the last;
* otherwise two rows: "CMS <label>" stays on the frame, the right text moves one row up
  (right-aligned as before); a right text wider than the axes is set in a smaller font until it fits;
* the figure grows at the top (every axes keeps its size in inches) when the header would leave it.

"CMS" and the label are drawn by mplhep (:func:`mplhep.cms.label`, ``loc=0``), which also moves them
right of a y-axis offset text ("×10⁶"); the right text is a plain text of the same size mplhep gives it.
"""
from __future__ import annotations

GAP_EM = 0.6            # least horizontal gap between the left and the right part, in em of the right text
ROW_GAP_EM = 0.25       # vertical gap between the two rows, in em of the right text
TOP_PAD_PT = 4.0        # space kept between the header and the top edge of the figure
MIN_SHRINK = 0.6        # the right text is never set below this fraction of its size


def header_rows(left_px: float, right_px: float, width_px: float, gap_px: float) -> int:
    """1 when the left part, the gap and the right part fit side by side in ``width_px``, else 2."""
    if right_px <= 0:
        return 1
    return 1 if left_px + gap_px + right_px <= width_px else 2


def shrink_factor(text_px: float, width_px: float) -> float:
    """Font scale that makes a text of ``text_px`` fit ``width_px`` (1 when it fits; at least MIN_SHRINK)."""
    if text_px <= width_px or text_px <= 0:
        return 1.0
    return max(MIN_SHRINK, width_px / text_px)


def cms_header(ax, text: str, right: str = "", *, right_ax=None, sizes=None) -> dict:
    """Draw the header over ``ax``; the right text ends at the right edge of ``right_ax`` (default
    ``ax``: another axes of the same figure when the header spans several), on the top of ``ax``.

    ``sizes``: (CMS, label, right text) font sizes in points (default :func:`label_sizes`). Returns
    ``{"left": [texts], "right": text or None, "rows": 1 or 2}``.
    """
    import mplhep
    from matplotlib.transforms import Bbox, blended_transform_factory

    from .style import label_sizes

    sizes = tuple(sizes or label_sizes()[:3])
    fig = ax.figure
    rax = right_ax if right_ax is not None else ax
    exp, suff, empty, _ = mplhep.cms.label(ax=ax, llabel=text, rlabel="", loc=0,
                                           fontsize=(sizes[0], sizes[1], sizes[2], sizes[2]))
    if empty is not None:
        empty.remove()
    left = [t for t in (exp, suff) if t is not None and t.get_text()]
    for t in left:
        t.set_gid("header:cms")
    out = {"left": left, "right": None, "rows": 1}
    if not right:
        _keep_inside(fig, left)
        return out
    rt = ax.text(1.0, 1.0, right, transform=blended_transform_factory(rax.transAxes, ax.transAxes), ha="right",
                 va="bottom", fontsize=sizes[2], gid="header:right")
    out["right"] = rt
    renderer = fig.canvas.get_renderer()
    lb = Bbox.union([t.get_window_extent(renderer) for t in left])
    rb = rt.get_window_extent(renderer)
    x0, x1 = ax.get_window_extent(renderer).x0, rax.get_window_extent(renderer).x1
    em = sizes[2] * fig.dpi / 72.0
    if header_rows(lb.x1 - x0, rb.width, x1 - x0, GAP_EM * em) == 2:
        out["rows"] = 2
        k = shrink_factor(rb.width, x1 - x0)
        if k < 1:
            rt.set_fontsize(sizes[2] * k)
        frame = ax.get_window_extent(renderer)
        rt.set_y(1.0 + (lb.y1 - frame.y1 + ROW_GAP_EM * em) / frame.height)
    _keep_inside(fig, left + [rt])
    return out


def _keep_inside(fig, texts) -> None:
    """Grow the figure at the top when a header text would leave it (axes keep their size in inches)."""
    from .layout import grow_top

    renderer = fig.canvas.get_renderer()
    top = max(t.get_window_extent(renderer).y1 for t in texts)
    over = top + TOP_PAD_PT * fig.dpi / 72.0 - fig.bbox.height
    if over > 0:
        grow_top(fig, over / fig.dpi)
