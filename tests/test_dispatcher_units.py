"""The dispatcher on its own: a scripted stand-in plays the scheduler's side (workers ready and
leaving, tasks started, futures ending) through the dispatcher's port and event queue, while
what is recorded goes to a real ledger through the run's Recorder. The real-cluster tests
(test_dispatcher_cluster.py, test_engine_cluster.py) check the same behaviour against dask."""
from __future__ import annotations

import contextlib
import random
import types

import hist
import numpy as np
import pytest

from jetdask.chunk import Chunk
from jetdask.engine import histcodec, policy
from jetdask.engine.dispatcher import DEATH_GRACE, Dispatcher
from jetdask.engine.ledger import Ledger
from jetdask.engine.progress import Progress
from jetdask.engine.protocol import AttemptKind, Event
from jetdask.engine.recorder import Recorder
from jetdask.engine.task import Outcome
from jetdask.errors import ClusterLostError
from jetdask.result import Result

W1, W2 = "tcp://w1:1", "tcp://w2:1"


class ScriptedFuture:
    """A task's future as the dispatcher sees one: the test ends it."""

    def __init__(self, key, chunks, addr, slots, isolated):
        self.key, self.chunks, self.addr, self.slots, self.isolated = key, chunks, addr, slots, isolated
        self.status = "pending"
        self._callbacks, self._result, self._error = [], None, None

    def add_done_callback(self, cb):
        self._callbacks.append(cb)

    def _end(self, status, result=None, error=None):
        self.status, self._result, self._error = status, result, error
        for cb in self._callbacks:
            cb(self)

    def finish(self, outs=None, kind=AttemptKind.DONE):
        self._end("finished", result=outs if outs is not None else [_outcome(c, kind) for c in self.chunks])

    def fail(self, error, status="error"):
        self._end(status, error=error)

    def done(self):
        return self.status != "pending"

    def cancel(self):
        if self.status == "pending":
            self.status = "cancelled"

    def release(self):
        pass

    def exception(self, timeout=None):
        return self._error

    def result(self, timeout=None):
        if self._error is not None:
            raise self._error
        return self._result


class ScriptedCluster:
    """The dispatcher's port, played by the test: ready workers, tasks submitted, events sent."""

    def __init__(self, workers: dict[str, int]):
        self.workers = dict(workers)
        self.tasks: list[ScriptedFuture] = []
        self.events = None
        self.unreachable: BaseException | None = None

    @contextlib.contextmanager
    def installed(self, events):
        self.events = events
        yield

    def ready_workers(self):
        if self.unreachable is not None:
            raise self.unreachable
        return dict(self.workers)

    def connected(self):
        return set(self.workers)

    def work_left(self, chunks, chunk_seconds):
        self.left = chunks

    def submit(self, chunks, addr, key, slots, isolated):
        fut = ScriptedFuture(key, list(chunks), addr, slots, isolated)
        self.tasks.append(fut)
        return fut

    # what the scheduler says
    def started(self, fut, index=0):
        self.events.put((Event.STARTED, {"key": fut.key, "index": index}))

    def leave(self, addr, reason, handed_on=False):
        self.workers.pop(addr, None)
        self.events.put((Event.WORKER, {"action": "leave", "worker": addr, "reason": reason, "handed_on": handed_on}))

    def memory_kill(self, addr):
        self.events.put((Event.WORKER, {"action": "memory-kill", "worker": addr}))

    def pending_tasks(self):
        return [t for t in self.tasks if t.status == "pending"]


