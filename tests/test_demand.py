"""An adaptive cluster grows for a run: the run tells the scheduler the work it holds back."""
from __future__ import annotations

import threading
import time

import pytest

from engine_analyses import DimuonJets
from engine_helpers import assert_same_output, serial_output
from jetdask.engine.demand import wanted_workers


@pytest.mark.parametrize("seconds, duration, threads, expected", [
    (0.0, 5.0, 1, 0),        # nothing left: no demand (dask's own target decides)
    (0.1, 5.0, 1, 1),        # any work left: one worker at least
    (5.0, 5.0, 1, 1),
    (5.1, 5.0, 1, 2),
    (40.0, 5.0, 1, 8),
    (40.0, 5.0, 2, 4),       # workers of two threads: half as many
    (41.0, 5.0, 4, 3),       # 9 cores -> 3 workers of 4 threads
])
def test_wanted_workers(seconds, duration, threads, expected):
    assert wanted_workers(seconds, duration, threads) == expected


@pytest.mark.cluster
def test_an_adaptive_cluster_grows_during_a_run_and_the_output_is_unchanged(small_sample, tmp_path):
    from distributed import Client, LocalCluster

    from jetdask.engine.runner import Runner

    clean = serial_output(small_sample, tmp_path / "clean", chunk_size=500)
    cluster = LocalCluster(n_workers=1, threads_per_worker=1, memory_limit="1GiB", processes=True,
                           dashboard_address=":0", host="127.0.0.1")
    cluster.adapt(minimum=1, maximum=3, interval="300ms", wait_count=100)   # dask's default target: 5 s
    client = Client(cluster)
    seen, stop = [], threading.Event()

    def watch():
        while not stop.is_set():
            seen.append(len(client.scheduler_info(n_workers=-1)["workers"]))
            time.sleep(0.2)

    t = threading.Thread(target=watch, daemon=True)
    try:
        t.start()
        # 24 chunks of ~0.6 s: about 15 s of work on one worker, three times the 5 s target; the
        # few tasks the dispatcher keeps on the scheduler alone ask for one worker
        with Runner(DimuonJets(sleep=0.6), small_sample, str(tmp_path / "run"), client, chunk_size=500,
                    progress=False) as r:
            out = r.run()
        stop.set()
        t.join()
        assert out.complete and not out.failed
        assert max(seen) >= 2, f"the adaptive cluster never grew: workers seen {sorted(set(seen))}"
        assert_same_output(out, clean)
        # the run's end leaves nothing on the scheduler: no plugin, the scheduler's own method back
        left = client.run_on_scheduler(
            lambda dask_scheduler: ([n for n in dask_scheduler.plugins if "jetdask" in n],
                                    dask_scheduler.handlers["adaptive_target"] == dask_scheduler.adaptive_target,
                                    hasattr(dask_scheduler, "_jetdask_adaptive_target")))
        assert left == ([], True, False)
    finally:
        stop.set()
        client.close()
        cluster.close()
