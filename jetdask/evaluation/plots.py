"""Evaluation figures (mplhep CMS style of :mod:`jetdask.plotting.style`), one function per figure.

Every function builds a :class:`matplotlib.figure.Figure`, saves it as ``<path>.<fmt>`` for
each format and returns the written paths.
"""
from __future__ import annotations

import os

import numpy as np

from ..plotting.style import EXTRA_COLOURS, cms_style, flavour_colour, flavour_label
from .metrics import DISCRIMINANTS

FLAVOURS = ("b", "c", "light")
LINESTYLES = ("-", "--", ":", "-.")


def _figure(nrows=1, ncols=1, size=(10, 9)):
    from matplotlib.figure import Figure
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _label(ax, text=""):
    import mplhep
    mplhep.cms.text("Simulation Preliminary", ax=ax, loc=0, fontsize=16)
    if text:
        ax.text(0.98, 1.01, text, transform=ax.transAxes, ha="right", va="bottom", fontsize=14)


def _save(fig, path: str, formats) -> list[str]:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    out = []
    for fmt in formats:
        p = f"{path}.{fmt}"
        fig.savefig(p, bbox_inches="tight", dpi=100 if fmt == "png" else None)
        out.append(p)
    return out


def _colour(i: int) -> str:
    return ("#3f90da", "#bd1f01", "#ffa90e", *EXTRA_COLOURS)[i % 8]


def loss_curves(histories: dict, path: str, formats=("png",)) -> list[str]:
    """Train (dashed) and validation (solid) loss per epoch, one colour per model; accuracy below."""
    with cms_style():
        fig, axes = _figure(2, 1, size=(10, 6))
        for i, (name, hist) in enumerate(histories.items()):
            ep = [h["epoch"] for h in hist]
            for ax, key in zip(axes[:, 0], ("loss", "accuracy")):
                ax.plot(ep, [h[f"train_{key}"] for h in hist], ls="--", color=_colour(i), label=f"{name} train")
                ax.plot(ep, [h[f"val_{key}"] for h in hist], ls="-", color=_colour(i), label=f"{name} validation")
        axes[0, 0].set_ylabel("weighted loss")
        axes[1, 0].set_ylabel("weighted accuracy")
        axes[1, 0].set_xlabel("epoch")
        axes[0, 0].legend(fontsize=13)
        _label(axes[0, 0])
        return _save(fig, path, formats)


def _hist_by_flavour(ax, values, groups, weight, bins):
    for f in FLAVOURS:
        sel = groups == f
        if sel.any():
            ax.hist(values[sel], bins=bins, weights=None if weight is None else weight[sel], density=True,
                    histtype="step", lw=2, color=flavour_colour(f), label=flavour_label(f))


def score_distributions(scores, groups, classes, path, formats=("png",), title="") -> list[str]:
    """Each output node, per true flavour (normalised)."""
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
            ax.set_yscale("log")
            ax.legend(fontsize=12)
        for k in range(n, nrows * ncols):
            axes[k // ncols, k % ncols].set_visible(False)
        _label(axes[0, 0], title)
        return _save(fig, path, formats)


def discriminant_distributions(discs: dict, groups, path, formats=("png",), title="") -> list[str]:
    """BvsL, CvsB, CvsL per true flavour."""
    names = [d for d in DISCRIMINANTS if d in discs]
    bins = np.linspace(0, 1, 41)
    with cms_style():
        fig, axes = _figure(1, max(len(names), 1), size=(8, 7))
        for k, d in enumerate(names):
            ax = axes[0, k]
            v = discs[d]
            ok = v >= 0
            _hist_by_flavour(ax, v[ok], groups[ok], None, bins)
            ax.set_xlabel(d)
            ax.set_yscale("log")
            ax.legend(fontsize=12)
        _label(axes[0, 0], title)
        return _save(fig, path, formats)


def roc_curves(curves: dict, disc: str, path, formats=("png",)) -> list[str]:
    """Mistag rate (log) vs signal efficiency; ``curves``: label -> {"fpr", "tpr", "auc", "style"?}."""
    s, b = DISCRIMINANTS[disc]
    with cms_style():
        fig, axes = _figure()
        ax = axes[0, 0]
        for i, (label, c) in enumerate(curves.items()):
            tpr, fpr = np.asarray(c["tpr"]), np.asarray(c["fpr"])
            ok = fpr > 0
            ax.plot(tpr[ok], fpr[ok], ls=c.get("ls", "-"), color=c.get("color", _colour(i)), lw=2,
                    label=f"{label} (AUC {c['auc']:.3f})")
        ax.set_yscale("log")
        ax.set_xlim(0, 1)
        ax.set_xlabel(f"{flavour_label(s)} efficiency")
        ax.set_ylabel(f"{flavour_label(b)} mistag rate")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=13, loc="lower right")
        _label(ax, disc)
        return _save(fig, path, formats)


def robustness(results: dict, disc: str, path, formats=("png",), attack="FGSM") -> list[str]:
    """AUC of ``disc`` vs attack epsilon, one line per model (``results``: name -> {eps: auc})."""
    with cms_style():
        fig, axes = _figure()
        ax = axes[0, 0]
        for i, (name, per_eps) in enumerate(results.items()):
            eps = sorted(per_eps, key=float)
            ax.plot([float(e) for e in eps], [per_eps[e] for e in eps], "o-", color=_colour(i), lw=2, label=name)
        ax.set_xlabel(rf"{attack} $\epsilon$ (scaled inputs)")
        ax.set_ylabel(f"{disc} AUC")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=13)
        _label(ax, disc)
        return _save(fig, path, formats)


def input_distributions(inputs: dict, valid: dict, groups, features: list, path, formats=("png",)) -> list[str]:
    """Selected scaled inputs per true flavour; ``features``: (input name, index tuple, label)."""
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
                lo, hi = np.percentile(x[ok], [0.5, 99.5])
                bins = np.linspace(lo, hi if hi > lo else lo + 1, 31)
                _hist_by_flavour(ax, np.clip(x[ok], bins[0], bins[-1]), groups[ok], None, bins)
            ax.set_xlabel(label, fontsize=13)
            ax.legend(fontsize=10)
        for k in range(n, nrows * ncols):
            axes[k // ncols, k % ncols].set_visible(False)
        _label(axes[0, 0])
        return _save(fig, path, formats)
