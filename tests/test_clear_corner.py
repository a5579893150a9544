"""clear_corner: the y tick label in the lower left corner left out, the axis' formatter wrapped once."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from jetdask.plotting.layout import clear_corner  # noqa: E402


def test_corner_label_left_out_and_wrapped_once():
    fig, ax = plt.subplots()
    try:
        ax.set_ylim(0, 10)
        base = ax.yaxis.get_major_formatter()
        clear_corner(ax)
        wrapped = ax.yaxis.get_major_formatter()
        clear_corner(ax)                                   # a second call leaves the wrapper as it is
        assert ax.yaxis.get_major_formatter() is wrapped and wrapped is not base
        assert wrapped.base is base
        fig.canvas.draw()
        assert wrapped(0.0, 0) == ""                       # on the bottom edge: no label
        assert wrapped(10.0, 5) == base(10.0, 5) != ""     # far from the corner: the usual label
    finally:
        plt.close(fig)
