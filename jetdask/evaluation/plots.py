"""Evaluation figures of the taggers' performance: loss curves, ROC, robustness.

Every function builds a :class:`matplotlib.figure.Figure` on an Agg canvas (frame, header and
sizes of :mod:`.figure`), saves it as ``<path>.<fmt>`` for each format and returns the written
paths (``keep=``: a list that receives the figure, for tests that measure it). Curve and model
names are display names (the caller's, e.g. :func:`jetdask.plotting.labels.tagger_label`).
What the figures state:

* header "CMS Simulation Private work" and ``(13 TeV)`` (the loss curves: no energy, they are
  not a measurement at one); the legend outside the axes on the right;
* ROC: mistag rate (log) vs signal efficiency; the y axis stops at one background jet
  (1 / N_background) and the curve where at most one background jet passes is not drawn
  (stated below the axes); the x axis starts where the curves start (:func:`roc_x_range`);
  the legend gives the number of test jets and each AUC with its bootstrap standard deviation;
* robustness: AUC vs distortion strength with the bootstrap 68 % band per model;
* loss curves: training (dashed) and validation (solid) per model, integer epoch ticks.

Input, score and discriminant distributions: :mod:`.distributions`.
"""
from __future__ import annotations

import numpy as np

from ..plotting.layout import clear_corner
from ..plotting.style import cms_style
from .distributions import discriminant_distributions, input_distributions, score_distributions
from .figure import LABEL, colour, header, legend_outside, note_below, panels, save
from .metrics import DISCRIMINANTS

__all__ = ["loss_curves", "roc_curves", "robustness", "score_distributions", "discriminant_distributions",
           "input_distributions", "auc_text", "one_jet_limit", "jets_text", "roc_x_range", "colour"]

SHORT = {"b": "b", "c": "c", "light": "light"}
JET_NAMES = {"b": "b jet", "c": "c jet", "light": "light (udsg) jet"}
_colour = colour                                   # the name earlier callers used


def _count(n: int) -> str:
    return f"{n:,}".replace(",", "\u2009")  # thin space as thousands separator


def jets_text(disc: str, n_signal: int, n_background: int) -> str:
    s, b = DISCRIMINANTS[disc]
    return f"{_count(n_signal)} {SHORT[s]} / {_count(n_background)} {SHORT[b]} jets"


