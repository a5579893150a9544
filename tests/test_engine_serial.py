"""Engine behaviour that needs no cluster: the chunk task, ledger, splitting, failure reports, CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import uproot

from conftest import REPO
from engine_analyses import DimuonJets
from engine_helpers import assert_same_output, copy_sample, serial_output
from jetdask.engine.runner import Runner
from jetdask.engine.status import run_status
from jetdask.fileset import load_fileset
from readfiles import read_bytes, read_json

HERE = os.path.dirname(__file__)


@pytest.fixture(scope="module")
def clean(small_sample, tmp_path_factory):
    out = serial_output(small_sample, tmp_path_factory.mktemp("clean"), 1000)
    assert out.complete
    return out


def test_clean_run_counts_every_event(clean, small_sample):
    fs = load_fileset(small_sample)
    for ds in fs:
        n = sum(uproot.open(f.path)["Events"].num_entries for f in ds.files)
        assert clean.counters[ds.name]["events"] == n
        assert clean.completeness[ds.name]["events_processed"] == n
        assert clean.completeness[ds.name]["complete"]
    mc = [d for d in fs if not d.is_data][0].name
    assert clean.completeness[mc]["sumw_processed"] == pytest.approx(
        sum(uproot.open(f.path)["Events"]["genWeight"].array(library="np").sum() for f in fs[mc].files))
    # arrays were written by the task, one parquet per chunk, and read back
    arr = clean.arrays("dimuon", mc)
    assert len(arr) == clean.counters[mc]["selected"] > 0


def test_memory_error_splits_and_output_equals_clean(clean, small_sample, tmp_path):
    r = Runner(DimuonJets(memory_error_above=300), small_sample, str(tmp_path / "run"), serial=True,
               chunk_size=1000, split_floor=100, progress=False)
    out = r.run()
    assert out.complete and r.stats["split"] > 0
    assert_same_output(out, clean)


def test_split_floor_fails_only_that_chunk(small_sample, tmp_path):
    r = Runner(DimuonJets(memory_error_above=300), small_sample, str(tmp_path / "run"), serial=True,
               chunk_size=1000, split_floor=600, progress=False)
    out = r.run()
    assert not out.complete
    assert all(f["kind"] == "memory" and "split floor" in f["message"] for f in out.failed)
    assert out.counts.get("done", 0) == 0 or all(f["entry_stop"] - f["entry_start"] <= 600 for f in out.failed)


def test_failing_event_is_named(small_sample, tmp_path):
    fs = load_fileset(small_sample)
    f0 = fs[sorted(fs.datasets)[0]].files[0].path
    ids = uproot.open(f0)["Events"].arrays(["run", "luminosityBlock", "event"], entry_start=1234, entry_stop=1235)
    target = (int(ids.run[0]), int(ids.luminosityBlock[0]), int(ids.event[0]))
    r = Runner(DimuonJets(fail_event=target), small_sample, str(tmp_path / "run"), serial=True,
               chunk_size=1000, progress=False)
    out = r.run()
    assert len(out.failed) == 1
    f = out.failed[0]
    assert f["entry_start"] == 1000 and f["error_type"] == "ValueError"
    assert f["bad_range"] == [1234, 1235]
    assert [tuple(e) for e in f["events"]] == [target]
    st = run_status(str(tmp_path / "run"))
    assert not st["complete"] and st["failed_chunks"][0]["events"] == [list(target)]


def test_missing_branch_is_a_clear_failure(small_sample, tmp_path):
    class Bad(DimuonJets):
        columns = ["Jet_ptt"]
    out = Runner(Bad(), small_sample, str(tmp_path / "run"), serial=True, chunk_size=3000, progress=False).run()
    assert out.failed and all(f["error_type"] == "MissingColumnError" and "Jet_pt" in f["message"]
                              for f in out.failed)


def _cli(*args):
    env = dict(os.environ, PYTHONPATH=HERE + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "jetdask.cli", *args], capture_output=True, text=True, env=env,
                          timeout=600)


def test_bad_files_then_resubmit_after_repair(clean, small_sample, tmp_path):
    """Truncated, corrupted and missing files fail alone (exit 3); after repair resubmit completes the run."""
    fs_path = copy_sample(small_sample, tmp_path / "data")
    fs = read_json(fs_path)
    mc = [d for d in fs if not fs[d]["metadata"].get("is_data")][0]
    data = [d for d in fs if fs[d]["metadata"].get("is_data")][0]
    truncated, corrupted = list(fs[mc]["files"])
    missing = list(fs[data]["files"])[0]
    backup = {p: read_bytes(p) for p in (truncated, corrupted, missing)}
    Path(truncated).write_bytes(backup[truncated][: len(backup[truncated]) // 2])
    raw = bytearray(backup[corrupted])
    a, b = len(raw) // 10, len(raw) * 6 // 10   # baskets only: the tree metadata is at the end
    raw[a:b] = bytes(b - a)
    Path(corrupted).write_bytes(bytes(raw))
    os.remove(missing)

    run = str(tmp_path / "run")
    spec = os.path.join(HERE, "engine_analyses.py") + ":DimuonJets"
    p = _cli("run", spec, "--fileset", fs_path, "--run-dir", run, "--chunk-size", "1000", "--serial", "--no-progress")
    assert p.returncode == 3, p.stderr
    st = run_status(run)
    reasons = {f["path"]: f["reason"] for f in st["unreadable_files"]}
    assert missing in reasons and "no such file" in reasons[missing]
    bad_chunks = st["failed_chunks"]
    # the truncated file fails at planning or in its chunks; the corrupted one in some chunks
    assert {c["path"] for c in bad_chunks} | set(reasons) == {corrupted, truncated, missing}
    assert all(c["kind"] == "error" and c["error_type"] == "FileAccessError" and c["path"] in c["message"]
               for c in bad_chunks)
    assert st["chunks"]["done"] > 0
    assert "resubmit" in p.stderr and p.stdout == ""     # an incomplete run reports on stderr

    for path, content in backup.items():
        Path(path).write_bytes(content)
    p = _cli("resubmit", run, "--serial", "--no-progress")
    assert p.returncode == 0, p.stdout + p.stderr
    from jetdask.engine.outputs import load_output
    assert_same_output(load_output(run), clean)
    s = _cli("status", run, "--json")
    assert s.returncode == 0 and json.loads(s.stdout)["complete"]


def test_cli_usage_errors_exit_2(tmp_path):
    p = _cli("run", "nope.py:X", "--fileset", str(tmp_path / "none.json"), "--run-dir", str(tmp_path / "r"))
    assert p.returncode == 2 and "jetdask: error:" in p.stderr and "Traceback" not in p.stderr
    p = _cli("status", str(tmp_path))
    assert p.returncode == 2 and "not a jetdask run directory" in p.stderr


def test_cli_kwargs_reach_the_analysis_and_are_recorded(tmp_path, nano_dimuon_path):
    """``--kwargs`` builds the analysis; the ledger keeps them, so resubmit rebuilds the same analysis."""
    from jetdask.engine.outputs import load_output
    (tmp_path / "golden.json").write_text('{"1": [[1, 1]]}')  # a run the file does not have: nothing passes
    fs = tmp_path / "fs.json"
    fs.write_text(json.dumps({"Data": {"files": [nano_dimuon_path], "metadata": {"is_data": True}}}))
    spec = f"{REPO}/analyses/dy_jets.py:DYJets"
    bad = _cli("run", spec, "--fileset", str(fs), "--run-dir", str(tmp_path / "r"), "--kwargs", "{not json")
    assert bad.returncode == 2 and "--kwargs" in bad.stderr and "Traceback" not in bad.stderr
    kw = json.dumps({"lumi_mask": str(tmp_path / "golden.json")})
    p = _cli("run", spec, "--fileset", str(fs), "--run-dir", str(tmp_path / "r"), "--serial", "--kwargs", kw)
    assert p.returncode == 0, p.stderr
    out = load_output(str(tmp_path / "r"))
    cut = out.hists["Data"]["cutflow"]
    assert cut[{"step": "all", "channel": "all"}] == 40 and cut[{"step": "lumi", "channel": "all"}] == 0
    p = _cli("resubmit", str(tmp_path / "r"), "--serial")
    assert p.returncode == 0, p.stderr
    from jetdask.engine.ledger import Ledger
    led = Ledger(str(tmp_path / "r" / "ledger.sqlite"))
    assert led.get_meta("analysis_kwargs") == {"lumi_mask": str(tmp_path / "golden.json")}
    led.close()
