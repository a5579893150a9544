"""A data set listing one file twice (a symlink, a copy: the same UUID under two paths) is read once,
reported with both paths, and completes; ``jetdask status`` says why any run is not complete."""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys

import pytest

from engine_helpers import assert_same_output
from jetdask.chunk import Chunk
from jetdask.engine.outputs import load_output
from jetdask.engine.planning import split_duplicates
from jetdask.engine.status import incomplete_reasons
from jetdask.fileset import load_fileset, parse_fileset
from readfiles import read_json

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JETDASK = os.path.join(REPO, ".venv", "bin", "jetdask")
DIMUON = os.path.join(REPO, "analyses", "dimuon.py") + ":Dimuon"


def jetdask(*args, cwd):
    cmd = [JETDASK] if os.path.exists(JETDASK) else [sys.executable, "-m", "jetdask.cli"]
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(cmd + list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _info(ds, path, uuid, tree="Events"):
    return {"dataset": ds, "path": path, "uuid": uuid, "tree": tree, "num_entries": 10}


def _chunk(ds, path, uuid):
    return Chunk(ds, path, "Events", 0, 10, uuid)


@pytest.mark.parametrize("files, known, kept, dups", [
    ([_info("A", "a", "u1"), _info("A", "b", "u2")], {}, ["a", "b"], []),
    ([_info("A", "a", "u1"), _info("A", "link", "u1")], {}, ["a"], [("link", "a")]),
    ([_info("A", "copy", "u1")], {("A", "u1", "Events"): "a"}, [], [("copy", "a")]),   # planned in an earlier run
    ([_info("A", "a", "u1"), _info("B", "a2", "u1")], {}, ["a", "a2"], []),          # another data set: its own
    ([_info("A", "a", "u1"), _info("A", "a", "u1", tree="Runs")], {}, ["a", "a"], []),   # another tree
])
def test_split_duplicates(files, known, kept, dups):
    chunks = [_chunk(f["dataset"], f["path"], f["uuid"]) for f in files]
    k, d, c = split_duplicates(files, chunks, dict(known))
    assert [f["path"] for f in k] == kept
    assert [(x["path"], x["same_as"]) for x in d] == dups
    assert sorted(x.path for x in c) == sorted(kept)


def test_a_path_listed_twice_is_one_file():
    fs = parse_fileset({"A": ["x.root", "x.root", ["x.root", "root://b//x.root"], {"path": "x.root", "tree": "Runs"}]})
    assert [(f.path, f.tree, f.replicas) for f in fs["A"].files] == [
        ("x.root", "Events", ("root://b//x.root",)), ("x.root", "Runs", ())]


def _st(**kw):
    st = {"complete": False, "planned": True, "chunks": {}, "failed_chunks": [], "unreadable_files": [],
          "datasets": {"A": {"complete": True, "events_processed": 10, "events_planned": 10}}, "interrupted": 0,
          "running_by": None, "unresolved_duplicates": []}
    st.update(kw)
    return st


@pytest.mark.parametrize("st, needles", [
    (_st(complete=True), []),
    (_st(planned=False, datasets={"A": {"complete": False, "events_processed": 0, "events_planned": 10,
                                        "files_planned": 1}}), ["planning did not finish (1 file(s)"]),
    (_st(chunks={"pending": 3}, interrupted=2), ["3 chunk(s) not run yet, 2 of them in flight"]),
    (_st(chunks={"running": 3}, running_by={"pid": 7, "host": "h"}), ["in progress (process 7 on host h)"]),
    (_st(failed_chunks=[{}]), ["1 chunk(s) failed"]),
    (_st(unreadable_files=[{}, {}]), ["2 file(s) could not be read"]),
    (_st(unresolved_duplicates=[{"dataset": "A", "uuid": "u", "paths": ["a", "b"]}],
         datasets={"A": {"complete": False, "events_processed": 10, "events_planned": 20}}),
     ["A: a and b are the same file (UUID u)"]),
    (_st(datasets={"A": {"complete": False, "events_processed": 5, "events_planned": 10}}),
     ["A: 5 of 10 events done with no chunk left"]),
])
def test_every_incomplete_run_says_why(st, needles):
    reasons = incomplete_reasons(st)
    assert bool(reasons) == bool(needles)
    for n in needles:
        assert any(n in r for r in reasons), (n, reasons)


def _fileset_with(sample: str, dest, how) -> tuple[str, str, str]:
    """``sample``'s fileset with its first MC file listed a second time, as a symlink or a copy."""
    fs = load_fileset(sample)
    mc = next(d for d in fs if not d.is_data)
    first = mc.files[0].path
    second = str(dest / ("link.root" if how == "symlink" else "copy.root"))
    os.symlink(first, second) if how == "symlink" else shutil.copy(first, second)
    raw = fs.to_dict()
    raw[mc.name]["files"][second] = "Events"
    path = str(dest / "fileset.json")
    with open(path, "w") as f:
        json.dump(raw, f)
    return path, first, second


@pytest.fixture(scope="module")
def clean(small_sample, tmp_path_factory):
    """The quick start's analysis over the sample as it is (each file once)."""
    run = str(tmp_path_factory.mktemp("clean") / "run")
    assert jetdask("run", DIMUON, "--fileset", small_sample, "--run-dir", run, "--serial", "--no-progress",
                   cwd=REPO).returncode == 0
    return run


@pytest.mark.parametrize("how, cluster", [("symlink", ["--serial"]), ("copy", ["--workers", "2"])])
def test_duplicate_file_is_read_once_and_reported(small_sample, clean, tmp_path, how, cluster):
    fileset, first, second = _fileset_with(small_sample, tmp_path, how)
    run = str(tmp_path / "run")
    p = jetdask("run", DIMUON, "--fileset", fileset, "--run-dir", run, *cluster, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    said = [ln for ln in p.stderr.splitlines() if "the same file as" in ln]
    assert len(said) == 1 and first in said[0] and second in said[0], p.stderr
    assert_same_output(load_output(run), load_output(clean))      # read once: no event twice, none missing
    s = jetdask("status", run, cwd=tmp_path)
    assert s.returncode == 0 and "files listed twice (read once):" in s.stdout and second in s.stdout
    meta = read_json(os.path.join(run, "output", "metadata.json"))
    assert [d["path"] for d in meta["duplicate_files"]] in ([second], [first])   # whichever was planned first
    n_files = {d.name: len(d.files) for d in load_fileset(small_sample)}
    assert {ds: (d["files_planned"], d["files_duplicate"]) for ds, d in meta["completeness"].items()} == {
        ds: (n, int(ds == meta["duplicate_files"][0]["dataset"])) for ds, n in n_files.items()}


def test_directory_of_an_older_jetdask_is_explained_then_completed(small_sample, tmp_path):
    """What an older jetdask left (both paths planned, one set of chunks): status says why it cannot
    complete, naming both paths (exit 3); resubmit reads the file once and completes."""
    fileset, first, second = _fileset_with(small_sample, tmp_path, "symlink")
    run = str(tmp_path / "run")
    assert jetdask("run", DIMUON, "--fileset", fileset, "--run-dir", run, "--serial", "--no-progress",
                   cwd=tmp_path).returncode == 0
    db = sqlite3.connect(os.path.join(run, "ledger.sqlite"))
    with db:   # as the older planning left it: the duplicate planned like any file, its chunks ignored
        db.execute("UPDATE files SET state='ok', reason=NULL WHERE state='duplicate'")
        db.execute("UPDATE files SET replicas='[]'")
    db.close()
    s = jetdask("status", run, cwd=tmp_path)
    assert s.returncode == 3
    why = s.stdout.split("not complete:")[1]
    assert "are the same file" in why and first in why and second in why, s.stdout
    p = jetdask("resubmit", run, "--serial", "--no-progress", cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert jetdask("status", run, cwd=tmp_path).returncode == 0
