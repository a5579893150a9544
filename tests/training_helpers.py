"""Shared, session-cached synthetic sample, preprocessing run and trained models for the training tests.

Cached in module globals so that test_training*.py and test_evaluation.py share one sample,
one preprocessing run and one nominal + one FGSM-adversarial model (~30 s on 2 busy cores).
"""
from __future__ import annotations

import json
import os

MC = "DYJetsToLL_M-50"
EVENTS = 4000
TINY = {"summary": "pool", "cpf_channels": [32, 16], "npf_channels": [16, 8], "sv_channels": [32, 16],
        "summary_sizes": [32, 16, 16], "dense": [64, 64], "dropout": 0.1}
EPSILON = 0.2
_cache: dict = {}


def config(epochs=6, method="none", **extra) -> dict:
    cfg = {"model": {"name": "DeepJet", "kwargs": TINY},
           "training": {"epochs": epochs, "batch_size": 256, "lr": 3e-3, "seed": 3, "threads": 1},
           "adversarial": {"method": method, "epsilon": EPSILON}, "output": {"progress": False}}
    for k, v in extra.items():
        cfg.setdefault(k, {}).update(v)
    return cfg


def sample(base: str) -> dict:
    """{"fileset", "mc", "run"}: one synthetic MC file and its (inference-compatible) preprocessing."""
    if "sample" in _cache:
        return _cache["sample"]
    from jetdask.preprocessing.pipeline import preprocess
    from jetdask.synthetic import generate_file
    from jetdask.synthetic.sample import DY_XSEC_PB
    os.makedirs(base, exist_ok=True)
    mc = os.path.join(base, "mc_0.root")
    generate_file(mc, EVENTS, 3, "mc", 0.0, 1, "zstd", 1000)
    fs = os.path.join(base, "fileset.json")
    with open(fs, "w") as f:
        json.dump({MC: {"files": {mc: "Events"}, "metadata": {"is_data": False, "xsec": DY_XSEC_PB}}}, f)
    run = os.path.join(base, "prep")
    cfg = {"layout": "deepjet", "outputs": {"plots": False}, "splits": {"train": 0.6, "validation": 0.1, "test": 0.3}}
    out = preprocess(cfg, fs, run, serial=True, progress=False, verbose=False)
    assert out.complete, out.message
    _cache["sample"] = {"fileset": fs, "mc": mc, "run": run}
    return _cache["sample"]


def trained(base: str) -> dict:
    """{"nominal": summary, "adversarial": summary} of train() on :func:`sample`."""
    if "trained" in _cache:
        return _cache["trained"]
    from jetdask.training.loop import train
    s = sample(os.path.join(base, "sample"))
    out = {kind: train(config(method=m), preprocessed=s["run"], out=os.path.join(base, kind))
           for kind, m in (("nominal", "none"), ("adversarial", "fgsm"))}
    _cache["trained"] = out
    return out
