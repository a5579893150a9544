"""With all systematic variations on: bin-exact outputs between chunkings, 1 vs 2 workers, a
killed worker and a resubmitted run (real LocalCluster workers, real SIGKILL)."""
from __future__ import annotations

import os

import pytest

from corrections_helpers import FaultyDYJets
from engine_helpers import assert_same_output, local_client
from jetdask.engine.runner import Runner


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    from jetdask.synthetic import generate_sample
    out = tmp_path_factory.mktemp("systsample")
    return generate_sample(str(out), events=2000, files=2, seed=13, mismodel=1.0, basket_events=250, workers=1)


def _load_count():
    from jetdask.corrections.loader import load_count
    return load_count()


def _analysis(sample, **kw):
    return FaultyDYJets(corrections=os.path.join(os.path.dirname(sample), "corrections.yaml"), **kw)


@pytest.fixture(scope="module")
def reference(sample, tmp_path_factory):
    with Runner(_analysis(sample), sample, str(tmp_path_factory.mktemp("ref")), serial=True, chunk_size=1000,
                progress=False) as r:
        out = r.run()
    assert out.complete
    h = out.hists["DYJetsToLL_M-50"]["DeepJet_BvsL"]
    assert len(h.axes["syst"]) == 41
    return out


def test_chunkings_give_identical_bins(sample, reference, tmp_path):
    with Runner(_analysis(sample), sample, str(tmp_path / "r"), serial=True, chunk_size=333, progress=False) as r:
        out = r.run()
    assert_same_output(out, reference, atol_of_largest=1e-12)


@pytest.mark.slow
@pytest.mark.cluster
def test_one_and_two_workers_killed_worker_and_resubmit(sample, reference, tmp_path):
    for n in (1, 2):
        with local_client(n_workers=n, memory_limit="2GiB") as client, \
                Runner(_analysis(sample), sample, str(tmp_path / f"w{n}"), client, chunk_size=400,
                       progress=False) as r:
            out = r.run()
            loads = client.run(_load_count)          # per worker process: each file read once (3 files)
        assert out.counts.get("done", 0) >= 10 and max(loads.values()) <= 3, (out.counts, loads)
        assert out.complete
        assert_same_output(out, reference, atol_of_largest=1e-12)
    marker = str(tmp_path / "killed")
    with local_client(n_workers=2, memory_limit="2GiB") as client, \
            Runner(_analysis(sample, kill_marker=marker), sample, str(tmp_path / "kill"), client, chunk_size=400,
                   progress=False) as r:
        out = r.run()
    assert os.path.exists(marker) and out.complete
    assert_same_output(out, reference, atol_of_largest=1e-12)
    flag = tmp_path / "fail"
    flag.write_text("")
    run_dir = str(tmp_path / "resub")
    with Runner(_analysis(sample, fail_flag=str(flag)), sample, run_dir, serial=True, chunk_size=400,
                retries=0, progress=False) as r:
        first = r.run()
    assert not first.complete
    flag.unlink()
    with Runner(_analysis(sample, fail_flag=str(flag)), sample, run_dir, serial=True, chunk_size=400,
                retries=0, progress=False) as r:
        out = r.resubmit()
    assert out.complete
    assert_same_output(out, reference, atol_of_largest=1e-12)
