"""The corrections layer: config checking, per-process cache, task size, clamps, errors."""
from __future__ import annotations

import gzip
import json
import os
import shutil

import cloudpickle
import numpy as np
import pytest

from jetdask.corrections import loader
from jetdask.corrections.config import load_config
from jetdask.corrections.evaluate import CorrectionError, Evaluator, segment_prod
from jetdask.errors import ConfigError, FileAccessError
from jetdask.synthetic.pog import write_corrections

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def pog(tmp_path_factory):
    d = tmp_path_factory.mktemp("pog")
    write_corrections(str(d), mismodel=0.5)
    return d


def _bloat(src_dir, dst_dir, n_bins: int):
    """A copy of the synthetic files whose btagging file carries an extra correction of n_bins bins."""
    shutil.copytree(src_dir, dst_dir)
    path = os.path.join(dst_dir, "btagging.json.gz")
    with gzip.open(path, "rt") as f:
        doc = json.load(f)
    edges = list(np.linspace(0, 1, n_bins + 1))
    doc["corrections"].append({"name": "padding", "version": 1, "inputs": [{"name": "x", "type": "real"}],
                               "output": {"name": "w", "type": "real"},
                               "data": {"nodetype": "binning", "input": "x", "edges": edges,
                                        "content": list(np.linspace(1, 2, n_bins)), "flow": "clamp"}})
    with gzip.open(path, "wt") as f:
        json.dump(doc, f)
    return os.path.join(dst_dir, "corrections.yaml")


def test_task_pickle_size_does_not_grow_with_the_correction_files(pog, tmp_path):
    from jetdask.plugin import load_analysis
    small = _bloat(pog, tmp_path / "aaaa", 10)
    big = _bloat(pog, tmp_path / "bbbb", 200_000)
    assert os.path.getsize(tmp_path / "bbbb" / "btagging.json.gz") > 20 * os.path.getsize(
        tmp_path / "aaaa" / "btagging.json.gz")
    spec = os.path.join(REPO, "analyses", "dy_jets.py") + ":DYJets"
    sizes = [len(cloudpickle.dumps(load_analysis(spec, corrections=str(p)))) for p in (small, big)]
    assert sizes[0] == sizes[1]
    assert sizes[0] < 200_000


def test_files_are_read_once_per_process_and_keyed_by_content(pog, tmp_path):
    loader.clear_cache()
    before = loader.load_count()
    ref = loader.ref_for(str(pog / "puWeights.json.gz"))
    a, b = loader.load(ref), loader.load(ref)
    assert a is b and loader.load_count() == before + 1
    # the same path with other content is another entry, and a stale sha256 is refused
    copy = tmp_path / "pu.json.gz"
    shutil.copy(pog / "puWeights.json.gz", copy)
    stale = loader.ref_for(str(copy))
    shutil.copy(pog / "btagging.json.gz", copy)
    with pytest.raises(FileAccessError, match="changed since the run started"):
        loader.load(stale)


def test_config_errors_name_the_key(pog, tmp_path):
    cfg = load_config(str(pog / "corrections.yaml"))
    assert cfg.syst_names[0] == "nominal" and len(cfg.syst_names) == 41
    bad = tmp_path / "bad.yaml"
    bad.write_text("btag: {file: %s, shape: deepJet_nope}\n" % (pog / "btagging.json.gz"))
    with pytest.raises(ConfigError, match="deepJet_nope") as e:
        load_config(str(bad))
    assert e.value.key == "corrections.btag"
    bad.write_text("pileup: {file: %s, correction: Collisions18_UltraLegacy_goldenJSON}\n"
                   "systematics: [btag_hf]\n" % (pog / "puWeights.json.gz"))
    with pytest.raises(ConfigError, match="btag_hf"):
        load_config(str(bad))
    bad.write_text("jecs: {}\n")
    with pytest.raises(ConfigError, match="unknown key 'jecs'"):
        load_config(str(bad))
    # switching a block off drops the systematics that need it
    off = load_config(str(pog / "corrections.yaml"), disable=["btag"])
    assert not any(n.startswith("btag_") for n in off.syst_names)


def test_provenance_names_sha256_and_versions(pog):
    cfg = load_config(str(pog / "corrections.yaml"))
    prov = cfg.provenance()
    by_name = {os.path.basename(f["path"]): f for f in prov["files"]}
    assert set(by_name) == {"btagging.json.gz", "puWeights.json.gz", "jet_jerc.json.gz"}
    import hashlib
    with gzip.open(pog / "btagging.json.gz", "rb") as f:
        assert by_name["btagging.json.gz"]["sha256"] == hashlib.sha256(f.read()).hexdigest()
    assert {"name": "deepJet_shape", "version": 1} in by_name["btagging.json.gz"]["corrections"]
    json.dumps(prov)


def test_clamps_are_counted_and_errors_name_file_correction_inputs(pog):
    ref = loader.ref_for(str(pog / "btagging.json.gz"))
    ev = Evaluator(ref, "deepJet_shape")
    counters: dict = {}
    ev(counters, systematic="central", flavor=np.array([0, 0, 5, 4]), abseta=np.array([0.1, 2.7, 1.0, 1.0]),
       pt=np.array([15.0, 50.0, 1500.0, 1000.0]), discriminant=np.array([-1.0, 0.5, 0.2, 1.0]))
    assert counters["clamp:deepJet_shape:discriminant"] == 1       # the -1 default; exactly 1.0 is inside
    assert counters["clamp:deepJet_shape:pt"] == 2                  # 15 and 1500 GeV
    assert counters["clamp:deepJet_shape:abseta"] == 1
    with pytest.raises(CorrectionError) as e:
        ev(None, systematic="up_cferr1", flavor=np.array([5]), abseta=np.array([0.5]), pt=np.array([40.0]),
           discriminant=np.array([0.3]))
    msg = str(e.value)
    assert "btagging.json.gz" in msg and "deepJet_shape" in msg and "systematic='up_cferr1'" in msg
    with pytest.raises(CorrectionError, match="no correction 'deepJet_shapes'"):
        Evaluator(ref, "deepJet_shapes")


def test_segment_product_by_hand():
    v = np.array([2.0, 3.0, 0.5, 4.0])
    np.testing.assert_allclose(segment_prod(v, np.array([2, 0, 1, 1])), [6.0, 1.0, 0.5, 4.0])
    np.testing.assert_allclose(segment_prod(np.array([]), np.array([0, 0])), [1.0, 1.0])