def _result(chunk: Chunk) -> Result:
    h = hist.Hist.new.Reg(4, 0, 4, name="x").Double()
    h.fill(np.full(chunk.num_entries // 100, chunk.entry_start // 100 % 4))
    return Result({"x": h}, {"events": float(chunk.num_entries)})


def _outcome(chunk: Chunk, kind=AttemptKind.DONE) -> Outcome:
    out = Outcome(chunk.id, kind, worker="w", started=100.0, finished=100.1, n_events=chunk.num_entries)
    if kind == AttemptKind.DONE:
        out.blob = histcodec.encode(_result(chunk))
    else:
        out.error_type, out.message = "TransientFileError", "server busy"
    return out


def _chunks(files=2, per_file=4, size=1000):
    return [Chunk("DS", f"/data/f{i}.root", "Events", j * size, (j + 1) * size, f"u{i}")
            for i in range(files) for j in range(per_file)]


@pytest.fixture
def run(tmp_path):
    """A dispatcher over a scripted cluster, recording into a real ledger: (dispatcher, cluster, ledger)."""
    made = []

    def make(chunks, workers=None, retries=3, backoff=0.0, no_worker_timeout=30.0, batch_seconds=0.0,
             per_thread=1):
        led = Ledger(str(tmp_path / f"ledger{len(made)}.sqlite"))
        led.add_plan([{"dataset": "DS", "path": p, "tree": "Events", "uuid": u, "num_entries": n}
                      for p, u, n in sorted({(c.path, c.file_uuid, 10**6) for c in chunks})], [], chunks)
        rec = Recorder(led, policy.Limits(retries, 250, backoff, backoff), Progress(0, len(chunks), enabled=False),
                       rng=random.Random(1))
        cluster = ScriptedCluster(workers or {W1: 1, W2: 1})
        d = Dispatcher(rec, cluster, per_thread=per_thread, max_inflight=None, homes={},
                       no_worker_timeout=no_worker_timeout, token="t", batch_seconds=batch_seconds)
        stack = contextlib.ExitStack()
        stack.enter_context(cluster.installed(d.events))
        d.start(list(chunks))
        made.append((d, led, stack))
        return d, cluster, led

    yield make
    for d, led, stack in made:
        d.close()
        stack.close()
        led.close()


def _steps(d, n=5, timeout=0.02):
    for _ in range(n):
        d.step(timeout)


def _until(d, cond, limit=200):
    for _ in range(limit):
        if cond():
            return
        d.step(0.02)
    raise AssertionError("the dispatcher did not get there")


def _finish_all(d, cluster, led, kind=AttemptKind.DONE):
    """End every task as it is submitted, until the run has nothing left."""
    for _ in range(400):
        for t in cluster.pending_tasks():
            t.finish(kind=kind)
        d.step(0.02)
        if not d._busy():
            return
    raise AssertionError("the run did not end")


def _state(led, chunk):
    return led.db.execute("SELECT state FROM chunks WHERE id=?", (chunk.id,)).fetchone()[0]


def test_tasks_are_pinned_one_per_thread_and_every_result_recorded(run):
    chunks = _chunks()
    d, cluster, led = run(chunks, workers={W1: 2, W2: 1})
    d.step(0.01)
    assert len(cluster.tasks) == 3                                  # one task per thread, no more
    assert {t.addr for t in cluster.tasks} == {W1, W2} and all(t.slots == 1.0 for t in cluster.tasks)
    assert all(_state(led, t.chunks[0]) == "running" for t in cluster.tasks)
    _finish_all(d, cluster, led)
    assert led.counts() == {"done": 8}
    assert d.recorder.stats["done"] == 8 and d.recorder.stats["tasks"] == len(cluster.tasks) == 8
    # each file stays on the worker that opened it
    for path in {c.path for c in chunks}:
        assert len({t.addr for t in cluster.tasks if t.chunks[0].path == path}) == 1
    assert led.merged()["DS"].counters["events"] == 8000


def test_batches_form_once_a_chunk_time_is_known(run):
    d, cluster, led = run(_chunks(files=1, per_file=24), workers={W1: 1}, batch_seconds=10.0)
    d.step(0.01)
    assert [len(t.chunks) for t in cluster.tasks] == [1]             # no chunk time yet: one chunk
    cluster.tasks[0].finish()
    _until(d, lambda: len(cluster.tasks) > 1)
    assert len(cluster.tasks[1].chunks) > 1                         # 0.1 s per chunk: a batch
    _finish_all(d, cluster, led)
    assert led.counts() == {"done": 24}


def test_a_death_suspects_only_the_chunk_its_worker_was_running(run):
    d, cluster, led = run(_chunks(files=1, per_file=24), workers={W1: 1, W2: 1}, batch_seconds=10.0)
    d.step(0.01)
    for t in list(cluster.tasks):
        t.finish()
    _until(d, lambda: any(len(t.chunks) >= 3 and t.status == "pending" for t in cluster.tasks))
    batch = next(t for t in cluster.tasks if len(t.chunks) >= 3 and t.status == "pending")
    other = W2 if batch.addr == W1 else W1
    cluster.started(batch, index=1)
    d.step(0.01)
    cluster.leave(batch.addr, "died")
    batch.fail(__import__("distributed").KilledWorker(batch.key, types.SimpleNamespace(address=batch.addr), 0))
    _until(d, lambda: any(t.isolated for t in cluster.tasks))
    lone = [t for t in cluster.tasks if t.isolated]
    assert [t.chunks for t in lone] == [[batch.chunks[1]]]            # only the chunk it was running
    assert lone[0].addr == other and lone[0].slots == 1.0           # alone on the other worker (1 thread)
    assert d.recorder.stats["suspects"] == 1 and d.recorder.stats["workers_died"] == 1
    assert d.recorder.stats["rerun"] == len(batch.chunks) - 1       # the others: nothing counted
    _finish_all(d, cluster, led)
    assert led.counts() == {"done": 24}


def test_an_erred_task_waits_for_why_its_lone_worker_left(run):
    """A lone chunk's task erred with its worker: decided only when the reason arrives (memory: split)."""
    chunks = _chunks(files=1, per_file=1, size=2000)
    d, cluster, led = run(chunks, workers={W1: 2, W2: 1})
    d.step(0.01)
    first = cluster.tasks[0]
    cluster.started(first)
    d.step(0.01)
    first.fail(__import__("distributed").KilledWorker(first.key, types.SimpleNamespace(address=first.addr), 0))
    cluster.leave(first.addr, "died")       # it ran beside others: run alone next
    _until(d, lambda: any(t.isolated for t in cluster.tasks))
    lone = next(t for t in cluster.tasks if t.isolated)
    assert lone.slots == float(cluster.workers[lone.addr])         # all of its worker's slots
    cluster.started(lone)
    d.step(0.01)
    lone.fail(__import__("distributed").KilledWorker(lone.key, types.SimpleNamespace(address=lone.addr), 0))
    _steps(d, 3)
    assert d.undecided and len(cluster.tasks) == 2                  # no reason yet: nothing decided
    cluster.memory_kill(lone.addr)
    cluster.leave(lone.addr, "died")
    cluster.workers[W1] = 2                                          # a replacement joins
    _until(d, lambda: len(cluster.tasks) > 2)
    halves = cluster.tasks[2:]
    assert all(t.isolated for t in halves) and [t.chunks[0].num_entries for t in halves] == [1000]
    assert _state(led, chunks[0]) == "split" and d.recorder.stats["split"] == 1
    _finish_all(d, cluster, led)
    assert led.counts() == {"done": 2, "split": 1}


def test_no_reason_after_the_grace_is_a_death(run, monkeypatch):
    from jetdask.engine import dispatcher
    monkeypatch.setattr(dispatcher, "DEATH_GRACE", 0.05)
    assert DEATH_GRACE > 0.05
    chunks = _chunks(files=1, per_file=1)
    d, cluster, led = run(chunks, workers={W1: 1, W2: 1})
    d.suspects.append(d.pending.take(W1, 1, 0)[0])                   # a suspect already
    d.step(0.01)
    lone = cluster.tasks[0]
    cluster.started(lone)
    d.step(0.01)
    lone.fail(__import__("distributed").KilledWorker(lone.key, types.SimpleNamespace(address=lone.addr), 0))
    _until(d, lambda: len(cluster.tasks) > 1)                         # died alone: run alone again
    assert cluster.tasks[1].isolated and d.recorder.history(chunks[0]).crashes == 1


def test_a_retired_worker_s_chunks_are_rerun_not_suspected(run):
    d, cluster, led = run(_chunks(), workers={W1: 1, W2: 1})
    d.step(0.01)
    gone = cluster.tasks[0]
    cluster.leave(gone.addr, "retired", handed_on=True)               # dask did not err its pinned task
    _until(d, lambda: gone.status == "cancelled")
    assert d.recorder.stats["rerun"] == 1 and d.recorder.stats["suspects"] == 0
    _finish_all(d, cluster, led)
    assert led.counts() == {"done": 8} and {t.addr for t in cluster.tasks[1:]} == set(cluster.workers)


def test_transient_failures_wait_their_backoff_and_spend_the_history(run):
    chunks = _chunks(files=1, per_file=1)
    d, cluster, led = run(chunks, workers={W1: 1}, retries=2, backoff=0.3)
    d.step(0.01)
    cluster.tasks[0].finish(kind=AttemptKind.TRANSIENT)
    _steps(d, 3, 0.02)
    assert len(cluster.tasks) == 1 and d.delayed                      # waiting for its backoff
    _until(d, lambda: len(cluster.tasks) == 2)
    assert led.histories() == {chunks[0].id: {"transient_failures": 1}}
    cluster.tasks[1].finish(kind=AttemptKind.TRANSIENT)
    _until(d, lambda: len(cluster.tasks) == 3)
    cluster.tasks[2].finish(kind=AttemptKind.TRANSIENT)
    _until(d, lambda: not d._busy())
    (f,) = led.failed()
    assert f["kind"] == "transient" and "still failing after 2 retries" in f["message"] and f["attempts"] == 3


def test_a_task_that_raises_fails_only_its_chunks(run):
    d, cluster, led = run(_chunks(files=2, per_file=1), workers={W1: 1, W2: 1})
    d.step(0.01)
    bad, good = cluster.tasks
    bad.fail(KeyError("jetdask-run-t"))
    good.finish()
    _until(d, lambda: not d._busy())
    (f,) = led.failed()
    assert f["kind"] == "error" and f["error_type"] == "KeyError" and f["id"] == bad.chunks[0].id
    assert led.counts() == {"done": 1, "failed": 1}


def test_a_result_lost_before_it_was_fetched_is_rerun(run):
    chunks = _chunks(files=1, per_file=1)
    d, cluster, led = run(chunks, workers={W1: 1})
    d.step(0.01)
    cluster.tasks[0].fail(ConnectionResetError("worker gone"), status="finished")   # fetch fails: comm error
    _until(d, lambda: len(cluster.tasks) == 2)
    assert d.recorder.stats["rerun"] == 1 and led.histories() == {}
    _finish_all(d, cluster, led)
    assert led.counts() == {"done": 1}


def test_without_workers_the_run_ends_with_its_chunks_pending(run):
    d, cluster, led = run(_chunks(), workers={W1: 1}, no_worker_timeout=0.2)
    d.step(0.01)
    cluster.leave(W1, "died")
    with pytest.raises(ClusterLostError, match="8 chunk.s. not finished are pending again"):
        _until(d, lambda: False, limit=100)
    assert led.counts() == {"pending": 8}


def test_an_unreachable_scheduler_counts_as_no_workers_and_other_errors_surface(run):
    d, cluster, led = run(_chunks(), workers={W1: 1}, no_worker_timeout=0.2)
    d.step(0.01)
    cluster.unreachable = OSError("connection refused")
    cluster.leave(W1, "died")
    with pytest.raises(ClusterLostError):
        _until(d, lambda: False, limit=100)
    d2, cluster2, _ = run(_chunks(), workers={W1: 1})
    d2.step(0.01)
    cluster2.unreachable = RuntimeError("a bug, not the network")
    cluster2.leave(W1, "died")
    with pytest.raises(RuntimeError, match="a bug"):
        _until(d2, lambda: False, limit=10)
