"""One run per directory: the run lock, concurrent CLI runs, readers while a run goes, the journal."""
from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from engine_analyses import DimuonJets
from engine_helpers import assert_same_output, serial_output
from jetdask.engine.lock import RunLock, filesystem_type, wal_is_safe
from jetdask.engine.outputs import load_output
from jetdask.engine.runner import Runner
from jetdask.engine.status import run_status
from jetdask.errors import RunLockedError
from readfiles import read_json

HERE = os.path.dirname(__file__)
ENV = dict(os.environ, PYTHONPATH=HERE + os.pathsep + os.environ.get("PYTHONPATH", ""))
SPEC = os.path.join(HERE, "engine_analyses.py") + ":DimuonJets"


def _cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "jetdask.cli", *args], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


@pytest.fixture(scope="module")
def clean(small_sample, tmp_path_factory):
    return serial_output(small_sample, tmp_path_factory.mktemp("clean"), 1000)


def test_second_lock_is_refused_with_the_holder_named(tmp_path):
    first = RunLock(str(tmp_path)).acquire()
    with pytest.raises(RunLockedError) as err:
        RunLock(str(tmp_path)).acquire()
    text = str(err.value)
    assert f"process {os.getpid()} on host {socket.gethostname()}" in text and "\n" not in text
    first.acquire()   # the holder may nest
    first.release()
    assert first.held
    first.release()
    assert not first.held
    with RunLock(str(tmp_path)) as again:
        assert again.held


def test_lock_dies_with_its_process(tmp_path):
    code = ("import sys, time; from jetdask.engine.lock import RunLock; RunLock(sys.argv[1]).acquire(); "
            "print('held', flush=True); time.sleep(120)")
    p = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert p.stdout.readline().strip() == "held"
        with pytest.raises(RunLockedError, match=f"process {p.pid} "):
            RunLock(str(tmp_path)).acquire()
    finally:
        p.kill()
        p.wait()
    with RunLock(str(tmp_path)):   # SIGKILL released it: no stale lock
        pass


@pytest.mark.parametrize("mounts, path, kind, wal", [
    ("/dev/vda / ext4 rw 0 0", "/work/run", "ext4", True),
    ("/dev/vda / ext4 rw 0 0\nsrv:/export /work nfs4 rw 0 0", "/work/run", "nfs4", False),
    ("/dev/vda / ext4 rw 0 0\neosxd /eos fuse.eosxd rw 0 0", "/eos/user/j/run", "fuse.eosxd", False),
    ("/dev/vda / ext4 rw 0 0\nceph /cephfs ceph rw 0 0\ntmpfs /tmp tmpfs rw 0 0", "/tmp/run", "tmpfs", True),
    ("/dev/vda / xfs rw 0 0\nsrv:/a\\040b /data/a\\040b nfs rw 0 0", "/data/a b/run", "nfs", False),
    ("/dev/vda / ext4 rw 0 0\nsrv:/x /data/ab nfs rw 0 0", "/data/abc/run", "ext4", True),
    ("", "/anything", None, False),
])
def test_wal_only_on_local_filesystems(mounts, path, kind, wal):
    assert filesystem_type(path, mounts) == kind
    assert wal_is_safe(path, mounts) is wal


def test_journal_is_wal_while_running_here_and_delete_after(small_sample, tmp_path):
    run = str(tmp_path / "run")
    with Runner(DimuonJets(save_arrays=False), small_sample, run, serial=True, chunk_size=3000,
                progress=False) as r:
        with r._lock_run():
            during = r.ledger.db.execute("PRAGMA journal_mode").fetchone()[0]
        after = r.ledger.db.execute("PRAGMA journal_mode").fetchone()[0]
    assert during == ("wal" if wal_is_safe(run) else "delete") and after == "delete"
    import dask
    with dask.config.set({"jetdask.ledger-journal": "delete"}):
        with Runner(DimuonJets(save_arrays=False), small_sample, run, serial=True, progress=False) as r, \
                r._lock_run():
            assert r.ledger.db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_status_reads_a_finished_run_without_touching_it(clean):
    run = clean.run_dir
    before = {f: os.stat(os.path.join(run, f)).st_mtime_ns for f in os.listdir(run)}
    st = run_status(run)
    assert st["complete"] and st["running_by"] is None
    assert {f: os.stat(os.path.join(run, f)).st_mtime_ns for f in os.listdir(run)} == before


@pytest.mark.slow
@pytest.mark.parametrize("attempt", range(3))
def test_two_concurrent_runs_second_exits_2(clean, small_sample, tmp_path, attempt):
    """Two `jetdask run` on one directory, started together: one runs, the other exits 2 naming it."""
    run = str(tmp_path / "run")
    args = ("run", SPEC, "--fileset", small_sample, "--run-dir", run, "--chunk-size", "1000", "--serial",
            "--no-progress", "--kwargs", json.dumps({"sleep": 2.0}))
    a, b = _cli(*args), _cli(*args)
    procs = {a.pid: a, b.pid: b}
    # while the winner runs: status reads it, a resubmit is refused too
    lock = os.path.join(run, "run.lock")
    deadline = time.time() + 120
    holder = {}
    while time.time() < deadline and not holder:
        time.sleep(0.1)
        try:
            holder = read_json(lock)
        except (OSError, ValueError):
            pass
    st = _cli("status", run, "--json")
    res = _cli("resubmit", run, "--serial")
    st_out, st_err = st.communicate(timeout=120)
    res_out, res_err = res.communicate(timeout=120)
    outs = {pid: p.communicate(timeout=600) for pid, p in procs.items()}
    rcs = {pid: p.returncode for pid, p in procs.items()}
    assert sorted(rcs.values()) == [0, 2], (rcs, outs)
    winner = next(pid for pid, rc in rcs.items() if rc == 0)
    loser = next(pid for pid, rc in rcs.items() if rc == 2)
    assert holder["pid"] == winner and holder["host"] == socket.gethostname()
    err = outs[loser][1].strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert f"process {winner} on host {socket.gethostname()}" in err
    assert json.loads(st_out)["running_by"]["pid"] == winner
    assert st.returncode == 3, st_err   # incomplete while it runs
    assert res.returncode == 2 and f"process {winner} " in res_err and len(res_err.strip().splitlines()) == 1
    # the winner's output is whole and equals a clean run bit for bit; no chunk ran twice
    out = load_output(run)
    assert_same_output(out, clean)
    for ds in clean.hists:
        for k, h in clean.hists[ds].items():
            assert np.array_equal(out.hists[ds][k].view(flow=True), h.view(flow=True))
    con = sqlite3.connect(f"file:{run}/ledger.sqlite?mode=ro", uri=True)
    assert con.execute("SELECT MAX(attempts), COUNT(*) FROM chunks WHERE state='done'").fetchone() == (1, 12)
    con.close()


def test_submit_holds_the_lock_until_the_run_ends(small_sample, tmp_path):
    run = str(tmp_path / "run")
    r = Runner(DimuonJets(sleep=0.5, save_arrays=False), small_sample, run, serial=True, chunk_size=3000,
               progress=False)
    handle = r.submit()
    other = Runner(DimuonJets(sleep=0.5, save_arrays=False), small_sample, run, serial=True, chunk_size=3000,
                   progress=False)
    with pytest.raises(RunLockedError, match=f"process {os.getpid()} "):
        other.run()
    out = handle.result(timeout=300)
    assert out.complete and not r._run_lock.held
    assert other.run().complete   # free again: nothing left to run
    other.close()
    r.close()
