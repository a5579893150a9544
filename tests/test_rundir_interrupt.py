"""Ctrl-C: SIGINT to the process group of a real ``jetdask run`` (client, LocalCluster workers) ends
it with the one friendly line, no worker left behind, and ``jetdask status`` shows no chunk running."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import psutil
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JETDASK = os.path.join(REPO, ".venv", "bin", "jetdask")
FRIENDLY = "jetdask: interrupted; the run directory keeps what finished; run again to resume"

SLOW = '''
import time

import awkward as ak
import hist
from jetdask import Analysis, Result


class Slow(Analysis):
    columns = ["Muon_pt"]

    def process(self, events, chunk):
        time.sleep(0.5)
        h = hist.Hist.new.Reg(10, 0, 200, name="pt").Double()
        h.fill(pt=ak.to_numpy(ak.flatten(events.Muon.pt)))
        return Result(hists={"pt": h})
'''


def _cmd(*args):
    return ([JETDASK] if os.path.exists(JETDASK) else [sys.executable, "-m", "jetdask.cli"]) + list(args)


def _env():
    return dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _start(tmp_path, sample, run):
    (tmp_path / "slow.py").write_text(SLOW)
    # its own process group, as a terminal's foreground job: Ctrl-C reaches the client and every worker
    return subprocess.Popen(_cmd("run", "slow.py:Slow", "--fileset", sample, "--run-dir", run, "--workers", "2",
                                 "--chunk-size", "500", "--no-progress"), cwd=tmp_path, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _done(run) -> int:
    try:
        db = sqlite3.connect(f"file:{os.path.join(run, 'ledger.sqlite')}?mode=ro", uri=True)
        try:
            return db.execute("SELECT COUNT(*) FROM chunks WHERE state='done'").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def _interrupt(proc, when, may_end_first: bool = False) -> tuple[str, list]:
    """Wait for ``when()``, SIGINT the group, return stderr and the processes of the group then
    (``may_end_first``: the process may have ended by itself before the signal)."""
    deadline = time.time() + 240
    while not when() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    if not may_end_first:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
    group = [proc.pid]
    try:
        group += [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        os.killpg(proc.pid, signal.SIGINT)
    except (psutil.NoSuchProcess, ProcessLookupError):
        assert may_end_first
    try:
        _, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return err, group


def _gone(pids, timeout=30.0) -> list:
    deadline = time.time() + timeout
    alive = list(pids)
    while alive and time.time() < deadline:
        alive = [p for p in alive if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        time.sleep(0.2)
    return alive


def test_ctrl_c_while_chunks_run(small_sample, tmp_path):
    run = str(tmp_path / "run")
    proc = _start(tmp_path, small_sample, run)
    err, group = _interrupt(proc, lambda: _done(run) >= 2)
    assert proc.returncode == 130, err[-3000:]
    assert err.strip().splitlines() == [FRIENDLY], err          # no dask warning, traceback or "merging"
    assert len(group) >= 3 and not _gone(group)                  # client and workers, all gone
    st = subprocess.run(_cmd("status", run), cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120)
    assert st.returncode == 3 and ", running 0," in st.stdout, st.stdout
    assert "not run yet" in st.stdout.split("not complete:")[1]
    db = sqlite3.connect(os.path.join(run, "ledger.sqlite"))
    try:   # the client itself put the chunks in flight back (status does not have to)
        assert db.execute("SELECT COUNT(*) FROM chunks WHERE state='running'").fetchone()[0] == 0
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.close()


def test_ctrl_c_while_the_cluster_starts(small_sample, tmp_path):
    """SIGINT as soon as the first child process exists (the cluster's start): still one line."""
    run = str(tmp_path / "run")
    proc = _start(tmp_path, small_sample, run)

    def started():
        try:
            return bool(psutil.Process(proc.pid).children(recursive=True))
        except psutil.NoSuchProcess:
            return False
    err, group = _interrupt(proc, started)
    assert proc.returncode == 130, err[-3000:]
    assert err.strip().splitlines() == [FRIENDLY], err
    assert not _gone(group)


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.5, 1.0, 2.0, 3.0, 4.0, 6.0])
def test_ctrl_c_at_any_moment_of_the_start(small_sample, tmp_path, delay):
    """SIGINT at fixed delays after the first child appeared (imports, cluster, planning, first chunks)."""
    run = str(tmp_path / "run")
    proc = _start(tmp_path, small_sample, run)
    t = []

    def later():
        try:
            if not t and psutil.Process(proc.pid).children(recursive=True):
                t.append(time.time())
        except psutil.NoSuchProcess:
            return False
        return bool(t) and time.time() - t[0] >= delay
    err, group = _interrupt(proc, later)
    assert proc.returncode == 130, err[-3000:]
    assert err.strip().splitlines() == [FRIENDLY], err
    assert not _gone(group)


def _total(run) -> int:
    try:
        db = sqlite3.connect(f"file:{os.path.join(run, 'ledger.sqlite')}?mode=ro", uri=True)
        try:
            return db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return -1


@pytest.mark.slow
@pytest.mark.parametrize("after", [0.0, 0.3, 0.8, 1.5])
def test_ctrl_c_as_the_run_ends(small_sample, tmp_path, after):
    """SIGINT once every chunk is done (the run closing its cluster, writing its outputs, exiting):
    exit 0 (done) or 130 with the one line, never a traceback or a death by the signal; the run
    directory is complete either way."""
    run = str(tmp_path / "run")
    proc = _start(tmp_path, small_sample, run)
    t = []

    def ended():
        n = _total(run)
        if not t and n > 0 and _done(run) == n:
            t.append(time.time())
        return bool(t) and time.time() - t[0] >= after
    err, group = _interrupt(proc, ended, may_end_first=True)
    assert proc.returncode in (0, 130), (proc.returncode, err[-3000:])
    assert "Traceback" not in err, err[-3000:]
    if proc.returncode == 130:
        assert err.strip().splitlines()[-1] == FRIENDLY, err
    assert not _gone(group)
    st = subprocess.run(_cmd("status", run), capture_output=True, text=True, env=_env())
    assert st.returncode == 0, st.stdout + st.stderr

