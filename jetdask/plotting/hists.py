"""Histogram preparation: 1D projections, flow folding, summing datasets, the shown x range.

A prepared histogram is a tuple ``(values, edges, variances)`` of numpy arrays. Under- and
overflow are folded into the first and last bin shown (:func:`fold`, ``mode="both"``); an
input variable is first cut to the bins with entries (:func:`occupied_range`), and what lies
outside goes into the edge bins too. For discriminants only the overflow is folded
(``mode="over"``): their underflow holds the ``-1`` of jets without a defined score, which
are not part of the distribution.
"""
from __future__ import annotations

import dataclasses

import numpy as np

NON_VALUE_AXES = ("channel", "flavour", "syst")    # syst: variations of jetdask.corrections (nominal drawn)
FLOW_MODES = ("both", "over", "none")


def value_axis(h):
    """The one axis of ``h`` that is not ``channel``/``flavour`` (the plotted variable)."""
    rest = [ax for ax in h.axes if ax.name not in NON_VALUE_AXES]
    if len(rest) != 1:
        raise ValueError(f"expected exactly one variable axis besides {NON_VALUE_AXES}, got "
                         f"{[ax.name for ax in rest]}")
    return rest[0]


def categories(h, name) -> list[str]:
    return [str(c) for c in h.axes[name]] if name in h.axes.name else []


def select_channel(h, channel: str = "all"):
    """Sum the ``channel`` axis (``"all"``/``"sum"``) or pick one channel (None when absent); a
    histogram with systematic variations (a ``syst`` axis) gives its ``nominal``."""
    if "syst" in h.axes.name:
        h = h[{"syst": "nominal"}]
    if "channel" not in h.axes.name:
        return h
    if channel in ("all", "sum", None):
        return h[{"channel": sum}]
    if channel not in categories(h, "channel"):
        return None
    return h[{"channel": channel}]


def data_hist(h, channel: str = "all"):
    """1D data histogram: the channel selection, summed over every flavour category."""
    h = select_channel(h, channel)
    if h is None:
        return None
    if "flavour" in h.axes.name:
        h = h[{"flavour": sum}]
    return h


def mc_flavour_hists(h, channel: str = "all") -> dict:
    """1D MC histograms by flavour (``b``, ``c``, ``light`` and any other non-empty category).

    A ``data`` category (booked for collision data) is ignored when the flavour categories
    hold the MC; MC without flavour information comes back as ``{"MC": total}``.
    """
    from .style import FLAVOUR_ORDER

    h = select_channel(h, channel)
    if h is None:
        return {}
    if "flavour" not in h.axes.name:
        return {"MC": h}
    out = {}
    for c in categories(h, "flavour"):
        one = h[{"flavour": c}]
        if c in FLAVOUR_ORDER or (c != "data" and one.values(flow=True).sum() != 0):
            out[c] = one
    if not any(np.any(v.values(flow=True) != 0) for v in out.values()):
        return {"MC": h[{"flavour": sum}]}
    order = [c for c in FLAVOUR_ORDER if c in out] + [c for c in out if c not in FLAVOUR_ORDER]
    return {c: out[c] for c in order}


@dataclasses.dataclass
class Flow:
    """Content folded into the edge bins (summed over the components of a figure)."""
    under: float = 0.0
    over: float = 0.0

    def add(self, other: "Flow") -> None:
        self.under += other.under
        self.over += other.over

    def axis_note(self) -> str:
        """What the figure states: ``"last bin: + overflow"`` etc.; "" when nothing was folded."""
        if self.under > 0 and self.over > 0:
            return "edge bins: + under/overflow"
        if self.under > 0:
            return "first bin: + underflow"
        if self.over > 0:
            return "last bin: + overflow"
        return ""


def arrays(h, scale: float = 1.0):
    """``(values, edges, variances)`` of a 1D histogram (without its flow bins) or of a
    ``(values, edges[, variances])`` tuple; variances default to the values (Poisson)."""
    if isinstance(h, tuple):
        values, edges = np.asarray(h[0], float), np.asarray(h[1], float)
        var = np.asarray(h[2], float) if len(h) > 2 and h[2] is not None else values.copy()
        return values * scale, edges, var * scale * scale
    v, e, w = with_flow(h, scale)
    return v[1:-1], e, w[1:-1]


def with_flow(h, scale: float = 1.0):
    """``(values, edges, variances)`` of a 1D histogram with the underflow first and the overflow
    last (``len(edges) + 1`` entries; zero where the axis has no flow bin)."""
    if len(h.axes) != 1:
        raise ValueError(f"expected a 1D histogram, got axes {list(h.axes.name)}; project it first "
                         "(data_hist / mc_flavour_hists)")
    ax = h.axes[0]
    values = np.asarray(h.values(flow=True), float)
    var = h.variances(flow=True)
    var = values.copy() if var is None else np.asarray(var, float)
    pad = (0 if ax.traits.underflow else 1, 0 if ax.traits.overflow else 1)
    values, var = np.pad(values, pad), np.pad(var, pad)
    return values * scale, np.asarray(ax.edges, float), var * scale * scale


