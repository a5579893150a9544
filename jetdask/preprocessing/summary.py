"""The preprocessing summary: counts per class and split before/after cleaning, cutflow, weights.

``RUN/summary.json`` (:func:`build`, :func:`save`)::

    classes, datasets, n_features, label_scheme
    cutflow   {step: {"total": n, "per_class": {class or "dropped": n}}}   (all splits)
    counts    {split: {class: {"before": n, "after": n}}, "dropped": {"before": n}}
    weights   {split: {class: {"n": jets, "sum": sum of weights, "mean": mean weight}}}
    weight_hist {"log10w_edges": [...], "counts": {split: {class: [...]}}}
    reweighting (settings and groups per class), tensors {split: {"dir", "n"}}
    timings   {"pass1_s", "pass2_s"}: wall time of a pass run entirely by this call (else null);
              {"pass1_task_s", "pass2_task_s"}: summed task time of the done chunks (ledger)
    throughput {"pass2_jets_per_s", "pass2_kept_jets_per_s"} (input / kept jets per wall second),
              {"pass2_jets_per_task_s"} (input jets per second of one worker thread)

Plots (:func:`plots`, matplotlib + mplhep, PNG in ``RUN/plots/``): ``cutflow.png``,
``counts.png``, ``weights.png`` (weight distribution per class, training split) and
``kinematics.png`` (pT and eta per class, unweighted and weighted, with the target, on the
split the weights come from: the weighted curves follow the target up to the bin merging).
"""
from __future__ import annotations

import os
import warnings

import numpy as np

from ..atomicwrite import write_json
from .split import SPLITS


def build(run_dir, prep, counters, kin, kin_w, weights_h, wm, tensors, timings) -> dict:
    cfg = prep["config"]
    classes = list(cfg["labels"]["classes"])
    names = classes + ["dropped"]
    steps = [k.split("/")[1] for k in counters if k.startswith("cutflow/") and k.count("/") == 1]
    cutflow = {s: {"total": int(counters.get(f"cutflow/{s}", 0)),
                   "per_class": {n: int(counters.get(f"cutflow/{s}/{n}", 0)) for n in names}} for s in steps}
    counts = {}
    for sp in SPLITS:
        counts[sp] = {c: {"before": int(counters.get(f"count/{sp}/{c}/before", 0)),
                          "after": int(counters.get(f"count/{sp}/{c}/after", 0))} for c in classes}
        counts[sp]["dropped"] = {"before": int(counters.get(f"count/{sp}/dropped/before", 0))}
    weights, whist = {}, {"log10w_edges": [], "counts": {}}
    if kin_w is not None:
        sw = kin_w.values().sum(axis=(2, 3))          # (cls, split)
        for s, sp in enumerate(SPLITS):
            weights[sp] = {}
            for c, cn in enumerate(classes):
                n = counts[sp][cn]["after"]
                weights[sp][cn] = {"n": n, "sum": float(sw[c, s]), "mean": float(sw[c, s] / n) if n else 0.0}
    if weights_h is not None:
        whist["log10w_edges"] = weights_h.axes["log10w"].edges.tolist()
        v = weights_h.values(flow=True)
        whist["counts"] = {sp: {cn: v[c, s].tolist() for c, cn in enumerate(classes)} for s, sp in enumerate(SPLITS)}
    t2, busy = timings.get("pass2_s"), timings.get("pass2_task_s")
    n_all = cutflow.get("all", {}).get("total", 0)
    n_kept = cutflow.get("label", {}).get("total", 0)
    return {"run_dir": run_dir, "classes": classes, "datasets": prep["datasets"], "n_features": len(prep["features"]),
            "layout": prep.get("layout"),
            "label_scheme": cfg["labels"]["scheme"], "cutflow": cutflow, "counts": counts, "weights": weights,
            "weight_hist": whist, "reweighting": dict(wm.info) if wm is not None else {},
            "tensors": tensors or {}, "timings": timings,
            "throughput": {"pass2_jets_per_s": n_all / t2 if t2 else None,
                           "pass2_kept_jets_per_s": n_kept / t2 if t2 else None,
                           "pass2_jets_per_task_s": n_all / busy if busy else None}}


def save(run_dir: str, summ: dict) -> str:
    path = os.path.join(run_dir, "summary.json")
    return write_json(path, summ, indent=1)


