"""The public API behaves as the dask and Python conventions it resembles (issue: API traps)."""
from __future__ import annotations

import importlib.metadata

import pytest
import uproot

import jetdask
from engine_analyses import DimuonJets
from jetdask import Analysis, Runner, load_fileset, load_output


def test_version_is_written_once_and_matches_the_installed_metadata():
    assert jetdask.__version__ == importlib.metadata.version("jetdask")


def test_lazy_names_are_listed_by_dir():
    names = dir(jetdask)
    for name in jetdask.__all__:
        assert name in names
        assert getattr(jetdask, name) is not None


def test_analysis_resources_are_not_a_shared_mutable_default():
    class A(Analysis):
        pass

    with pytest.raises(TypeError):
        A().resources["GPU"] = 1          # would have changed every analysis's resources
    assert dict(Analysis.resources) == {}

    class OnGPU(Analysis):
        resources = {"GPU": 1}

    assert OnGPU.resources == {"GPU": 1} and dict(A.resources) == {}


def test_run_handle_done_is_a_method_like_a_dask_future(small_sample, tmp_path):
    r = Runner(DimuonJets(sleep=0.3, save_arrays=False), small_sample, str(tmp_path / "run"), serial=True,
               chunk_size=3000, progress=False)
    handle = r.submit()
    assert callable(handle.done) and handle.done() is False
    handle.result(timeout=300)
    assert handle.done() is True
    r.close()


def test_load_output_returns_the_failures_of_the_run(small_sample, tmp_path):
    fs = load_fileset(small_sample)
    f0 = fs[sorted(fs.datasets)[0]].files[0].path
    ids = uproot.open(f0)["Events"].arrays(["run", "luminosityBlock", "event"], entry_start=1500, entry_stop=1501)
    target = (int(ids.run[0]), int(ids.luminosityBlock[0]), int(ids.event[0]))
    run = str(tmp_path / "run")
    r = Runner(DimuonJets(fail_event=target, save_arrays=False), small_sample, run, serial=True,
               chunk_size=1000, progress=False)
    out = r.run()
    r.close()
    loaded = load_output(run)
    assert len(out.failed) == 1 and not loaded.complete
    assert [(f["id"], f["error_type"], f["bad_range"]) for f in loaded.failed] == \
        [(f["id"], f["error_type"], f["bad_range"]) for f in out.failed]
    assert [tuple(e) for e in loaded.failed[0]["events"]] == [target]
