"""Demo-size figures of the jagged taggers: ParT (``part``) and ParticleNet-style (``pn``) trained from a
layout preprocessing run of a synthetic sample, then run through ``tagger_pass`` on the same file.

    python benchmarks/jagged_taggers.py [--events 10000] [--epochs 4] [--threads 1] [--out DIR]

Prints one row per tagger: jets in the train/test splits, test BvsL and CvsL AUC, training
jets/s (last epoch), inference jets/s of ``tagger_pass`` (conversion from the ROOT arrays,
scaling and the model, all kept jets of the file in one call), and the largest score difference
between ``tagger_pass`` and the model on the training tensors of the same test jets.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np

MODELS = {
    "part": {"name": "ParticleTransformer", "kwargs": {"embed_dims": [32, 32], "n_heads": 4, "n_layers": 2,
                                                       "n_cls_layers": 1, "pair_dims": [16], "ffn_ratio": 2}},
    "pn": {"name": "ParticleNet", "kwargs": {"k": 8, "conv_widths": [[32, 32], [64, 64]], "fc": [64]}},
}


def _sample(tmp: str, events: int) -> tuple[str, str]:
    from jetdask.synthetic import generate_file
    mc = os.path.join(tmp, "mc.root")
    if not os.path.exists(mc):
        generate_file(mc, events, 11, "mc", 0.0, 1, "zstd", 2000)
    fs = os.path.join(tmp, "fileset.json")
    with open(fs, "w") as f:
        json.dump({"DYJetsToLL_M-50": {"files": {mc: "Events"}, "metadata": {"is_data": False}}}, f)
    return mc, fs


def _row(layout: str, mc: str, fs: str, tmp: str, epochs: int, threads: int) -> dict:
    import awkward as ak
    import torch
    import uproot

    from jetdask.evaluation.metrics import discriminant_rocs
    from jetdask.evaluation.predict import load, predict, split_data
    from jetdask.inference import Tagger, tagger_columns, tagger_pass
    from jetdask.nanoaod.columns import resolve_columns
    from jetdask.nanoaod.events import events_from_arrays
    from jetdask.preprocessing.pipeline import preprocess
    from jetdask.training.loop import train
    run = os.path.join(tmp, f"prep_{layout}")
    t0 = time.perf_counter()
    out = preprocess({"layout": layout, "outputs": {"plots": False}}, fs, run, serial=True, progress=False,
                     verbose=False)
    prep_s = time.perf_counter() - t0
    cfg = {"model": MODELS[layout], "training": {"epochs": epochs, "batch_size": 256, "lr": 2e-3, "seed": 1,
                                                  "threads": threads}, "output": {"progress": False}}
    summary = train(cfg, preprocessed=run, out=os.path.join(tmp, f"model_{layout}"))
    hist = json.load(open(summary["history"]))
    model, ck = load(summary["best"])
    data = split_data(ck, run, "test")
    scores = predict(model, data)
    rocs = discriminant_rocs(scores, data.label, data.classes, data.weight)
    t = Tagger(layout, summary["best"], device="cpu")
    tree = uproot.open(mc)["Events"]
    ev = events_from_arrays(tree.arrays(resolve_columns(tree.keys(), tagger_columns([t]) + ["run", "event"]),
                                        how=dict))
    torch.set_num_threads(threads)
    tagger_pass(ev[:200], [t], None)                    # load the model once
    t0 = time.perf_counter()
    res = tagger_pass(ev, [t], None)
    inf_s = time.perf_counter() - t0
    n_jets = int(ak.sum(ak.num(ev.Jet)))
    ids = np.asarray(data.ids)[data.rows]
    counts = ak.to_numpy(ak.num(ev.Jet))
    flat = (np.cumsum(counts) - counts)[ids[:, 5]] + ids[:, 4]
    diff = max(float(np.abs(ak.to_numpy(ak.flatten(res.Jet[layout][c]))[flat] - scores[:, i]).max())
               for i, c in enumerate(data.classes))
    return {"layout": layout, "model": MODELS[layout]["name"], "train_jets": out.tensors["train"]["n"],
            "test_jets": len(data), "BvsL_auc": rocs["BvsL"]["auc"], "CvsL_auc": rocs["CvsL"]["auc"],
            "train_jets_per_s": hist[-1]["train_jets_per_s"], "infer_jets_per_s": n_jets / inf_s,
            "max_score_diff": diff, "preprocess_s": prep_s}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10000)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--layouts", default="part,pn")
    ap.add_argument("--out", default=None, help="working directory (default: a temporary one)")
    a = ap.parse_args(argv)
    tmp = a.out or tempfile.mkdtemp(prefix="jetdask-jagged-")
    os.makedirs(tmp, exist_ok=True)
    mc, fs = _sample(tmp, a.events)
    rows = [_row(lay, mc, fs, tmp, a.epochs, a.threads) for lay in a.layouts.split(",")]
    print(f"synthetic sample: {a.events} events, {a.epochs} epochs, {a.threads} torch thread(s)")
    print(f"{'tagger':22s} {'train':>6s} {'test':>6s} {'BvsL AUC':>9s} {'CvsL AUC':>9s} {'train j/s':>10s} "
          f"{'infer j/s':>10s} {'max |dscore|':>12s}")
    for r in rows:
        print(f"{r['model'] + ' (' + r['layout'] + ')':22s} {r['train_jets']:6d} {r['test_jets']:6d} "
              f"{r['BvsL_auc']:9.3f} {r['CvsL_auc']:9.3f} {r['train_jets_per_s']:10.0f} {r['infer_jets_per_s']:10.0f} "
              f"{r['max_score_diff']:12.1e}")


if __name__ == "__main__":
    main()
