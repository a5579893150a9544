"""Where the texts of a figure are drawn: the box of every text the renderer draws, and their overlaps.

:func:`drawn_texts` draws the figure once on its Agg canvas and records each text artist as it is
drawn (tick labels of ticks outside the view, invisible or empty texts are not drawn, so not
recorded). A text's box is its rotated rectangle in pixels (the axis-aligned box of a rotated
label would overlap its neighbours where the glyphs do not). Two boxes overlap when they
intersect by more than ``TOLERANCE_PX`` in both directions of some separating axis test.
"""
from __future__ import annotations

import itertools

import numpy as np

TOLERANCE_PX = 1.0


def drawn_texts(fig) -> list:
    """Every text artist drawn when ``fig`` is rendered (in drawing order, no duplicates)."""
    from matplotlib.text import Text

    from jetdask.plotting.style import cms_style

    drawn: dict = {}
    original = Text.draw

    def record(self, renderer):
        if self.get_visible() and self.get_text().strip():
            drawn.setdefault(id(self), self)
        return original(self, renderer)

    Text.draw = record
    try:
        with cms_style():
            fig.canvas.draw()
    finally:
        Text.draw = original
    return list(drawn.values())


def box(text, renderer) -> np.ndarray:
    """The 4 corners (pixels) of the rectangle a text occupies, rotated with the text."""
    bb = text.get_window_extent(renderer)
    angle = text.get_rotation()
    if angle % 180 == 0:
        return np.array([[bb.x0, bb.y0], [bb.x1, bb.y0], [bb.x1, bb.y1], [bb.x0, bb.y1]])
    text.set_rotation(0)
    flat = text.get_window_extent(renderer)
    text.set_rotation(angle)
    c = np.array([(bb.x0 + bb.x1) / 2, (bb.y0 + bb.y1) / 2])
    t = np.deg2rad(angle)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    half = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * [flat.width / 2, flat.height / 2]
    return c + half @ rot.T


def overlap(a: np.ndarray, b: np.ndarray, tol: float = TOLERANCE_PX) -> bool:
    """Whether two convex quadrilaterals overlap by more than ``tol`` pixels (separating axis test)."""
    for poly in (a, b):
        for i in range(4):
            edge = poly[(i + 1) % 4] - poly[i]
            n = np.array([-edge[1], edge[0]])
            norm = np.hypot(*n)
            if norm == 0:
                continue
            n = n / norm
            pa, pb = a @ n, b @ n
            if min(pa.max(), pb.max()) - max(pa.min(), pb.min()) <= tol:
                return False
    return True


def text_problems(fig) -> list[str]:
    """Overlapping pairs of drawn texts, texts (partly) outside the figure and table texts outside
    their cell, as readable lines."""
    texts = drawn_texts(fig)
    renderer = fig.canvas.get_renderer()
    boxes = [box(t, renderer) for t in texts]
    w, h = fig.bbox.width, fig.bbox.height
    out = []
    for t, b in zip(texts, boxes):
        if b[:, 0].min() < -TOLERANCE_PX or b[:, 1].min() < -TOLERANCE_PX or b[:, 0].max() > w + TOLERANCE_PX \
                or b[:, 1].max() > h + TOLERANCE_PX:
            out.append(f"outside the figure ({w:.0f}x{h:.0f} px): {t.get_text()!r} at {b.min(0).round()}-"
                       f"{b.max(0).round()}")
    from matplotlib.table import Cell
    for cell in fig.findobj(Cell):
        t = cell.get_text()
        if t.get_visible() and t.get_text().strip():
            tb, cb = t.get_window_extent(renderer), cell.get_window_extent(renderer)
            if tb.x0 < cb.x0 - TOLERANCE_PX or tb.x1 > cb.x1 + TOLERANCE_PX or tb.y0 < cb.y0 - TOLERANCE_PX \
                    or tb.y1 > cb.y1 + TOLERANCE_PX:
                out.append(f"outside its table cell: {t.get_text()!r}")
    for (t1, b1), (t2, b2) in itertools.combinations(zip(texts, boxes), 2):
        if overlap(b1, b2):
            out.append(f"overlap: {t1.get_text()!r} and {t2.get_text()!r}")
    return out
