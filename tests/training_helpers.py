"""Shared, session-cached synthetic sample, preprocessing run and trained models for the training tests.

Cached in module globals so that test_training*.py and test_evaluation.py share one sample,
one preprocessing run and one nominal + one FGSM-adversarial model (~30 s on 2 busy cores).
The session fixtures ``base``, ``synth`` and ``models`` (imported by the test modules that use
them) hand these out; :func:`read_events` reads a file's events as the inference pass does.
"""
from __future__ import annotations

import json
import os

import pytest

MC = "DYJetsToLL_M-50"
EVENTS = 4000
TINY = {"summary": "pool", "cpf_channels": [32, 16], "npf_channels": [16, 8], "sv_channels": [32, 16],
        "summary_sizes": [32, 16, 16], "dense": [64, 64], "dropout": 0.1}
EPSILON = 0.2
_cache: dict = {}


@pytest.fixture(scope="session")
def base(tmp_path_factory):
    """The session's folder that the training test modules share."""
    return str(tmp_path_factory.getbasetemp() / "training_shared")


@pytest.fixture(scope="session")
def synth(base):
    """:func:`sample` in the shared folder."""
    return sample(os.path.join(base, "sample"))


@pytest.fixture(scope="session")
def models(base):
    """:func:`trained` in the shared folder."""
    return trained(base)


def read_events(path: str, columns: list[str], entry_stop: int | None = None):
    """The events of ``path``'s Events tree with ``columns`` (patterns resolved) and run/event."""
    import uproot

    from jetdask.nanoaod.columns import resolve_columns
    from jetdask.nanoaod.events import events_from_arrays
    with uproot.open(path) as f:
        t = f["Events"]
        return events_from_arrays(t.arrays(resolve_columns(t.keys(), columns + ["run", "event"]), how=dict,
                                           entry_stop=entry_stop))


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


def layout_run(base: str, layout: str) -> str:
    """A preprocessing run of :func:`sample`'s file through ``layout`` (deepjet: the shared run)."""
    key = f"run_{layout}"
    if key in _cache:
        return _cache[key]
    s = sample(os.path.join(base, "sample"))
    if layout == "deepjet":
        _cache[key] = s["run"]
        return s["run"]
    from jetdask.preprocessing.pipeline import preprocess
    run = os.path.join(base, f"prep_{layout}")
    cfg = {"layout": layout, "outputs": {"plots": False}, "splits": {"train": 0.6, "validation": 0.1, "test": 0.3}}
    out = preprocess(cfg, s["fileset"], run, serial=True, progress=False, verbose=False)
    assert out.complete, out.message
    _cache[key] = run
    return run


#: Tiny models per layout (a few seconds per epoch on one core).
TINY_MODELS = {
    "deepjet": {"name": "DeepJet", "kwargs": TINY},
    "deepcsv": {"name": "DeepCSV", "kwargs": {"hidden": [32, 32]}},
    "part": {"name": "ParticleTransformer", "kwargs": {"embed_dims": [16, 16], "n_heads": 2, "n_layers": 1,
                                                       "n_cls_layers": 1, "pair_dims": [8], "ffn_ratio": 2}},
    "pn": {"name": "ParticleNet", "kwargs": {"k": 6, "conv_widths": [[16, 16], [32, 32]], "fc": [32]}},
}


def layout_model(base: str, layout: str, epochs: int = 1, max_jets: int | None = 3000) -> dict:
    """train() summary of the tiny model of ``layout`` on :func:`layout_run` (cached)."""
    key = f"model_{layout}_{epochs}_{max_jets}"
    if key in _cache:
        return _cache[key]
    from jetdask.training.loop import train
    cfg = config(epochs=epochs, data={"max_jets": max_jets, "max_val_jets": 500})
    cfg["model"] = TINY_MODELS[layout]
    _cache[key] = train(cfg, preprocessed=layout_run(base, layout), out=os.path.join(base, key))
    return _cache[key]
