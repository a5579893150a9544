"""Batches of short chunks and file locality, on a real 2-worker LocalCluster."""
from __future__ import annotations

import os

import dask
import pytest

from engine_analyses import DimuonJets
from engine_helpers import assert_same_output, ledger_rows, local_client, serial_output
from jetdask.engine.runner import Runner
from jetdask.nanoaod import io

pytestmark = pytest.mark.cluster
CHUNK = 100


@pytest.fixture(scope="module")
def fine_sample(tmp_path_factory):
    """One MC and one data file of 4000 events in 100-event baskets: 80 chunks of 100 events."""
    from jetdask.synthetic import generate_sample
    return generate_sample(str(tmp_path_factory.mktemp("fine")), events=4000, files=1, seed=5, mismodel=0.5,
                           basket_events=CHUNK)


@pytest.fixture(scope="module")
def clean(fine_sample, tmp_path_factory):
    return serial_output(fine_sample, tmp_path_factory.mktemp("clean"), CHUNK)


@pytest.fixture(scope="module")
def client():
    with local_client() as c:
        yield c


def run(client, sample, run_dir, batch_seconds, analysis=None):
    with dask.config.set({"jetdask.batch-seconds": batch_seconds}):
        with Runner(analysis or DimuonJets(), sample, str(run_dir), client, chunk_size=CHUNK, progress=False) as r:
            out = r.run()
            return out, dict(r.stats)


def opens(client) -> int:
    return sum(client.run(lambda: io.stats["opens"]).values())


@pytest.mark.parametrize("repeat", range(2))
def test_short_chunks_run_in_batches_with_the_same_output(client, fine_sample, clean, tmp_path, repeat):
    one, s_one = run(client, fine_sample, tmp_path / "one", 0)
    many, s_many = run(client, fine_sample, tmp_path / "many", 1.0)
    n = ledger_rows(tmp_path / "many", "SELECT COUNT(*) FROM chunks WHERE state='done'")[0][0]
    assert n == 80 and s_one["tasks"] == 80
    # a thread takes its share of the chunks left, those in flight counted: each file goes in a few
    # large batches (7 tasks here; sharing out only the waiting chunks made 21)
    assert s_many["tasks"] <= n / 5, s_many
    assert ledger_rows(tmp_path / "many", "SELECT MAX(attempts) FROM chunks")[0][0] == 1
    assert one.complete and many.complete
    assert_same_output(many, one)
    assert_same_output(many, clean)


def test_worker_killed_under_a_batch(client, fine_sample, clean, tmp_path):
    client.wait_for_workers(2, timeout=30)
    marker = str(tmp_path / "killed")
    out, stats = run(client, fine_sample, tmp_path / "run", 0.25, DimuonJets(kill_marker=marker, kill_entry=3000))
    assert os.path.exists(marker)                   # a worker really died, late in a file: under a batch
    assert stats["tasks"] < 80
    # only the chunk the worker was running is a suspect (its start report may be lost in the kill)
    assert stats["suspects"] <= 1, stats
    assert out.complete and not out.failed
    assert_same_output(out, clean)


def test_files_are_opened_once_per_worker_and_not_again_by_the_next_run(client, fine_sample, tmp_path):
    client.wait_for_workers(2, timeout=30)
    client.run(io.clear_cache)
    before = opens(client)
    run(client, fine_sample, tmp_path / "first", 0.25)
    first = opens(client) - before
    # planning opens each file on its own worker; at most one worker helps with the other file's tail
    assert 2 <= first <= 3, first
    run(client, fine_sample, tmp_path / "second", 0.25)
    second = opens(client) - before - first
    assert second <= 1, second                      # planning and the chunks use the open files


def _answer():
    return 42


def test_a_result_on_a_killed_worker_is_given_up_at_once(client):
    """A finished task's result dies with its worker; fetching it must not hold anything up."""
    import queue
    import signal
    import time
    from types import SimpleNamespace

    from jetdask.engine.fetch import Fetcher
    client.wait_for_workers(2, timeout=30)
    a, b = sorted(client.nthreads())
    events = queue.Queue()
    fetcher = Fetcher(events, timeout=60)
    try:
        ok = SimpleNamespace(future=client.submit(_answer, workers=[b], allow_other_workers=False, pure=False),
                             worker=b)
        fetcher.start(ok)
        assert fetcher.claim(events.get(timeout=30)[1])[1:] == (42, None)
        fut = client.submit(_answer, workers=[a], allow_other_workers=False, pure=False)
        while fut.status != "finished":
            time.sleep(0.05)
        os.kill(client.run(os.getpid, workers=[a])[a], signal.SIGKILL)
        time.sleep(1.0)                                  # the result is gone; the task waits for its worker
        dead = SimpleNamespace(future=fut, worker=a)
        t0 = time.monotonic()
        fetcher.start(dead)
        assert fetcher.give_up(a) == [dead]
        kind, key = events.get(timeout=30)
        assert kind == "fetched" and fetcher.claim(key) is None     # given up: nothing to apply
        assert time.monotonic() - t0 < 10                # not the 60 s fetch timeout
        assert len(fetcher) == 0
    finally:
        fetcher.close()
        client.wait_for_workers(2, timeout=60)


def test_workers_freeze_what_they_hold_once(client, fine_sample, clean, tmp_path):
    """A run freezes each worker's import-time objects (out of the collector's reach) once per process."""
    import gc

    def frozen():
        from jetdask.engine import memory
        return memory._frozen, gc.get_freeze_count()
    first, _ = run(client, fine_sample, tmp_path / "a", 0.25)
    after_one = client.run(frozen)
    second, _ = run(client, fine_sample, tmp_path / "b", 0.25)
    after_two = client.run(frozen)
    assert all(done and n > 10_000 for done, n in after_one.values()), after_one
    # not again: a run's data is never frozen (a second freeze would take in 10k+ more objects;
    # the count itself moves by a few as frozen objects are freed or re-tracked)
    assert after_two.keys() == after_one.keys()
    assert all(abs(after_two[w][1] - n) < 1000 for w, (_, n) in after_one.items()), (after_one, after_two)
    assert_same_output(first, clean)
    assert_same_output(second, clean)


def test_partial_results_while_running_are_read_from_the_ledger(client, fine_sample, clean, tmp_path):
    """``handle.partial()`` during a run: some of the events, never more; at the end: the output."""
    import time
    from types import SimpleNamespace
    with dask.config.set({"jetdask.batch-seconds": 0}):
        r = Runner(DimuonJets(sleep=0.02), fine_sample, str(tmp_path / "run"), client, chunk_size=CHUNK,
                   progress=False)
        handle = r.submit()
        deadline = time.time() + 120
        while time.time() < deadline and r.stats["done"] < 10:
            time.sleep(0.05)
        during = handle.partial()
        out = handle.result(timeout=600)
        after = handle.partial()
        r.close()
    total = {ds: c["events"] for ds, c in out.counters.items()}
    seen = {ds: res.counters["events"] for ds, res in during.items()}
    assert seen and all(0 < seen[ds] <= total[ds] for ds in seen), (seen, total)
    assert sum(seen.values()) < sum(total.values())      # read while the run went on
    as_output = SimpleNamespace(hists={ds: res.hists for ds, res in after.items()},
                                counters={ds: res.counters for ds, res in after.items()})
    assert_same_output(as_output, out)
    assert_same_output(out, clean)
