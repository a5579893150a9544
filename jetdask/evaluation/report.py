"""``evaluate(models, preprocessed, out_dir)``: every figure and the AUC JSON for a set of taggers.

``models``: ``{name: checkpoint}`` (e.g. ``{"nominal": "runs/nom/best.pt", "adversarial": ...}``).
On the ``split`` of the preprocessing run (same jets for every model) it writes into ``out_dir``:

* ``loss_curves.png``: train/validation loss and accuracy (``history.json`` beside each checkpoint);
* ``scores_<name>.png``, ``discriminants_<name>.png``: outputs and BvsL/CvsB/CvsL per flavour;
* ``roc_<disc>.png``: every model's ROC, solid, and under FGSM of ``roc_epsilon``, dashed;
* ``inputs.png``: a selection of inputs per flavour, raw (before scaling);
* ``robustness_<disc>.png``: AUC versus the FGSM (or PGD) epsilon, with bootstrap bands;
* ``auc.json``: ``{"split", "n_jets", "epsilons", "attack", "bootstrap": {"replicas", "seed"},
  "models": {name: {"checkpoint", "auc": {disc: AUC}, "auc_std": {disc: std},
  "robustness": {disc: {eps: AUC}}, "robustness_band": {disc: {eps: [lo, hi]}},
  "n_signal"/"n_background": {disc: n}}}}``.

Uncertainties: ``bootstrap`` replicas (default 200, seeded, :mod:`.bootstrap`) resample the
test jets; each model's AUCs at every epsilon use the same replicas. ``bootstrap=0`` skips it.
"""
from __future__ import annotations

import json
import os

import numpy as np

from ..atomicwrite import write_json
from ..plotting.labels import tagger_label
from . import bootstrap as boot
from . import metrics, plots
from .figure import colour
from .predict import load, predict, split_data

DEFAULT_EPSILONS = (0.0, 0.05, 0.1, 0.2, 0.3)


def _history(ckpt_path: str, ckpt: dict) -> list | None:
    p = os.path.join(os.path.dirname(os.path.abspath(ckpt_path)), "history.json")
    if os.path.exists(p):
        with open(p) as f:
            return json.load(f)
    return ckpt["metadata"].get("history")


def _input_features(data) -> list:
    """(input name, index, axis title with unit) of the inputs shown in ``inputs.png``."""
    if data.layout.name == "deepjet":
        return [("glob", (0,), "jet $p_T$ [GeV]"), ("glob", (1,), r"jet $\eta$"),
                ("glob", (12,), "track above charm: 3D IP sig."), ("cpf", (0, 13), "1st charged: 3D IP sig."),
                ("cpf", (0, 3), "1st charged: $p_T$ / jet $p_T$"), ("npf", (0, 4), "1st neutral: $p_T$ / jet $p_T$"),
                ("sv", (0, 0), "1st SV: mass [GeV]"), ("sv", (0, 8), "1st SV: 3D flight dist. sig.")]
    out = []
    for spec in data.specs:
        ints = set(spec.integer)
        for j, f in enumerate(spec.features):
            if f not in ints and len(out) < 8:
                idx = (j,) if spec.slots is None else ((j, 0) if spec.channels_first else (0, j))
                out.append((spec.name, idx, f))
    return out


def _key(eps: float) -> str:
    return f"{float(eps):g}"