def format_text(summ: dict) -> str:
    classes = summ["classes"]
    w = max(8, *(len(c) for c in classes))
    lines = [f"preprocessing summary ({summ['run_dir']})", "",
             "cutflow (jets left after each step, all splits):",
             "  " + "step".ljust(10) + "total".rjust(10) + "".join(c.rjust(w + 1) for c in classes + ["dropped"])]
    for step, d in summ["cutflow"].items():
        lines.append("  " + step.ljust(10) + str(d["total"]).rjust(10)
                     + "".join(str(d["per_class"][c]).rjust(w + 1) for c in classes + ["dropped"]))
    lines += ["", "jets per split and class (before -> after cleaning; sum of weights):"]
    for sp, d in summ["counts"].items():
        parts = []
        for c in classes:
            sw = summ["weights"].get(sp, {}).get(c, {}).get("sum")
            parts.append(f"{c} {d[c]['before']}->{d[c]['after']}" + (f" (w {sw:.0f})" if sw is not None else ""))
        lines.append(f"  {sp:<10} " + ", ".join(parts) + f", dropped {d['dropped']['before']}")
    if summ.get("tensors"):
        lines += ["", "tensors: " + ", ".join(f"{s} {t['n']} jets" for s, t in summ["tensors"].items())
                  + (f" x the inputs of layout {summ['layout']!r}" if summ.get("layout") else
                     f" x {summ['n_features']} features") + f" in {os.path.join(summ['run_dir'], 'tensors')}"]
    tp = summ.get("throughput", {})
    if tp.get("pass2_jets_per_s"):
        lines.append(f"pass 2: {tp['pass2_jets_per_s']:.0f} jets/s read, {tp['pass2_kept_jets_per_s']:.0f} kept jets/s "
                     f"(wall time of the pass); {tp['pass2_jets_per_task_s']:.0f} jets per task-second")
    elif tp.get("pass2_jets_per_task_s"):
        lines.append(f"pass 2 (resumed): {tp['pass2_jets_per_task_s']:.0f} jets per task-second")
    return "\n".join(lines)


def plots(run_dir, summ, kin, kin_w, weights_h, wm, source_split: str = "train") -> list[str]:
    """PNG plots in ``RUN/plots``; returns their paths (kinematics of the weights' source split)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep

    d = os.path.join(run_dir, "plots")
    os.makedirs(d, exist_ok=True)
    classes = summ["classes"]
    paths = []
    with plt.style.context(mplhep.style.CMS), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)     # mplhep: "Integer weights indicate poissonian data"
        # cutflow
        fig, ax = plt.subplots(figsize=(10, 7))
        steps = list(summ["cutflow"])
        for c in classes + ["dropped"]:
            ax.plot(steps, [max(summ["cutflow"][s]["per_class"][c], 0.5) for s in steps], marker="o", label=c)
        ax.set_yscale("log")
        ax.set_ylabel("jets after step")
        ax.legend(ncol=2, fontsize=14)
        paths.append(_save(fig, d, "cutflow.png"))
        # counts before/after per split
        fig, axes = plt.subplots(1, len(SPLITS), figsize=(18, 6), sharey=True)
        x = np.arange(len(classes))
        for ax, sp in zip(axes, SPLITS):
            ax.bar(x - 0.2, [summ["counts"][sp][c]["before"] for c in classes], 0.4, label="before")
            ax.bar(x + 0.2, [summ["counts"][sp][c]["after"] for c in classes], 0.4, label="after")
            ax.set_xticks(x, classes, fontsize=14)
            ax.set_title(sp, fontsize=16)
            ax.set_yscale("log")
        axes[0].set_ylabel("jets")
        axes[0].legend(fontsize=14)
        paths.append(_save(fig, d, "counts.png"))
        # weights
        if weights_h is not None:
            fig, ax = plt.subplots(figsize=(10, 7))
            for c, cn in enumerate(classes):
                hc = weights_h[c, 0, :]
                mplhep.histplot(hc.values(), hc.axes[0].edges, ax=ax, label=cn, yerr=False)
            ax.set_yscale("log")
            ax.set_xlabel("log10(weight), training split")
            ax.legend(fontsize=14)
            paths.append(_save(fig, d, "weights.png"))
        # kinematics
        if kin is not None and kin_w is not None:
            fig, axes = plt.subplots(2, 2, figsize=(16, 12))
            for row, (hh, title) in enumerate(((kin, "unweighted"), (kin_w, "weighted"))):
                for col, axis in enumerate(("pt", "eta")):
                    ax = axes[row, col]
                    v = hh.values()                    # (cls, split, pt, eta)
                    vals = v.sum(axis=1) if source_split == "all" else v[:, SPLITS.index(source_split)]
                    edges = hh.axes[axis].edges
                    proj = vals.sum(axis=2 if axis == "pt" else 1)
                    width = np.diff(edges)
                    for c, cn in enumerate(classes):
                        tot = proj[c].sum()
                        if tot > 0:
                            mplhep.histplot(proj[c] / tot / width, edges, ax=ax, label=cn, yerr=False)
                    if wm is not None:
                        t = wm.target.sum(axis=1 if axis == "pt" else 0)
                        mplhep.histplot(t / t.sum() / width, edges, ax=ax, color="k", ls="--", label="target",
                                        yerr=False)
                    ax.set_xlabel(hh.axes[axis].label)
                    ax.set_title(f"{title}, {source_split} split", fontsize=16)
                    if axis == "pt":
                        ax.set_xscale("log")
                        ax.set_yscale("log")
            axes[0, 0].legend(fontsize=12, ncol=2)
            paths.append(_save(fig, d, "kinematics.png"))
    return paths


def _save(fig, d, name) -> str:
    import matplotlib.pyplot as plt
    p = os.path.join(d, name)
    fig.savefig(p, dpi=70, bbox_inches="tight")
    plt.close(fig)
    return p
