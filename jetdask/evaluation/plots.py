"""Evaluation figures (mplhep CMS style of :mod:`jetdask.plotting.style`), one function per figure.

Every function builds a :class:`matplotlib.figure.Figure` on an Agg canvas, saves it as
``<path>.<fmt>`` for each format and returns the written paths (``keep=``: a list
that receives the figure, for tests that measure it). What the figures state:

* label: "CMS Simulation Private work" (evaluation runs on simulated jets), ``(13 TeV)``;
* ROC: mistag rate (log) vs signal efficiency; the axis stops at one background jet
  (1 / N_background) and the curve where at most one background jet passes is not drawn;
  the legend (outside the axes, on the right) gives the number of test jets and each AUC
  with its bootstrap standard deviation;
* robustness: AUC vs distortion strength with the bootstrap 68 % band per model;
* inputs: the (scaled) inputs per flavour, each normalised to unit sum ("fraction of jets");
  the range is the central 99 % of the jets, entries outside it counted in the edge bins
  (stated in the figure); long-tailed inputs get a log y axis; a value shared by more than
  10 % of the jets (a default) is named in its panel; one legend for the figure;
* loss curves: integer epoch ticks.
"""
from __future__ import annotations

import os

import numpy as np

from ..plotting.style import EXTRA_COLOURS, cms_style, flavour_colour, flavour_label
from .metrics import DISCRIMINANTS

FLAVOURS = ("b", "c", "light")
LABEL = "Simulation Private work"
ENERGY = "(13 TeV)"
SHORT = {"b": "b", "c": "c", "light": "light"}
JET_NAMES = {"b": "b jet", "c": "c jet", "light": "light (udsg) jet"}


def _figure(nrows=1, ncols=1, size=(10, 9)):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _label(ax, right: str = ENERGY):
    """"CMS Simulation Private work" above the axes on the left, ``right`` on the right."""
    import mplhep
    mplhep.cms.label(ax=ax, llabel=LABEL, rlabel=right, loc=0, fontsize=18)


def _save(fig, path: str, formats, keep=None) -> list[str]:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    out = []
    for fmt in formats:
        p = f"{path}.{fmt}"
        fig.savefig(p, bbox_inches="tight", dpi=100 if fmt == "png" else None,
                    metadata={"Software": None} if fmt == "png" else None)
        out.append(p)
    if keep is not None:
        keep.append(fig)
    return out


def _colour(i: int) -> str:
    return ("#3f90da", "#bd1f01", "#ffa90e", *EXTRA_COLOURS)[i % 8]


def _count(n: int) -> str:
    return f"{n:,}".replace(",", "\u2009")  # thin space as thousands separator


def jets_text(disc: str, n_signal: int, n_background: int) -> str:
    s, b = DISCRIMINANTS[disc]
    return f"{_count(n_signal)} {SHORT[s]} / {_count(n_background)} {SHORT[b]} jets"


def loss_curves(histories: dict, path: str, formats=("png",), keep=None) -> list[str]:
    """Train (dashed) and validation (solid) loss per epoch, one colour per model; accuracy below."""
    from matplotlib.ticker import MaxNLocator, NullLocator
    with cms_style():
        fig, axes = _figure(2, 1, size=(10, 6))
        for i, (name, hist) in enumerate(histories.items()):
            ep = [h["epoch"] for h in hist]
            for ax, key in zip(axes[:, 0], ("loss", "accuracy")):
                ax.plot(ep, [h[f"train_{key}"] for h in hist], "o--", ms=4, color=_colour(i), label=f"{name} train")
                ax.plot(ep, [h[f"val_{key}"] for h in hist], "o-", ms=4, color=_colour(i),
                        label=f"{name} validation")
        for ax in axes[:, 0]:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.xaxis.set_minor_locator(NullLocator())
        axes[0, 0].set_ylabel("weighted loss")
        axes[1, 0].set_ylabel("weighted accuracy")
        axes[1, 0].set_xlabel("epoch")
        axes[0, 0].legend(fontsize=13, loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False)
        _label(axes[0, 0])
        return _save(fig, path, formats, keep)


def _hist_by_flavour(ax, values, groups, weight, bins):
    for f in FLAVOURS:
        sel = groups == f
        if sel.any():
            w = np.full(int(sel.sum()), 1.0 / sel.sum()) if weight is None else weight[sel] / weight[sel].sum()
            ax.hist(values[sel], bins=bins, weights=w, histtype="step", lw=2, color=flavour_colour(f),
                    label=flavour_label(f))


