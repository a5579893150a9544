"""Fault injection on a real LocalCluster (real worker processes, memory limits, kills)."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from distributed import Client, LocalCluster

from engine_analyses import DimuonJets
from engine_helpers import assert_same_output, local_client, serial_output
from jetdask.engine.runner import Runner

pytestmark = pytest.mark.cluster
HERE = os.path.dirname(__file__)


@pytest.fixture(scope="module")
def clean(small_sample, tmp_path_factory):
    return serial_output(small_sample, tmp_path_factory.mktemp("clean"), 1000)


@pytest.fixture(scope="module")
def client():
    with local_client() as c:
        yield c


def wait_workers(client, n, timeout=30):
    client.wait_for_workers(n, timeout=timeout)


def test_distributed_equals_serial(client, clean, small_sample, tmp_path):
    r = Runner(DimuonJets(), small_sample, str(tmp_path / "run"), client, chunk_size=1000, progress=False)
    out = r.run()
    assert out.complete
    assert_same_output(out, clean)


def test_sigkill_mid_chunk_is_retried(client, clean, small_sample, tmp_path):
    wait_workers(client, 2)
    marker = str(tmp_path / "killed-once")
    r = Runner(DimuonJets(kill_marker=marker), small_sample, str(tmp_path / "run"), client, chunk_size=1000,
               progress=False)
    out = r.run()
    assert os.path.exists(marker)  # a worker really was killed
    assert out.complete
    assert_same_output(out, clean)


def test_memory_hog_is_split(client, clean, small_sample, tmp_path):
    """Chunks of 3000 events allocate ~1.2 GB (limit 1 GiB): the worker is killed, halves fit."""
    wait_workers(client, 2)
    r = Runner(DimuonJets(hog_bytes=400_000, hog_path="mc_0"), small_sample, str(tmp_path / "run"), client,
               chunk_size=3000, split_floor=500, progress=False)
    out = r.run()
    assert r.stats["split"] >= 1
    assert out.complete, out.failed
    assert_same_output(out, clean)


def test_hog_at_floor_fails_only_itself_2x2(small_sample, tmp_path):
    """2 workers x 2 threads; one chunk kills its worker every time: only it fails, for memory."""
    cluster = LocalCluster(n_workers=2, threads_per_worker=2, memory_limit="1GiB", processes=True,
                           dashboard_address=":0", host="127.0.0.1")
    client = Client(cluster)
    try:
        r = Runner(DimuonJets(hog_bytes=3_000_000, hog_path="mc_1", hog_entry=1200, hog_hold=2.0), small_sample,
                   str(tmp_path / "run"), client, chunk_size=500, split_floor=1000, progress=False)
        out = r.run()
    finally:
        client.close()
        cluster.close()
    assert len(out.failed) == 1, out.failed
    f = out.failed[0]
    assert "mc_1" in f["path"] and (f["entry_start"], f["entry_stop"]) == (1000, 1500)
    assert f["kind"] == "memory" and "memory" in f["message"]
    assert out.counts["failed"] == 1 and out.counts.get("pending", 0) == 0
    assert out.counts["done"] == sum(1 for _ in range(12 * 2)) - 1  # 4 files x 6 chunks, one failed
    assert r.stats["workers_memory"] + r.stats["workers_died"] >= 2


def test_client_killed_then_resumed(clean, small_sample, tmp_path):
    run = str(tmp_path / "run")
    spec = os.path.join(HERE, "engine_analyses.py") + ":SlowDimuonJets"
    env = dict(os.environ, PYTHONPATH=HERE + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "jetdask.cli", "run", spec, "--fileset", small_sample, "--run-dir", run,
           "--chunk-size", "500", "--workers", "2", "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    db = os.path.join(run, "ledger.sqlite")
    deadline = time.time() + 120
    done = 0
    while time.time() < deadline:
        time.sleep(0.5)
        if os.path.exists(db):
            try:
                done = sqlite3.connect(db).execute("SELECT COUNT(*) FROM chunks WHERE state='done'").fetchone()[0]
            except sqlite3.Error:
                continue
            if done >= 4:
                break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert done >= 4
    con = sqlite3.connect(db)
    before = dict(con.execute("SELECT id, finished FROM chunks WHERE state='done'").fetchall())
    total = con.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
    con.close()
    assert 0 < len(before) < total
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    con = sqlite3.connect(db)
    after = dict(con.execute("SELECT id, finished FROM chunks WHERE state='done'").fetchall())
    assert all(after[k] == v for k, v in before.items()), "a done chunk was recomputed"
    from jetdask.engine.outputs import load_output
    assert_same_output(load_output(run), clean)