def evaluate(models: dict, preprocessed: str, out_dir: str, *, split: str = "test", epsilons=DEFAULT_EPSILONS,
             attack: str = "fgsm", roc_epsilon: float | None = None, max_jets: int | None = None,
             formats=("png",), device: str = "cpu", plots_on: bool = True, bootstrap: int = boot.DEFAULT_REPLICAS,
             seed: int = boot.DEFAULT_SEED, names: dict | None = None, keep: list | None = None) -> dict:
    """Figures and ``auc.json`` (see the module docstring); returns the JSON dict.

    ``names``: display name per model key (default: the key with spaces for underscores,
    :func:`jetdask.plotting.labels.tagger_label`, as in the data/MC figures). ``keep``: a list that
    receives every figure (for tests that measure them)."""
    from ..training.adversarial import Attack
    os.makedirs(out_dir, exist_ok=True)
    eps_list = sorted({float(e) for e in epsilons} | {0.0})
    if roc_epsilon is None:
        nonzero = [e for e in eps_list if e > 0]
        roc_epsilon = nonzero[len(nonzero) // 2] if nonzero else 0.0
    result = {"split": split, "preprocessed": os.path.abspath(preprocessed), "attack": attack,
              "epsilons": eps_list, "roc_epsilon": roc_epsilon, "models": {},
              "bootstrap": {"replicas": int(bootstrap), "seed": int(seed)}}
    rocs: dict = {}
    robust: dict = {}
    bands: dict = {}
    counts_jets: dict = {}
    histories = {}
    files: list = []
    first = None
    for i, (name, path) in enumerate(models.items()):
        model, ckpt = load(path, device)
        data = split_data(ckpt, preprocessed, split, limit=max_jets)
        if first is None:
            first = data
        groups = metrics.flavour_groups(data.label, data.classes)
        per_eps = {}
        scores0 = None
        counts = boot.multiplicities(len(data), int(bootstrap), seed) if bootstrap else None
        for eps in sorted(set(eps_list) | {roc_epsilon}):
            s = predict(model, data, attack=Attack(attack, eps) if eps > 0 else None, device=device)
            if eps == 0:
                scores0 = s
            per_eps[eps] = metrics.discriminant_rocs(s, data.label, data.classes, data.weight,
                                                     counts if eps in eps_list else None)
        nominal = per_eps[0.0]
        entry = {"checkpoint": os.path.abspath(path), "epoch": int(ckpt["epoch"]), "n_jets": len(data),
                 "auc": {d: r["auc"] for d, r in nominal.items()},
                 "auc_std": {d: r.get("auc_std") for d, r in nominal.items()},
                 "n_signal": {d: r["n_signal"] for d, r in nominal.items()},
                 "n_background": {d: r["n_background"] for d, r in nominal.items()},
                 "robustness": {d: {_key(e): per_eps[e][d]["auc"] for e in eps_list if d in per_eps[e]}
                                for d in nominal},
                 "robustness_band": {d: {_key(e): [per_eps[e][d]["auc_lo"], per_eps[e][d]["auc_hi"]]
                                         for e in eps_list if d in per_eps[e] and "auc_lo" in per_eps[e][d]}
                                     for d in nominal}}
        result["models"][name] = entry
        shown = tagger_label(name, names)
        attacked = tagger_label(f"{name}@{attack.lower()}{roc_epsilon:g}", names)   # "... (FGSM, ε = 0.1 inputs)"
        for d in nominal:
            rocs.setdefault(d, {})[shown] = dict(nominal[d], color=colour(i))
            if roc_epsilon > 0 and d in per_eps[roc_epsilon]:
                rocs[d][attacked] = dict(per_eps[roc_epsilon][d], color=colour(i), ls="--")
            robust.setdefault(d, {})[shown] = entry["robustness"][d]
            bands.setdefault(d, {})[shown] = entry["robustness_band"][d]
            counts_jets.setdefault(d, (nominal[d]["n_signal"], nominal[d]["n_background"]))
        hist = _history(path, ckpt)
        if hist:
            histories[name] = hist
        if plots_on:
            files += plots.score_distributions(scores0, groups, data.classes,
                                               os.path.join(out_dir, f"scores_{name}"), formats, shown, keep)
            files += plots.discriminant_distributions(metrics.discriminant_values(scores0, data.classes), groups,
                                                      os.path.join(out_dir, f"discriminants_{name}"), formats, shown,
                                                      keep)
    result["n_jets"] = len(first) if first is not None else 0
    if plots_on:
        if histories:
            files += plots.loss_curves({tagger_label(k, names): v for k, v in histories.items()},
                                       os.path.join(out_dir, "loss_curves"), formats, keep)
        for d, curves in rocs.items():
            files += plots.roc_curves(curves, d, os.path.join(out_dir, f"roc_{d}"), formats, keep)
            files += plots.robustness(robust[d], d, os.path.join(out_dir, f"robustness_{d}"), formats,
                                      attack.upper(), bands=bands[d] if bootstrap else None, n_jets=counts_jets[d],
                                      replicas=int(bootstrap), keep=keep)
        if first is not None:
            raw = first.converted(np.arange(len(first)))          # before scaling: what the jets look like
            groups = metrics.flavour_groups(first.label, first.classes)
            files += plots.input_distributions(raw.arrays, raw.valid, groups, _input_features(first),
                                               os.path.join(out_dir, "inputs"), formats, keep)
    result["plots"] = [os.path.basename(f) for f in files]
    write_json(os.path.join(out_dir, "auc.json"), result, indent=1)
    return result