def loss_curves(histories: dict, path: str, formats=("png",), keep=None, label: str = LABEL) -> list[str]:
    """Training (dashed) and validation (solid) loss per epoch, one colour per model; accuracy below."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator, NullLocator
    with cms_style():
        fig, axes = panels(2, 1, size=(8.0, 4.6), hspace=0.5)
        (loss_ax,), (acc_ax,) = axes
        handles, names = [], []
        for i, (name, hist) in enumerate(histories.items()):
            ep = [h["epoch"] for h in hist]
            for ax, key in ((loss_ax, "loss"), (acc_ax, "accuracy")):
                ax.plot(ep, [h[f"train_{key}"] for h in hist], "o--", ms=5, color=colour(i))
                ax.plot(ep, [h[f"val_{key}"] for h in hist], "o-", ms=5, color=colour(i))
            handles.append(Line2D([], [], color=colour(i), lw=3))
            names.append(name)
        handles += [Line2D([], [], color="black", ls="--", marker="o", ms=5), Line2D([], [], color="black", marker="o",
                                                                                     ms=5)]
        names += ["training", "validation"]
        for ax in (loss_ax, acc_ax):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.xaxis.set_minor_locator(NullLocator())
        loss_ax.tick_params(labelbottom=False)
        loss_ax.set_ylabel("weighted loss")
        acc_ax.set_ylabel("weighted accuracy")
        acc_ax.set_xlabel("epoch")
        clear_corner(acc_ax)
        header(axes, right="", label=label)
        legend_outside(fig, loss_ax, handles, names)
        return save(fig, path, formats, keep)


def auc_text(value: float, err: float | None) -> str:
    """``AUC 0.9973 $\\pm$ 0.0005``: the error to one significant digit, the value to the same decimal."""
    if err is None or not np.isfinite(err) or err <= 0:
        return f"AUC {value:.3f}"
    digits = max(3, int(-np.floor(np.log10(err))))
    return f"AUC {value:.{digits}f} $\\pm$ {err:.{digits}f}"


def one_jet_limit(curve: dict) -> float:
    """Smallest mistag rate one background jet can give: 1 / N_background."""
    return 1.0 / max(int(curve.get("n_background") or 0), 1)


def roc_x_range(first_efficiency: float, step: float = 0.05) -> tuple[float, float]:
    """x range of a ROC whose drawn curves start at signal efficiency ``first_efficiency``: from the
    ``step`` below it (at least one step of margin when it is on a step) to 1."""
    lo = np.floor((float(first_efficiency) - 1e-9) / step) * step
    return (max(0.0, round(lo, 10)), 1.0)


def roc_curves(curves: dict, disc: str, path, formats=("png",), keep=None, label: str = LABEL) -> list[str]:
    """Mistag rate (log) vs signal efficiency; ``curves``: display name -> {"fpr", "tpr", "auc", "n_signal",
    "n_background", "auc_std"?, "color"?, "ls"?}. Points at or below :func:`one_jet_limit` are not drawn
    (but the step up from it, which starts on the axis floor)."""
    from ..plotting.labels import DISCRIMINANT_LABELS
    s, b = DISCRIMINANTS[disc]
    first = next(iter(curves.values()))
    floor = max(one_jet_limit(c) for c in curves.values())
    with cms_style():
        fig, axes = panels(1, 1, size=(7.5, 7.0))
        ax = axes[0][0]
        handles, names, start_eff = [], [], 1.0
        for i, (name, c) in enumerate(curves.items()):
            tpr, fpr = np.asarray(c["tpr"]), np.asarray(c["fpr"])
            ok = fpr > one_jet_limit(c) * (1 + 1e-9)        # above one background jet ...
            start = int(np.argmax(ok)) if ok.any() else len(ok)
            if 0 < start < len(ok):
                ok[start - 1] = True                          # ... and the step up from it, on the axis floor
            (line,) = ax.plot(tpr[ok], np.maximum(fpr[ok], floor), ls=c.get("ls", "-"),
                              color=c.get("color", colour(i)), lw=2.5)
            if ok.any():
                start_eff = min(start_eff, float(tpr[ok].min()))
            handles.append(line)
            names.append(f"{name}\n{auc_text(c['auc'], c.get('auc_std'))}")
        ax.set_yscale("log")
        ax.set_xlim(*roc_x_range(start_eff))
        ax.set_ylim(floor, 1)
        ax.set_xlabel(f"{JET_NAMES[s]} efficiency")
        ax.set_ylabel(f"{JET_NAMES[b]} mistag rate")
        ax.grid(True, which="both", alpha=0.3)
        clear_corner(ax)
        title = (f"{DISCRIMINANT_LABELS.get(disc, disc)} ({disc})\n"
                 f"{jets_text(disc, first['n_signal'], first['n_background'])}")
        header(ax, label=label)
        legend_outside(fig, ax, handles, names, title)
        note_below(fig, f"not shown: mistag rate $\\leq$ 1/{int(first['n_background'])} "
                        f"(at most one {SHORT[b]} jet)", ax)
        return save(fig, path, formats, keep)


def robustness(results: dict, disc: str, path, formats=("png",), attack="FGSM", bands: dict | None = None,
               n_jets: tuple | None = None, replicas: int | None = None, keep=None, label: str = LABEL) -> list[str]:
    """AUC of ``disc`` vs attack epsilon, one line per model (``results``: display name -> {eps: auc}).

    ``bands``: name -> {eps: (lo, hi)}, the bootstrap 68 % interval (drawn as a band);
    ``n_jets``: (signal, background) jets, stated in the legend's title.
    """
    from ..plotting.labels import DISCRIMINANT_LABELS
    with cms_style():
        fig, axes = panels(1, 1, size=(7.5, 7.0))
        ax = axes[0][0]
        handles, names = [], []
        for i, (name, per_eps) in enumerate(results.items()):
            eps = sorted(per_eps, key=float)
            x = np.array([float(e) for e in eps])
            (line,) = ax.plot(x, [per_eps[e] for e in eps], "o-", color=colour(i), lw=2.5)
            handles.append(line)
            names.append(name)
            band = (bands or {}).get(name)
            if band:
                lo = np.array([band[e][0] for e in eps])
                hi = np.array([band[e][1] for e in eps])
                ax.fill_between(x, lo, hi, color=colour(i), alpha=0.25, lw=0)
        ax.set_xlabel(rf"{attack} $\epsilon$ (scaled inputs)")
        ax.set_ylabel(f"AUC, {DISCRIMINANT_LABELS.get(disc, disc)}")
        ax.grid(True, alpha=0.3)
        clear_corner(ax)
        lines = [jets_text(disc, *n_jets)] if n_jets else []
        if bands and replicas:
            lines.append(f"bands: bootstrap 68 % ({replicas} replicas)")
        header(ax, label=label)
        legend_outside(fig, ax, handles, names, "\n".join(lines) or None)
        return save(fig, path, formats, keep)
