"""Small nominal and FGSM-adversarial DeepJet taggers for ``jetdask demo``.

:func:`demo_taggers` preprocesses the first simulated file(s) of the fileset (enough files
for ``max_events`` events; a file is the smallest unit the preprocessing reads) through the
``deepjet`` inference layout, trains two small DeepJet models on at most
``max_jets`` training jets, evaluates them (``out_dir/evaluation``) and returns tagger specs
for :class:`jetdask.inference.Tagger`. A second call with the same arguments reuses the
preprocessing, the checkpoints (same config, all epochs done) and the evaluation.
"""
from __future__ import annotations

import json
import os

SMALL_DEEPJET = {"summary": "lstm", "cpf_channels": [32, 16], "npf_channels": [16, 8], "sv_channels": [32, 16],
                 "summary_sizes": [32, 16, 16], "dense": [64, 64], "dropout": 0.1}


def _mc_subset(fileset: str, out: str, max_events: int) -> str:
    """A fileset with the first MC files of ``fileset`` holding >= ``max_events`` events (written to ``out``)."""
    import uproot

    from ..errors import ConfigError
    from ..fileset import load_fileset
    fs = load_fileset(fileset)
    subset = {}
    total = 0
    for ds in fs.datasets.values():
        if ds.is_data:
            continue
        files = {}
        for f in ds.files:
            with uproot.open(f.path) as h:
                total += h[f.tree].num_entries
            files[f.path] = f.tree
            if total >= max_events:
                break
        if files:
            subset[ds.name] = {"files": files, "metadata": dict(ds.metadata)}
        if total >= max_events:
            break
    if not subset:
        raise ConfigError(f"{fileset} has no simulated dataset to train on", "fileset")
    with open(out, "w") as fh:
        json.dump(subset, fh, indent=1)
    return out


def _config(epochs: int, max_jets: int, adversarial: bool, epsilon: float) -> dict:
    return {"model": {"name": "DeepJet", "kwargs": SMALL_DEEPJET},
            "data": {"max_jets": max_jets, "max_val_jets": max(max_jets // 5, 1000)},
            "training": {"epochs": epochs, "batch_size": 256, "lr": 3e-3, "schedule": "cosine", "seed": 1,
                         "threads": 1},
            "adversarial": {"method": "fgsm" if adversarial else "none", "epsilon": epsilon}}


def _reusable(out_dir: str, cfg: dict, run_dir: str) -> bool:
    from ..inference.registry import load_checkpoint
    from .config import load_config
    best, hist = os.path.join(out_dir, "best.pt"), os.path.join(out_dir, "history.json")
    if not (os.path.exists(best) and os.path.exists(hist)):
        return False
    want = load_config(cfg, {"data.preprocessed": os.path.abspath(run_dir), "output.dir": os.path.abspath(out_dir)})
    meta = load_checkpoint(best)["metadata"]
    with open(hist) as f:
        done = len(json.load(f))
    got = dict(meta.get("config", {}))
    strip = lambda c: {k: v for k, v in c.items() if k != "output"}          # noqa: E731
    return strip(got) == json.loads(json.dumps(strip(want))) and done >= want["training"]["epochs"]


def demo_taggers(fileset: str, out_dir: str, epochs: int = 3, *, max_events: int = 40_000, max_jets: int = 40_000,
                 epsilon: float = 0.1, client=None, workers: int | None = 2, progress: bool = True,
                 evaluate: bool = True) -> list[dict]:
    """Train (or reuse) ``DeepJet_nominal`` and ``DeepJet_adversarial``; returns ``[{"name", "source"}, ...]``."""
    from ..engine.progress import say, step
    from ..preprocessing.pipeline import preprocess
    from .loop import train
    out_dir = os.path.abspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    run_dir = os.path.join(out_dir, "preprocessing")
    if not os.path.exists(os.path.join(run_dir, "tensors", "test", "columns.json")):
        os.makedirs(run_dir, exist_ok=True)
        sub = _mc_subset(fileset, os.path.join(out_dir, "training_fileset.json"), max_events)
        prep_cfg = {"layout": "deepjet", "outputs": {"plots": False},
                    "splits": {"train": 0.7, "validation": 0.1, "test": 0.2}}
        res = preprocess(prep_cfg, sub, run_dir, client=client, serial=client is None and workers == 0,
                         workers=workers or None, progress=progress, verbose=False)
        if not res.complete:
            raise RuntimeError(f"demo preprocessing incomplete: {res.message}")
    elif progress:
        say(f"preprocessing: reusing {run_dir}")
    specs = []
    for kind, adv in (("nominal", False), ("adversarial", True)):
        d = os.path.join(out_dir, kind)
        cfg = _config(epochs, max_jets, adv, epsilon)
        if not _reusable(d, cfg, run_dir):
            with step(f"training DeepJet_{kind} ({epochs} epochs)", progress):
                train(cfg, preprocessed=run_dir, out=d, progress=progress)
        elif progress:
            say(f"training DeepJet_{kind}: reusing {d} ({epochs} epochs done earlier)")
        specs.append({"name": f"DeepJet_{kind}", "source": os.path.join(d, "best.pt")})
    if evaluate:
        ev = os.path.join(out_dir, "evaluation")
        auc = os.path.join(ev, "auc.json")
        newest = max(os.path.getmtime(s["source"]) for s in specs)
        if not (os.path.exists(auc) and os.path.getmtime(auc) >= newest):
            from ..evaluation import evaluate as run_evaluation
            with step("evaluation (ROC, AUC, robustness)", progress):
                run_evaluation({s["name"]: s["source"] for s in specs}, run_dir, ev,
                               epsilons=(0.0, 0.05, 0.1, 0.2), max_jets=20_000)
        elif progress:
            say(f"evaluation: reusing {ev} (taggers unchanged)")
    return specs
