"""XRootD outages on a private real server (stopped and started again mid-run).

Each test has a server of its own (own port and directory), so stopping it disturbs no
other test. The runs go through the command line on a LocalCluster, as a user's would.
"""
from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time

import dask
import pytest

from conftest import REPO
from engine_analyses import DimuonJets
from engine_helpers import assert_same_output, ledger_rows
from jetdask.engine.outputs import load_output
from jetdask.engine.runner import Runner
from jetdask.errors import TransientFileError
from jetdask.fileset import load_fileset
from jetdask.nanoaod import io
from xrootd_server import PrivateServer

pytestmark = [pytest.mark.xrootd]
SPEC = f"{REPO}/tests/engine_analyses.py:DimuonJets"


@pytest.fixture
def server():
    s = PrivateServer()
    s.start()
    yield s
    s.remove()


@pytest.fixture(scope="module")
def reference(small_sample, tmp_path_factory):
    run = tmp_path_factory.mktemp("local")
    with Runner(DimuonJets(save_arrays=False), small_sample, str(run), serial=True, chunk_size=500,
                progress=False) as r:
        return r.run()


def _publish(server, fileset_path, out_path) -> str:
    fs = load_fileset(fileset_path).to_dict()
    for ds in fs.values():
        ds["files"] = {server.publish(p, f"outage/{os.path.basename(p)}"): t for p, t in ds["files"].items()}
    with open(out_path, "w") as f:
        json.dump(fs, f)
    return str(out_path)


def _env(**config) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for key, value in config.items():
        env[f"DASK_JETDASK__{key.upper()}"] = str(value)
    return env


def _start_run(fileset, run_dir, env, *extra):
    return subprocess.Popen([sys.executable, "-m", "jetdask.cli", "run", SPEC, "--fileset", fileset,
                             "--run-dir", str(run_dir), "--chunk-size", "500", "--workers", "2", "--no-progress",
                             "--kwargs", json.dumps({"sleep": 0.5, "save_arrays": False}), *extra],
                            env=env, cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _done_chunks(run_dir) -> int:
    path = os.path.join(run_dir, "ledger.sqlite")
    if not os.path.exists(path):
        return 0
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return db.execute("SELECT COUNT(*) FROM chunks WHERE state='done'").fetchone()[0]
    except sqlite3.OperationalError:   # tables not made yet
        return 0
    finally:
        db.close()


def _wait_first_done(proc, run_dir, limit_s=600):
    t0 = time.monotonic()
    while _done_chunks(run_dir) == 0:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t0 < limit_s, "no chunk finished"
        time.sleep(0.2)



def test_cached_handle_of_a_failed_file_is_dropped_and_reopened(server, small_sample):
    src = next(iter(load_fileset(small_sample).to_dict().values()))["files"]
    url = server.publish(next(iter(src)), "cache/f.root")
    io.clear_cache()
    with dask.config.set({"jetdask.open-timeout": 2}):
        tree = io.open_tree(url)
        opens = io.stats["opens"]
        assert io.open_tree(url) is tree                      # cached
        server.stop()
        with pytest.raises(TransientFileError, match=r"\[0, 100\).*Operation expired"):
            io.read_arrays(tree, ["Jet_pt"], 0, 100, url)
        assert (url, "Events") not in io._cache               # dropped
        server.start()
        for _ in range(30):   # the client tries the server again every few seconds
            try:
                again = io.open_tree(url)
                break
            except TransientFileError:
                time.sleep(1)
        assert again is not tree and io.stats["opens"] == opens + 1
        assert len(io.read_arrays(again, ["Jet_pt"], 0, 100, url)["Jet_pt"]) == 100
    io.clear_cache()


@pytest.mark.slow
@pytest.mark.cluster
def test_outage_of_20s_mid_run_is_survived(server, small_sample, reference, tmp_path):
    """The server stops after the first chunk and comes back 20 s later: exit 0, same output."""
    fileset = _publish(server, small_sample, tmp_path / "remote.json")
    run = tmp_path / "run"
    # a request fails after 3 s; retries back off 1, 2, 4, 8, 16 s: more than the outage
    proc = _start_run(fileset, run, _env(open_timeout=3, retries=8, retry_backoff=1.0, retry_backoff_max=16))
    _wait_first_done(proc, run)
    server.stop()
    time.sleep(20)
    server.start()
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-3000:]
    assert_same_output(load_output(str(run)), reference)
    retried = ledger_rows(str(run), "SELECT COUNT(*) FROM chunks WHERE attempts > 1")[0][0]
    assert retried > 0                                      # the outage was felt and retried
    assert not ledger_rows(str(run), "SELECT id FROM chunks WHERE state != 'done' AND state != 'split'")


@pytest.mark.slow
@pytest.mark.cluster
def test_server_that_stays_down_fails_transient_then_resubmit_completes(server, small_sample, reference,
                                                                        tmp_path):
    fileset = _publish(server, small_sample, tmp_path / "remote.json")
    run = tmp_path / "run"
    env = _env(open_timeout=2, retries=2, retry_backoff=0.2, retry_backoff_max=1)
    proc = _start_run(fileset, run, env)
    _wait_first_done(proc, run)
    server.stop()
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 3, err[-3000:]
    failed = ledger_rows(str(run), "SELECT kind, error_type, message FROM chunks WHERE state='failed'")
    # the client's own words: "[ERROR] Operation expired" while it waits for the server,
    # "[FATAL] Connection error" once it has given up on it for a while
    xrootd_message = re.compile(r"\[\d+, \d+\) \(transient\): \[(ERROR|FATAL)\] (Operation expired|Connection error)")
    assert failed and all(k == "transient" and xrootd_message.search(m) for k, _, m in failed), failed
    status = subprocess.run([sys.executable, "-m", "jetdask.cli", "status", str(run)], env=env, cwd=str(REPO),
                            capture_output=True, text=True, timeout=120)
    assert status.returncode == 3 and xrootd_message.search(status.stdout), status.stdout
    server.start()
    p = subprocess.run([sys.executable, "-m", "jetdask.cli", "resubmit", str(run), "--workers", "2",
                        "--no-progress"], env=env, cwd=str(REPO), capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    assert_same_output(load_output(str(run)), reference)