def fold(t, sl: slice | None = None, mode: str = "both"):
    """Bins ``sl`` (of the visible bins) of a :func:`with_flow` tuple, with everything left of them
    (underflow included) added to the first and everything right to the last shown bin.

    ``mode``: ``"both"``, ``"over"`` (the left side, e.g. the ``-1`` of undefined discriminants, is
    dropped) or ``"none"`` (both sides dropped). Returns ``((values, edges, variances), Flow)``.
    """
    if mode not in FLOW_MODES:
        raise ValueError(f"fold must be one of {FLOW_MODES}, got {mode!r}")
    values, edges, var = t
    n = len(edges) - 1
    sl = sl or slice(0, n)
    a, b = sl.start + 1, sl.stop + 1                       # indices in the with-flow arrays
    v, w = values[a:b].copy(), var[a:b].copy()
    flow = Flow()
    if mode == "both":
        flow.under = float(np.abs(values[:a]).sum())
        v[0] += values[:a].sum()
        w[0] += var[:a].sum()
    if mode in ("both", "over"):
        flow.over = float(np.abs(values[b:]).sum())
        v[-1] += values[b:].sum()
        w[-1] += var[b:].sum()
    return (v, edges[sl.start:sl.stop + 1], w), flow


def tuple_sum(items):
    """Sum of ``(values, edges, variances)`` tuples (same binning); None when empty."""
    items = [i for i in items if i is not None]
    if not items:
        return None
    return (np.sum([i[0] for i in items], axis=0), items[0][1], np.sum([i[2] for i in items], axis=0))


def run_components(hists: dict, name: str, norm, channel: str):
    """``(data, mc_by_flavour, axis_label)`` of histogram ``name`` summed over datasets, as
    :func:`with_flow` tuples (fold them with :func:`fold`).

    ``norm``: a :class:`~jetdask.plotting.normalisation.Normalisation` (MC scaled by its
    ``scale``; normalised to the data yield when ``norm.to_data``).
    """
    data_parts, mc_parts, label = [], {}, None
    for ds, x in norm.datasets.items():
        h = hists.get(ds, {}).get(name)
        if h is None:
            continue
        label = label or value_axis(h).label
        if x["is_data"]:
            d = data_hist(h, channel)
            if d is not None:
                data_parts.append(with_flow(d))
        else:
            for fl, hf in mc_flavour_hists(h, channel).items():
                mc_parts.setdefault(fl, []).append(with_flow(hf, x["scale"]))
    data = tuple_sum(data_parts)
    mc = {fl: tuple_sum(parts) for fl, parts in mc_parts.items()}
    if norm.to_data and data is not None and mc:
        tot = sum(float(t[0].sum()) for t in mc.values())
        k = float(data[0].sum()) / tot if tot > 0 else 1.0
        mc = {fl: (t[0] * k, t[1], t[2] * k * k) for fl, t in mc.items()}
    return data, mc, label


def occupied_range(data, mc: dict, pad: int = 1) -> slice:
    """Visible bins of :func:`with_flow` tuples from the first to the last with content (data or
    MC), ``pad`` bins kept each side."""
    tot = np.sum([np.abs(t[0][1:-1]) for t in mc.values()], axis=0)
    if data is not None:
        tot = tot + np.abs(data[0][1:-1])
    nz = np.flatnonzero(tot > 0)
    if not nz.size:
        return slice(0, len(tot))
    return slice(max(0, int(nz[0]) - pad), min(len(tot), int(nz[-1]) + 1 + pad))


def prepare(data, mc: dict, mode: str = "both", crop: bool = False):
    """Fold (and with ``crop`` first cut to the occupied bins) :func:`with_flow` tuples:
    ``(data, mc, Flow)``; the Flow sums what was folded in data and MC."""
    sl = occupied_range(data, mc) if crop and mc else None
    flow = Flow()
    out_mc = {}
    for k, t in mc.items():
        out_mc[k], f = fold(t, sl, mode)
        flow.add(f)
    out_data = None
    if data is not None:
        out_data, f = fold(data, sl, mode)
        flow.add(f)
    return out_data, out_mc, flow


def kind_of(name: str, h) -> str | None:
    """``"cutflow"``, ``"discriminant"`` (a tagger's ``<tagger>_BvsL``-like histogram), ``"input"``
    (``input_*``), ``"variable"`` (any other 1D variable) or None (not plottable as 1D)."""
    from .labels import split_name

    if name == "cutflow" or "step" in h.axes.name:
        return "cutflow"
    try:
        value_axis(h)
    except ValueError:
        return None
    if name.startswith("input_"):
        return "input"
    return "discriminant" if split_name(name)[1] else "variable"


def counted(hists: dict, name: str, default: str = "Entries") -> str:
    """What histogram ``name`` counts, for the y title: its ``label`` (``hist.Hist(..., label="Jets")``,
    ``.Weight(label="Events")``) in the first data set that has it, else ``default``."""
    for hs in hists.values():
        h = hs.get(name)
        if h is not None and getattr(h, "label", None):
            return str(h.label)
    return default
