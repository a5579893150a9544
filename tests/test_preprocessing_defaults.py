"""The automatic default value (``placeholder: auto``) and the scaler come from the training split only.

On the real ``pfnano.root`` (the DeepCSV inputs of PFNano with their -999 defaults and empty
track slots): the placeholder of each feature equals the minimum minus ``auto_margin`` standard
deviations of the valid values of the *training* jets, computed here from the written shards,
and differs from what the validation and test jets would give. (``nano_dy.root`` cannot be
preprocessed: it has no ``Jet_nBHadrons`` to label its jets.)
"""
from __future__ import annotations

import glob
import json
import os

import numpy as np
import pytest

from jetdask.preprocessing import defaults, scale
from jetdask.preprocessing.pipeline import preprocess
from jetdask.preprocessing.split import SPLITS


def _shards(run_dir: str, split: str):
    import pyarrow.parquet as pq

    files = sorted(glob.glob(os.path.join(run_dir, "pass2-shards", "arrays", split, "*", "*.parquet")))
    tables = [pq.read_table(f).to_pydict() for f in files]
    return {k: np.concatenate([np.asarray(t[k]) for t in tables]) for k in tables[0]} if tables else {}


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    from conftest import real_file
    path = real_file("pfnano.root")
    base = tmp_path_factory.mktemp("prep_defaults")
    fs = base / "fileset.json"
    fs.write_text(json.dumps({"real": {"files": {path: "Events"}, "metadata": {"is_data": False}}}))
    cfg = {"features": ["Jet_DeepCSV_*", "Jet_pt", "Jet_eta"], "reweighting": {"min_count": 1},
           "outputs": {"plots": False}, "splits": {"train": 0.5, "validation": 0.25, "test": 0.25, "seed": 3}}
    out = preprocess(cfg, str(fs), str(base / "run"), serial=True, progress=False, verbose=False)
    assert out.complete, out.message
    with open(os.path.join(base, "run", "prep.json")) as f:
        features = json.load(f)["features"]
    return str(base / "run"), features


def test_auto_placeholder_from_the_training_split(real_run):
    run, features = real_run
    with open(os.path.join(run, "scaler.json")) as f:
        scaler = json.load(f)
    margin = 1.0                                               # defaults.auto_margin of default.yaml
    shards = {s: _shards(run, s) for s in SPLITS}
    assert all(len(shards[s].get("label", [])) > 5 for s in SPLITS)          # 41 labelled jets in the file
    below_in_other_splits = []
    masks = {s: defaults.unpack_mask(shards[s]["defaulted_bits"], len(features)) for s in SPLITS}
    for j, var in enumerate(features):
        valid = {s: shards[s][var][~masks[s][:, j]].astype(np.float64) for s in SPLITS}
        train = valid["train"]
        if not train.size:
            continue
        expected = np.float32(train.min() - margin * train.std())
        assert scaler[var]["placeholder"] == pytest.approx(float(expected), rel=1e-6, abs=1e-6), var
        assert scaler[var]["n"] == len(train)
        assert scaler[var]["mean"] == pytest.approx(train.mean(), rel=1e-9, abs=1e-12), var
        others = np.concatenate([valid["validation"], valid["test"]])
        if others.size and others.min() < train.min():
            below_in_other_splits.append(var)
            # what the old rule (minimum over every split) would have written
            assert float(np.float32(others.min() - margin * train.std())) != pytest.approx(
                scaler[var]["placeholder"], rel=1e-6), var
    # the test can tell the rules apart: some validation/test jet lies below every training value
    assert below_in_other_splits, "no feature whose minimum is outside the training split"
    # defaulted entries exist and carry the placeholder in every split
    for s in SPLITS:
        assert masks[s].any(), s
        for j in np.flatnonzero(masks[s].any(axis=0)):
            var = features[j]
            np.testing.assert_array_equal(shards[s][var][masks[s][:, j]], np.float32(scaler[var]["placeholder"]))


def test_moments_take_the_training_values_only():
    """chunk_moments sees only what it is given: the training jets; a validation value of -50 handed
    to the pass never reaches the table (the pass selects the training rows before the call)."""
    train = np.array([1.0, 2.0, 4.0], np.float32)
    t = scale.chunk_moments(["x"], [train], [np.ones(3, bool)])
    assert t["min"][0] == 1.0 and t["max"][0] == 4.0 and t["n"][0] == 3
    ph = defaults.resolve_placeholder(defaults.Rule("x"), t["min"][0], float(np.sqrt(t["m2"][0] / t["n"][0])), 3,
                                      {"auto_margin": 1.0, "fallback_placeholder": -1.0})
    assert ph == pytest.approx(1.0 - np.std([1.0, 2.0, 4.0]), rel=1e-6)
