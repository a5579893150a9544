"""The Recorder: what both loops record of an attempt; the retry history kept in the ledger, read
back when a run resumes, given back in full to failed chunks by a resubmit."""
from __future__ import annotations

import random

import dask.config
import pytest

from engine_analyses import DimuonJets
from jetdask.chunk import Chunk
from jetdask.engine import policy
from jetdask.engine.ledger import Ledger
from jetdask.engine.progress import Progress
from jetdask.engine.protocol import AttemptKind, Departure
from jetdask.engine.recorder import Recorder
from jetdask.engine.runner import Runner
from jetdask.engine.task import Outcome
from jetdask.errors import DiskFullError, TransientError

A = policy.Attempt
CHUNK = Chunk("DS", "/data/f.root", "Events", 0, 4000, "u")


def _ledger(path) -> Ledger:
    led = Ledger(str(path))
    led.add_plan([{"dataset": "DS", "path": CHUNK.path, "tree": "Events", "uuid": "u", "num_entries": 4000}], [],
                 [CHUNK])
    return led


def _recorder(led, retries=2) -> Recorder:
    return Recorder(led, policy.Limits(retries, 500, 0.0, 0.0), Progress(0, 1, enabled=False), rng=random.Random(0))


def test_the_history_spent_is_read_back_when_a_run_resumes(tmp_path):
    led = _ledger(tmp_path / "ledger.sqlite")
    rec = _recorder(led)
    rec.start([CHUNK])
    action, again = rec.settle(CHUNK, A(AttemptKind.TRANSIENT))
    assert action.kind == "retry" and again == [CHUNK]
    rec.settle(CHUNK, A(AttemptKind.WORKER_LEFT, isolated=True, departure=Departure.DIED))
    assert led.histories() == {CHUNK.id: {"transient_failures": 1, "crashes": 1}}
    led.reset_running()
    led.close()

    led = Ledger(str(tmp_path / "ledger.sqlite"))            # the next run on the directory
    rec = _recorder(led)
    assert rec.history(CHUNK) == policy.History(4000, transient_failures=1, crashes=1)
    action, _ = rec.settle(CHUNK, A(AttemptKind.TRANSIENT))
    assert action.reason == "transient error, retry 2/2"
    action, again = rec.settle(CHUNK, A(AttemptKind.CANCELLED))
    assert action.kind == "fail" and again == []
    (f,) = led.failed()
    assert f["kind"] == "transient" and "still failing after 2 retries" in f["message"]
    # resubmit: a failed chunk's history is forgotten, a fresh recorder gives it the full budget
    assert led.clear_history("failed") == 1
    assert _recorder(led).history(CHUNK) == policy.History(4000)
    led.close()


def test_rerun_and_record_spend_nothing_and_settled_chunks_are_not_read_back(tmp_path):
    led = _ledger(tmp_path / "ledger.sqlite")
    rec = _recorder(led)
    rec.settle(CHUNK, A(AttemptKind.LOST))
    rec.settle(CHUNK, A(AttemptKind.WORKER_LEFT, departure=Departure.RETIRED))
    assert led.histories() == {} and rec.stats["rerun"] == 2
    rec.settle(CHUNK, A(AttemptKind.TRANSIENT))
    assert led.histories() == {CHUNK.id: {"transient_failures": 1}}
    action, halves = rec.settle(CHUNK, A(AttemptKind.MEMORY), Outcome(CHUNK.id, AttemptKind.MEMORY,
                                                                     error_type="MemoryError", message="big"))
    assert action.kind == "split" and [c.num_entries for c in halves] == [2000, 2000]
    assert led.histories() == {}                              # split: replaced by halves of their own
    assert {c.id for c in led.chunks()} == {c.id for c in halves}


def test_a_stop_leaves_the_chunk_to_do_and_raises_its_error(tmp_path):
    led = _ledger(tmp_path / "ledger.sqlite")
    rec = _recorder(led)
    rec.start([CHUNK])
    full = DiskFullError(str(tmp_path), "no space left")
    out = Outcome(CHUNK.id, AttemptKind.STOP, error_type="DiskFullError", stop=full)
    with pytest.raises(DiskFullError):
        rec.settle(CHUNK, A(AttemptKind.STOP), out)
    assert led.counts() == {"pending": 1} and rec.stats["failed"] == 0


class FirstChunkFlaky(DimuonJets):
    """A transient error on the first chunk of every file, every time."""

    def process(self, events, chunk):
        if chunk.entry_start == 0:
            raise TransientError("the server is busy")
        return super().process(events, chunk)


def test_resubmit_gives_failed_chunks_their_retries_again(small_sample, tmp_path):
    run_dir = str(tmp_path / "run")
    with dask.config.set({"jetdask.retry-backoff": 0.0}):
        with Runner(FirstChunkFlaky(save_arrays=False), small_sample, run_dir, serial=True, chunk_size=1000,
                    retries=2, progress=False) as r:
            first = r.run()
        with Runner(FirstChunkFlaky(save_arrays=False), None, run_dir, serial=True, retries=2,
                    progress=False) as r:
            again = r.resubmit()
    assert first.failed and len(again.failed) == len(first.failed)
    assert {f["attempts"] for f in first.failed} == {3}          # the first try and 2 retries
    assert {f["attempts"] for f in again.failed} == {6}          # 3 more: the budget was given back
    assert all("still failing after 2 retries" in f["message"] for f in again.failed)
