"""The dispatcher on real LocalClusters: culprits found without hanging, deaths cost only their own
chunks, retirements are not crashes, a cluster without workers ends the run (exit 3) instead of a wait."""
from __future__ import annotations

import os
import sqlite3
import threading
import time

import dask.config
import pytest

from engine_analyses import DimuonJets
from engine_helpers import assert_same_output, close_gracefully_soon, hold, serial_output
from jetdask.cluster.local import start_local
from jetdask.engine.runner import Runner
from jetdask.errors import ClusterLostError

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def clean(small_sample, tmp_path_factory):
    return serial_output(small_sample, tmp_path_factory.mktemp("clean"), 1000)


def _close(client):
    from jetdask.cluster import close_cluster
    close_cluster(client)


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("repeat", range(3))
def test_oom_culprit_found_without_hanging(small_sample, tmp_path, repeat):
    """One chunk needs ~6 MB per event (3 GB at 500 events) on workers of 1.5 GiB: only its
    floor-sized piece fails, for memory; the run ends; each bisection level costs one kill."""
    client = start_local(n_workers=2, memory_limit="1.5GiB")
    try:
        r = Runner(DimuonJets(hog_bytes=6_000_000, hog_path="mc_1", hog_entry=1200, hog_hold=3.0), small_sample,
                   str(tmp_path / "run"), client, chunk_size=1000, split_floor=250, progress=False)
        out = r.run()
    finally:
        _close(client)
    assert len(out.failed) == 1, out.failed
    f = out.failed[0]
    assert "mc_1" in f["path"] and f["entry_start"] <= 1200 < f["entry_stop"]
    assert f["entry_stop"] - f["entry_start"] == 250
    assert f["kind"] == "memory" and "killed for memory" in f["message"]
    assert out.counts.get("pending", 0) == 0 and out.counts.get("running", 0) == 0
    # 1000 -> 500 -> 250 (fail): three lone kills, plus the kill(s) that made it a suspect
    assert 3 <= r.stats["workers_memory"] <= 5, dict(r.stats)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_worker_killed_on_16_workers_costs_only_its_chunks(small_sample, clean, tmp_path):
    client = start_local(n_workers=16, memory_limit="600MiB")
    try:
        marker = str(tmp_path / "killed-once")
        run = str(tmp_path / "run")
        r = Runner(DimuonJets(kill_marker=marker, sleep=0.5), small_sample, run, client, chunk_size=250,
                   progress=False)
        out = r.run()
    finally:
        _close(client)
    assert os.path.exists(marker)
    assert out.complete
    assert_same_output(out, clean)
    assert 1 <= r.stats["suspects"] <= 2          # only the dead worker's chunks (2 in flight per thread)
    con = sqlite3.connect(os.path.join(run, "ledger.sqlite"))
    rows = con.execute("SELECT started, finished, attempts FROM chunks WHERE state='done'").fetchall()
    con.close()
    reruns = [(s, e) for s, e, a in rows if a > 1]
    assert reruns
    s, e = min(reruns)
    beside = [1 for s2, e2, a in rows if a == 1 and s <= e2 <= e]
    others_went_on = [1 for s2, e2, a in rows if a == 1 and e2 > s]
    assert others_went_on, "no chunk finished while the suspect was rerun: the cluster idled"
    assert len(beside) + len(others_went_on) > 0


def _run_disturbed(small_sample, tmp_path, n_workers: int, disturb):
    """A run on a fresh LocalCluster; ``disturb(client)`` once 4 chunks are done (what it
    returns is kept until the run ends)."""
    client = start_local(n_workers=n_workers, memory_limit="600MiB")
    try:
        r = Runner(DimuonJets(sleep=0.4), small_sample, str(tmp_path / "run"), client, chunk_size=250,
                   progress=False)
        handle = r.submit()
        _wait_done(r, 4)
        kept = disturb(client)
        out = handle.result(timeout=600)
        del kept
        return r, out
    finally:
        _close(client)


def _retire_two(client):
    client.retire_workers(list(client.nthreads())[:2], close_workers=True)


def _lifetimes_end_together(client):
    """Both workers end their lifetime together while each holds a result no other worker has:
    the scheduler gives up their retirement (nowhere to move it) and removes them as if they
    died, erring their chunks."""
    held = [client.submit(hold, i, workers=[w], pure=False) for i, w in enumerate(client.nthreads())]
    client.gather(held)   # kept by the cluster until the run ends
    client.run(close_gracefully_soon, restart=True)
    return held


@pytest.mark.timeout(600)
@pytest.mark.parametrize("n_workers,disturb", [(4, _retire_two), (2, _lifetimes_end_together)],
                         ids=["retired", "retirement-given-up"])
def test_retired_workers_make_no_suspects(small_sample, clean, tmp_path, n_workers, disturb):
    """Retired workers' chunks are rerun, none is a suspect: also when the scheduler gave the
    retirement up and removed the workers as if they died."""
    r, out = _run_disturbed(small_sample, tmp_path, n_workers, disturb)
    assert out.complete
    assert_same_output(out, clean)
    assert r.stats["workers_retired"] >= 1, dict(r.stats)
    assert r.stats["suspects"] == 0 and r.stats["workers_died"] == 0, dict(r.stats)


@pytest.mark.timeout(600)
def test_no_workers_ends_the_run_then_resubmit_completes(small_sample, clean, tmp_path):
    from distributed import Client, LocalCluster
    run = str(tmp_path / "run")
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, memory_limit="600MiB", processes=True,
                           dashboard_address=":0", host="127.0.0.1")
    client = Client(cluster)
    try:
        with dask.config.set({"jetdask.no-worker-timeout": 4}):
            r = Runner(DimuonJets(sleep=0.3), small_sample, run, client, chunk_size=250, progress=False)
            stopper = threading.Thread(target=lambda: (_wait_done(r, 3), cluster.scale(0)))
            stopper.start()
            t0 = time.time()
            with pytest.raises(ClusterLostError) as err:
                r.run()
            stopper.join()
            assert time.time() - t0 < 300
            assert "no worker" in str(err.value)
            r.close()
        con = sqlite3.connect(os.path.join(run, "ledger.sqlite"))
        states = dict(con.execute("SELECT state, COUNT(*) FROM chunks GROUP BY state").fetchall())
        con.close()
        assert states.get("running", 0) == 0 and states.get("pending", 0) > 0, states
        cluster.scale(2)
        client.wait_for_workers(2, timeout=120)
        with Runner(DimuonJets(), None, run, client, progress=False, allow_analysis_change=True) as r2:  # no sleep
            out = r2.resubmit()
        assert out.complete
        assert_same_output(out, clean)
    finally:
        client.close()
        cluster.close()


def _wait_done(r, n, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline and r.stats["done"] < n:
        time.sleep(0.05)