def _figure_legend(fig, ax):
    """One legend for all panels, centred above them."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        nrows = ax.get_gridspec().nrows
        top = 1 - 0.09 / nrows
        fig.subplots_adjust(top=top, hspace=0.3, wspace=0.3)
        fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, top + 0.05 / nrows),
                   ncol=len(handles), frameon=False, fontsize=16)


def score_distributions(scores, groups, classes, path, formats=("png",), title="") -> list[str]:
    """Each output node, per true flavour (normalised); ``title``: the model, on the right of the label."""
    n = len(classes)
    ncols = min(3, n)
    nrows = -(-n // ncols)
    bins = np.linspace(0, 1, 41)
    with cms_style():
        fig, axes = _figure(nrows, ncols, size=(8, 7))
        for k, c in enumerate(classes):
            ax = axes[k // ncols, k % ncols]
            _hist_by_flavour(ax, scores[:, k], groups, None, bins)
            ax.set_xlabel(f"P({c})")
            ax.set_ylabel("fraction of jets")
            ax.set_yscale("log")
        for k in range(n, nrows * ncols):
            axes[k // ncols, k % ncols].set_visible(False)
        _figure_legend(fig, axes[0, 0])
        _label(axes[0, 0], title)
        return _save(fig, path, formats)


def discriminant_distributions(discs: dict, groups, path, formats=("png",), title="") -> list[str]:
    """BvsL, CvsB, CvsL per true flavour."""
    from ..plotting.labels import DISCRIMINANT_LABELS
    names = [d for d in DISCRIMINANTS if d in discs]
    bins = np.linspace(0, 1, 41)
    with cms_style():
        fig, axes = _figure(1, max(len(names), 1), size=(8, 7))
        for k, d in enumerate(names):
            ax = axes[0, k]
            v = discs[d]
            ok = v >= 0
            _hist_by_flavour(ax, v[ok], groups[ok], None, bins)
            ax.set_xlabel(f"{d} ({DISCRIMINANT_LABELS.get(d, d)}) discriminant")
            ax.set_ylabel("fraction of jets")
            ax.set_yscale("log")
        _figure_legend(fig, axes[0, 0])
        _label(axes[0, 0], title)
        return _save(fig, path, formats)


def auc_text(value: float, err: float | None) -> str:
    """``AUC 0.9973 $\\pm$ 0.0005``: the error to one significant digit, the value to the same decimal."""
    if err is None or not np.isfinite(err) or err <= 0:
        return f"AUC {value:.3f}"
    digits = max(3, int(-np.floor(np.log10(err))))
    return f"AUC {value:.{digits}f} $\\pm$ {err:.{digits}f}"


def one_jet_limit(curve: dict) -> float:
    """Smallest mistag rate one background jet can give: 1 / N_background."""
    return 1.0 / max(int(curve.get("n_background") or 0), 1)


def roc_curves(curves: dict, disc: str, path, formats=("png",), keep=None) -> list[str]:
    """Mistag rate (log) vs signal efficiency; ``curves``: label -> {"fpr", "tpr", "auc", "n_signal",
    "n_background", "auc_std"?, "color"?, "ls"?}. Points at or below :func:`one_jet_limit` are not drawn
    (but the step up from it, which starts on the axis floor)."""
    from ..plotting.labels import DISCRIMINANT_LABELS
    s, b = DISCRIMINANTS[disc]
    first = next(iter(curves.values()))
    floor = max(one_jet_limit(c) for c in curves.values())
    with cms_style():
        fig, axes = _figure(size=(9, 8))
        ax = axes[0, 0]
        for i, (label, c) in enumerate(curves.items()):
            tpr, fpr = np.asarray(c["tpr"]), np.asarray(c["fpr"])
            ok = fpr > one_jet_limit(c) * (1 + 1e-9)        # above one background jet ...
            start = int(np.argmax(ok)) if ok.any() else len(ok)
            if 0 < start < len(ok):
                ok[start - 1] = True                          # ... and the step up from it, on the axis floor
            ax.plot(tpr[ok], np.maximum(fpr[ok], floor), ls=c.get("ls", "-"), color=c.get("color", _colour(i)),
                    lw=2, label=f"{label}\n{auc_text(c['auc'], c.get('auc_std'))}")
        ax.set_yscale("log")
        ax.set_xlim(0, 1)
        ax.set_ylim(floor, 1)
        ax.set_xlabel(f"{JET_NAMES[s]} efficiency")
        ax.set_ylabel(f"{JET_NAMES[b]} mistag rate")
        ax.grid(True, which="both", alpha=0.3)
        title = (f"{DISCRIMINANT_LABELS.get(disc, disc)} ({disc})\n"
                 f"{jets_text(disc, first['n_signal'], first['n_background'])}")
        ax.legend(fontsize=13, title=title, title_fontsize=14, loc="upper left", bbox_to_anchor=(1.02, 1),
                  frameon=False, alignment="left")
        note = f"not shown: mistag rate $\\leq$ 1/{int(first['n_background'])}\n(at most one {SHORT[b]} jet)"
        ax.annotate(note, xy=(1.02, 0.0), xycoords="axes fraction", fontsize=12, va="bottom", ha="left",
                    color="0.35")
        _label(ax)
        return _save(fig, path, formats, keep)


def robustness(results: dict, disc: str, path, formats=("png",), attack="FGSM", bands: dict | None = None,
               n_jets: tuple | None = None, replicas: int | None = None, keep=None) -> list[str]:
    """AUC of ``disc`` vs attack epsilon, one line per model (``results``: name -> {eps: auc}).

    ``bands``: name -> {eps: (lo, hi)}, the bootstrap 68 % interval (drawn as a band);
    ``n_jets``: (signal, background) jets, stated in the corner.
    """
    from ..plotting.labels import DISCRIMINANT_LABELS
    with cms_style():
        fig, axes = _figure(size=(9, 8))
        ax = axes[0, 0]
        for i, (name, per_eps) in enumerate(results.items()):
            eps = sorted(per_eps, key=float)
            x = np.array([float(e) for e in eps])
            ax.plot(x, [per_eps[e] for e in eps], "o-", color=_colour(i), lw=2, label=name)
            band = (bands or {}).get(name)
            if band:
                lo = np.array([band[e][0] for e in eps])
                hi = np.array([band[e][1] for e in eps])
                ax.fill_between(x, lo, hi, color=_colour(i), alpha=0.25, lw=0)
        ax.set_xlabel(rf"{attack} $\epsilon$ (scaled inputs)")
        ax.set_ylabel(f"AUC, {DISCRIMINANT_LABELS.get(disc, disc)} ({disc})")
        ax.grid(True, alpha=0.3)
        title = f"bands: bootstrap 68 % ({replicas} replicas)" if bands and replicas else None
        ax.legend(fontsize=13, title=title, title_fontsize=12, loc="upper left", bbox_to_anchor=(1.02, 1),
                  frameon=False, alignment="left")
        _label(ax, jets_text(disc, *n_jets) if n_jets else ENERGY)
        return _save(fig, path, formats, keep)


def _display_range(x: np.ndarray):
    """(bins, log y): the central 99 % of the values in 40 bins; log y for long tails."""
    lo, q1, med, q3, hi = np.percentile(x, [0.5, 25, 50, 75, 99.5])
    if hi <= lo:
        hi = lo + 1.0
    tail = max(hi - med, med - lo)
    return np.linspace(lo, hi, 41), tail > 5 * max(q3 - q1, 1e-12)


def input_distributions(inputs: dict, valid: dict, groups, features: list, path, formats=("png",),
                        keep=None) -> list[str]:
    """Scaled inputs per true flavour; ``features``: (input name, index tuple, label) (see module docstring)."""
    n = len(features)
    ncols = min(4, n)
    nrows = -(-n // ncols)
    with cms_style():
        fig, axes = _figure(nrows, ncols, size=(7, 6))
        for k, (name, idx, label) in enumerate(features):
            ax = axes[k // ncols, k % ncols]
            x = inputs[name][(slice(None),) + tuple(idx)]
            ok = valid[name][(slice(None),) + tuple(idx)] if valid.get(name) is not None else np.ones(len(x), bool)
            if ok.any():
                bins, log = _display_range(x[ok])
                _hist_by_flavour(ax, np.clip(x[ok], bins[0], bins[-1]), groups[ok], None, bins)
                vals, cnt = np.unique(x[ok], return_counts=True)
                if cnt.max() > 0.1 * ok.sum():
                    ax.text(0.97, 0.95, f"{100 * cnt.max() / ok.sum():.0f} % at {vals[cnt.argmax()]:.2g}\n(default)",
                            transform=ax.transAxes, ha="right", va="top", fontsize=12)
                if log:
                    ax.set_yscale("log")
                ax.margins(x=0)
            ax.set_xlabel(f"{label} (scaled)", fontsize=15)
            ax.set_ylabel("fraction of jets", fontsize=15)
        for k in range(n, nrows * ncols):
            axes[k // ncols, k % ncols].set_visible(False)
        _figure_legend(fig, axes[0, 0])
        fig.text(0.5, -0.01, "Range: central 99 % of the jets; entries outside it are counted in the first and last "
                 "bins. Each flavour normalised to unit sum.", ha="center", va="top", fontsize=15)
        _label(axes[0, 0])
        return _save(fig, path, formats, keep)
