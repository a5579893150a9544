"""The frame of every evaluation figure: panels laid out in inches, the CMS header, a legend
outside on the right, a note below, saving.

Text sizes are those of the data/MC figures (mplhep CMS style): axis titles at the style's
size, tick labels and legends ``small``, notes ``x-small``; nothing is set in absolute points.
The header is :func:`jetdask.plotting.header.cms_header` ("CMS Simulation Private work" by
default: evaluation runs on simulated jets), over the whole top row of panels.
"""
from __future__ import annotations

import os

from ..plotting import layout
from ..plotting.header import cms_header
from ..plotting.style import EXTRA_COLOURS, PNG_DPI, new_figure

LABEL = "Simulation Private work"
ENERGY = "(13 TeV)"
MARGINS = {"left": 1.6, "right": 0.35, "top": 0.85, "bottom": 1.25, "wspace": 1.55, "hspace": 1.35}  # inches


def colour(i: int) -> str:
    """Colour of the i-th model (the same in every figure of an evaluation)."""
    return ("#3f90da", "#bd1f01", "#ffa90e", *EXTRA_COLOURS)[i % 8]


def panels(nrows: int = 1, ncols: int = 1, size=(7.0, 6.0), **margins):
    """(figure, axes[nrows][ncols]): panels of ``size`` inches, ``MARGINS`` around and between them."""
    m = {**MARGINS, **margins}
    pw, ph = size
    width = m["left"] + ncols * pw + (ncols - 1) * m["wspace"] + m["right"]
    height = m["top"] + nrows * ph + (nrows - 1) * m["hspace"] + m["bottom"]
    fig = new_figure(width, height)
    axes = [[fig.add_axes([(m["left"] + c * (pw + m["wspace"])) / width,
                           (m["bottom"] + (nrows - 1 - r) * (ph + m["hspace"])) / height, pw / width, ph / height])
             for c in range(ncols)] for r in range(nrows)]
    return fig, axes


def header(axes, right: str = ENERGY, label: str = LABEL) -> dict:
    """The CMS header over the top row of ``axes`` (a list of rows, or one axes)."""
    row = axes[0] if isinstance(axes, list) else [axes]
    return cms_header(row[0], label, right, right_ax=row[-1])


def legend_outside(fig, anchor_ax, handles, labels, title: str | None = None):
    """One legend right of ``anchor_ax`` (top-aligned), the figure widened for it."""
    box = anchor_ax.legend(handles, labels, title=title, fontsize="small", title_fontsize="small", frameon=False,
                           alignment="left", loc="upper left")
    layout.put_outside(fig, anchor_ax, [box])
    return box


def note_below(fig, text: str, ax) -> None:
    """A note under the figure's panels, left-aligned with ``ax``, wrapped to the figure's width
    (the figure grows at the bottom by the lines it needs beyond the first)."""
    import textwrap

    renderer = fig.canvas.get_renderer()
    x = ax.get_position().x0
    t = fig.text(x, 0.0, text, ha="left", va="bottom", fontsize="x-small", color="0.3", gid="note")
    avail = fig.bbox.width * (1 - x) - 0.15 * fig.dpi
    width = t.get_window_extent(renderer).width
    if width > avail:
        t.set_text(textwrap.fill(text, max(20, int(len(text) * avail / width))))
    lines = t.get_text().count("\n")
    if lines:
        layout.grow_bottom(fig, lines * t.get_fontsize() * 1.25 / 72.0)
    t.set_position((x, 0.12 / fig.get_size_inches()[1]))


def save(fig, path: str, formats, keep=None) -> list[str]:
    """``<path>.<fmt>`` for each format (the figure as laid out: no cropping); ``keep`` receives the figure."""
    from ..plotting.style import cms_style

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    out = []
    with cms_style():
        for fmt in formats:
            p = f"{path}.{fmt}"
            fig.savefig(p, dpi=PNG_DPI if fmt == "png" else None, metadata={"Software": None} if fmt == "png" else None)
            out.append(p)
    if keep is not None:
        keep.append(fig)
    return out
