"""A full disk stops a run with one line naming the directory (exit 3), loses nothing, and never fails
a chunk: a real tmpfs of a few MB fills up while a real ``jetdask run`` goes (the ledger's disk, a
worker's arrays, the outputs); once space is back, the rerun computes only what is missing and
equals a clean run. The test mounts the filesystem (root): it fails under CI where it cannot."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from engine_helpers import assert_same_output
from jetdask.engine.outputs import load_output
from readfiles import read_text

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JETDASK = os.path.join(REPO, ".venv", "bin", "jetdask")
ANALYSIS = os.path.join(REPO, "tests", "engine_analyses.py") + ":DimuonJets"


@pytest.fixture
def small_fs(tmp_path):
    """A 16 MiB tmpfs, unmounted afterwards."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)], capture_output=True,
                       text=True, check=False)
    if r.returncode != 0:
        msg = f"cannot mount a small tmpfs (needs root): {r.stderr.strip()}"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, check=False)


def fill(mnt) -> str:
    """Write a ballast file until the filesystem has no byte left; its path."""
    path = os.path.join(mnt, "ballast")
    with open(path, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    while True:   # the last partial block too
        try:
            with open(path, "ab") as f:
                f.write(b"\0")
        except OSError:
            return path


def jetdask(*args, cwd, popen=False):
    cmd = ([JETDASK] if os.path.exists(JETDASK) else [sys.executable, "-m", "jetdask.cli"]) + list(args)
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if popen:
        return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)


def rows(run, sql):
    db = sqlite3.connect(f"file:{os.path.join(run, 'ledger.sqlite')}?mode=ro", uri=True)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def fill_when_done(proc, run, mnt, n: int) -> str:
    """Wait until ``n`` chunks of the run are done, then fill the filesystem."""
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline:
        try:
            if rows(run, "SELECT COUNT(*) FROM chunks WHERE state='done'")[0][0] >= n:
                break
        except sqlite3.Error:
            pass
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1][-3000:]
    return fill(mnt)


def stopped(proc) -> str:
    """The run's stderr; it ended with exit 3 and its last line is the one naming the full disk."""
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 3, err[-3000:]
    assert "Traceback" not in err and "merging" not in err, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("jetdask: no space left in "), err[-3000:]
    return last


@pytest.fixture(scope="module")
def clean(small_sample, tmp_path_factory):
    """The same analysis over the same sample, uninterrupted, on a disk with space."""
    run = str(tmp_path_factory.mktemp("clean") / "run")
    p = jetdask("run", ANALYSIS, "--fileset", small_sample, "--run-dir", run, "--chunk-size", "1000", "--serial",
                "--no-progress", "--kwargs", json.dumps({"save_arrays": True}), cwd=REPO)
    assert p.returncode == 0, p.stderr[-3000:]
    return run


def assert_rerun_completes(run, sample, clean, cwd, kwargs):
    done = dict(rows(run, "SELECT id, finished FROM chunks WHERE state='done'"))
    assert not rows(run, "SELECT id FROM chunks WHERE state='failed'")     # no chunk failed for the disk
    assert rows(run, "PRAGMA integrity_check") == [("ok",)]
    # the client could not always put its chunks in flight back (no space to write that either):
    # status shows none running all the same, and says what is left to do
    st = jetdask("status", run, cwd=cwd)
    assert st.returncode == 3 and ", running 0," in st.stdout and "not run yet" in st.stdout, st.stdout
    p = jetdask("run", ANALYSIS, "--fileset", sample, "--run-dir", run, "--serial", "--no-progress",
                "--kwargs", json.dumps(kwargs), cwd=cwd)
    assert p.returncode == 0, p.stderr[-3000:]
    after = dict(rows(run, "SELECT id, finished FROM chunks WHERE state='done'"))
    assert all(after[k] == v for k, v in done.items()), "a chunk done before the disk filled was computed again"
    assert len(after) > len(done)
    assert_same_output(load_output(run), load_output(clean))
    return load_output(run)


def test_ledger_disk_fills_mid_run(small_sample, clean, small_fs, tmp_path):
    """The run directory itself is on the small disk: SQLite finds it full storing a result."""
    sample = small_sample
    run = str(small_fs / "run")
    kwargs = {"sleep": 0.3, "save_arrays": False}
    proc = jetdask("run", ANALYSIS, "--fileset", sample, "--run-dir", run, "--chunk-size", "1000", "--workers", "2",
                   "--no-progress", "--kwargs", json.dumps(kwargs), cwd=tmp_path, popen=True)
    ballast = fill_when_done(proc, run, small_fs, 2)
    last = stopped(proc)
    assert f"no space left in {run}: the ledger could not be written: database or disk is full" in last, last
    os.remove(ballast)
    assert_rerun_completes(run, sample, clean, tmp_path, kwargs)


def test_worker_cannot_write_arrays(small_sample, clean, small_fs, tmp_path):
    """The arrays' directory is on the small disk (the ledger is not): the worker's parquet write
    fails, the run stops naming that directory, and the chunk is left to do, not failed."""
    sample = small_sample
    run = str(tmp_path / "run")
    os.makedirs(run)
    os.makedirs(small_fs / "arrays")
    os.symlink(small_fs / "arrays", os.path.join(run, "arrays"))
    kwargs = {"sleep": 0.3, "save_arrays": True}
    proc = jetdask("run", ANALYSIS, "--fileset", sample, "--run-dir", run, "--chunk-size", "1000", "--workers", "2",
                   "--no-progress", "--kwargs", json.dumps(kwargs), cwd=tmp_path, popen=True)
    ballast = fill_when_done(proc, run, small_fs, 2)
    last = stopped(proc)
    assert f"no space left in {os.path.join(run, 'arrays', 'dimuon')}" in last, last
    assert "the arrays 'dimuon' of chunk" in last and "No space left on device" in last, last
    assert not [f for _, _, fs in os.walk(small_fs / "arrays") for f in fs if ".tmp" in f]   # no partial file
    os.remove(ballast)
    out = assert_rerun_completes(run, sample, clean, tmp_path, kwargs)
    ref = load_output(clean)
    for ds in ref.hists:
        a, b = out.arrays("dimuon", ds), ref.arrays("dimuon", ds)
        np.testing.assert_array_equal(np.asarray(a.event), np.asarray(b.event))


def test_outputs_cannot_be_written(small_sample, clean, small_fs, tmp_path):
    """Every chunk is stored, then the merged output finds no space: exit 3 naming RUN/output, the
    old hists.json left whole; the next run only writes the output."""
    sample = small_sample
    run = str(tmp_path / "run")
    os.makedirs(run)
    os.symlink(small_fs, os.path.join(run, "output"))
    kwargs = {"save_arrays": True}
    args = ("run", ANALYSIS, "--fileset", sample, "--run-dir", run, "--chunk-size", "1000", "--serial",
            "--no-progress", "--kwargs", json.dumps(kwargs))
    assert jetdask(*args, cwd=tmp_path).returncode == 0
    before = read_text(os.path.join(run, "output", "hists.json"))
    ballast = fill(small_fs)
    p = jetdask(*args, cwd=tmp_path)
    assert p.returncode == 3, p.stderr[-3000:]
    assert p.stderr.strip().splitlines()[-1].startswith(f"jetdask: no space left in {os.path.join(run, 'output')}")
    assert read_text(os.path.join(run, "output", "hists.json")) == before
    assert not [f for f in os.listdir(small_fs) if f.endswith(".tmp")]
    os.remove(ballast)
    p = jetdask(*args, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    assert_same_output(load_output(run), load_output(clean))
