"""Engine-owned counters (``events``, ``sumw``) never mix with an analysis' own: the quick start's
metadata.json counts each event once, and an analysis returning a reserved name stops the run
with one line (exit 2), its chunks left to do."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import numpy as np
import uproot

from jetdask.engine.task import ENGINE_COUNTERS
from jetdask.fileset import load_fileset
from readfiles import read_json

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JETDASK = os.path.join(REPO, ".venv", "bin", "jetdask")

CLASHING = '''
import hist
from jetdask import Analysis, Result


class Counting(Analysis):
    columns = ["Muon_pt"]

    def process(self, events, chunk):
        h = hist.Hist.new.Reg(10, 0, 100, name="pt").Double()
        return Result(hists={"pt": h}, counters={NAME: len(events)})
'''


def jetdask(*args, cwd):
    cmd = [JETDASK] if os.path.exists(JETDASK) else [sys.executable, "-m", "jetdask.cli"]
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(cmd + list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_quick_start_counts_each_event_once(small_sample, tmp_path):
    run = str(tmp_path / "run")
    p = jetdask("run", os.path.join(REPO, "analyses", "dimuon.py") + ":Dimuon", "--fileset", small_sample,
                "--run-dir", run, "--serial", "--no-progress", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    meta = read_json(os.path.join(run, "output", "metadata.json"))
    for ds in load_fileset(small_sample):
        n, sumw = 0, 0.0
        for f in ds.files:                       # read from the files themselves, not from the run
            with uproot.open(f.path) as rf:
                t = rf[f.tree]
                n += t.num_entries
                if "genWeight" in t.keys():
                    sumw += float(np.sum(t["genWeight"].array(library="np"), dtype=np.float64))
        c = meta["counters"][ds.name]
        assert c["events"] == n == meta["completeness"][ds.name]["events_planned"], (ds.name, c)
        assert 0 < c["selected"] < n
        if ds.is_data:
            assert "sumw" not in c
        else:
            assert np.isclose(c["sumw"], sumw, rtol=1e-12) and sumw != n


def test_reserved_counter_stops_the_run_with_one_line(small_sample, tmp_path):
    """On a real LocalCluster: the first result with ``events`` stops the run (exit 2, one line naming
    the counter), no chunk is marked failed and none is left running; renamed, the run completes."""
    (tmp_path / "counting.py").write_text(CLASHING.replace("NAME", '"events"'))
    run = str(tmp_path / "run")
    args = ["run", "counting.py:Counting", "--fileset", small_sample, "--run-dir", run, "--workers", "1",
            "--no-progress"]
    p = jetdask(*args, cwd=tmp_path)
    assert p.returncode == 2, p.stderr[-3000:]
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("jetdask: error: analysis: Counting returned the counter(s) 'events'"), p.stderr
    assert "Traceback" not in p.stderr and "merging" not in p.stderr
    assert all(k in last for k in ENGINE_COUNTERS)
    db = sqlite3.connect(os.path.join(run, "ledger.sqlite"))
    states = dict(db.execute("SELECT state, COUNT(*) FROM chunks GROUP BY state").fetchall())
    db.close()
    assert states.get("failed", 0) == 0 and states.get("running", 0) == 0 and states.get("pending", 0) > 0, states

    (tmp_path / "counting.py").write_text(CLASHING.replace("NAME", '"read"'))   # no chunk done: taken as is
    p = jetdask(*args, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    meta = read_json(os.path.join(run, "output", "metadata.json"))
    for ds, c in meta["counters"].items():
        assert c["read"] == c["events"] == meta["completeness"][ds]["events_planned"]
