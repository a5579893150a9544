"""jetdask.engine.departures: why a worker left, from the scheduler's events (real processes)."""
from __future__ import annotations

import queue
import time

import pytest

from engine_helpers import close_gracefully_soon, hold
from jetdask.engine import departures
from jetdask.engine.departures import departure_reason

# (the scheduler called the removal expected, the nanny killed it for memory just before,
#  it had started retiring) -> reason
CASES = [
    ((True, False, False), "retired"),    # lifetime, scale-down, retire_workers
    ((True, False, True), "retired"),
    ((True, True, False), "retired"),     # a memory event of an earlier process of that address
    ((False, True, False), "memory"),     # the nanny's memory kill
    ((False, True, True), "memory"),      # retiring, but killed for memory first
    ((False, False, True), "retired"),    # retirement given up (no worker to take its results), closed anyway
    ((False, False, False), "died"),      # SIGKILL, node lost, pre-emption
]


@pytest.mark.parametrize("args,reason", CASES)
def test_departure_reason(args, reason):
    assert departure_reason(*args) == reason


def _sleep(t):
    time.sleep(t)
    return t


def test_workers_whose_retirement_is_given_up_retired():
    """Two workers end their lifetime together while each holds results nobody else has: the
    scheduler gives up moving them (no worker left to take them), each closes anyway and the
    scheduler removes it as unexpected. They retired: their chunks are rerun, never suspects."""
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      memory_limit="1GiB") as cluster, Client(cluster) as client:
        client.wait_for_workers(2)
        workers = sorted(client.nthreads())
        q: queue.Queue = queue.Queue()
        events = departures.WorkerEvents(client, q)
        try:
            held = [client.submit(hold, i, workers=[w], pure=False) for i, w in enumerate(workers)]
            client.gather(held)   # a result on each worker that only it has
            running = [client.submit(_sleep, 30, workers=[w], pure=False) for w in workers]
            deadline = time.time() + 30
            while time.time() < deadline and sum(map(len, client.processing().values())) < 2:
                time.sleep(0.05)
            client.run(close_gracefully_soon)
            left = {}
            deadline = time.time() + 60
            while time.time() < deadline and len(left) < 2:
                try:
                    kind, msg = q.get(timeout=1)
                except queue.Empty:
                    continue
                if kind == "worker" and msg.get("action") == "leave":
                    left[msg["worker"]] = msg["reason"]
            del held, running
        finally:
            events.close()
    assert left == {w: "retired" for w in workers}
