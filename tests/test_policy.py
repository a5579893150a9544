"""The failure policy on its own: a table of (attempt, history) -> action."""
from __future__ import annotations

import random

import pytest

from jetdask.engine.policy import (
    CLASSES,
    Action,
    Attempt,
    History,
    Limits,
    Stage,
    backoff_delay,
    classify,
    decide,
    spend,
)
from jetdask.engine.protocol import AttemptKind, Departure, Requeue

LIM = Limits(retries=2, split_floor=500, backoff=1.0, backoff_max=8.0)
BIG, FLOOR = History(4000), History(500)

CASES = [
    # (name, attempt, history, expected kind, expected failure)
    ("done", Attempt("done"), BIG, "record", ""),
    ("estimate over budget splits", Attempt("split"), BIG, "split", ""),
    ("MemoryError splits", Attempt("memory"), BIG, "split", ""),
    ("MemoryError at the floor fails", Attempt("memory"), FLOOR, "fail", "memory"),
    ("transient retried", Attempt("transient"), BIG, "retry", ""),
    ("transient, last retry", Attempt("transient"), History(4000, transient_failures=1), "retry", ""),
    ("transient, retries spent", Attempt("transient"), History(4000, transient_failures=2), "fail", "transient"),
    ("cancelled future retried", Attempt("cancelled"), BIG, "retry", ""),
    ("deterministic error fails", Attempt("failed"), BIG, "fail", "error"),
    ("retired worker: rerun", Attempt("worker-left", departure="retired"), BIG, "rerun", ""),
    ("retired while alone: rerun", Attempt("worker-left", True, departure="retired"), FLOOR, "rerun", ""),
    ("died beside others: isolate", Attempt("worker-left", departure="died"), BIG, "isolate", ""),
    ("memory kill beside others: isolate", Attempt("worker-left", departure="memory"), BIG, "isolate", ""),
    ("died before start: rerun", Attempt("worker-left", started=False, departure="died"), BIG, "rerun", ""),
    ("died before start twice: isolate", Attempt("worker-left", started=False, departure="died"),
     History(4000, unstarted_kills=1), "isolate", ""),
    ("alone, not started: isolate again", Attempt("worker-left", True, started=False, departure="memory"),
     BIG, "isolate", ""),
    ("alone, memory kill: split", Attempt("worker-left", True, departure="memory"), BIG, "split", ""),
    ("alone, memory kill at floor: fail", Attempt("worker-left", True, departure="memory"), FLOOR, "fail", "memory"),
    ("alone, pre-empted: isolate again", Attempt("worker-left", True, departure="died"), BIG, "isolate", ""),
    ("alone, pre-empted at floor: isolate again", Attempt("worker-left", True, departure="died"), FLOOR,
     "isolate", ""),
    ("alone, crashes spent: fail", Attempt("worker-left", True, departure="died"), History(4000, crashes=2),
     "fail", "crash"),
]


@pytest.mark.parametrize("name,attempt,history,kind,failure", CASES, ids=[c[0] for c in CASES])
def test_policy_table(name, attempt, history, kind, failure):
    action = decide(attempt, history, LIM, random.Random(1))
    assert isinstance(action, Action)
    assert action.kind == kind, action
    assert action.failure == failure
    assert action.reason or kind == "record"


def test_retry_delay_grows_and_is_capped_with_jitter():
    rng = random.Random(7)
    for n in range(1, 8):
        full = min(8.0, 2 ** (n - 1))
        delays = [backoff_delay(n, 1.0, 8.0, rng) for _ in range(200)]
        assert all(0.5 * full <= d <= full for d in delays)
        assert max(delays) - min(delays) > 0.2 * full     # jitter spreads retries of many chunks
    assert backoff_delay(3, 0.0, 8.0) == 0.0


def test_retry_action_carries_the_backoff():
    a = decide(Attempt("transient"), History(100, transient_failures=1), Limits(3, 10, 2.0, 60.0), random.Random(3))
    assert a.kind == "retry" and 2.0 <= a.delay <= 4.0


def test_unknown_kind_is_an_error():
    with pytest.raises(ValueError):
        decide(Attempt("exploded"), BIG, LIM)


SPENDS = [
    # (attempt, history, the counter the action spends)
    (Attempt("transient"), BIG, "transient_failures"),
    (Attempt("cancelled"), BIG, "transient_failures"),
    (Attempt("worker-left", started=False, departure="died"), BIG, "unstarted_kills"),
    (Attempt("worker-left", True, started=False, departure="memory"), BIG, "unstarted_kills"),
    (Attempt("worker-left", True, departure="died"), BIG, "crashes"),
    (Attempt("worker-left", departure="died"), BIG, ""),
    (Attempt("worker-left", departure="retired"), BIG, ""),
    (Attempt("memory"), BIG, ""),
    (Attempt("done"), BIG, ""),
]


@pytest.mark.parametrize("attempt,history,counter", SPENDS)
def test_actions_spend_their_counter(attempt, history, counter):
    action = decide(attempt, history, LIM, random.Random(1))
    assert action.spends == counter
    after = spend(history, action)
    for field in ("transient_failures", "crashes", "unstarted_kills"):
        assert getattr(after, field) == getattr(history, field) + (field == counter)


def test_retries_run_out_through_spent_counters():
    """Applying the policy's own actions ends in a failure after ``retries`` transient errors."""
    h, kinds = History(1000), []
    for _ in range(LIM.retries + 1):
        a = decide(Attempt("transient"), h, LIM, random.Random(2))
        kinds.append(a.kind)
        h = spend(h, a)
    assert kinds == ["retry"] * LIM.retries + ["fail"]


BATCH_CASES = [
    # (name, attempt, n, running, expected [(started, departure)] per chunk)
    ("one chunk: unchanged", Attempt("worker-left", departure="died"), 1, 0, [(True, "died")]),
    ("died at the third of four", Attempt("worker-left", departure="died"), 4, 2,
     [(True, "retired"), (True, "retired"), (True, "died"), (False, "died")]),
    ("died at the first", Attempt("worker-left", departure="memory"), 3, 0,
     [(True, "memory"), (False, "memory"), (False, "memory")]),
    ("batch had not started", Attempt("worker-left", started=False, departure="died"), 2, 0,
     [(False, "died"), (False, "died")]),
    ("retired: all rerun", Attempt("worker-left", departure="retired"), 2, 1,
     [(True, "retired"), (True, "retired")]),
]


@pytest.mark.parametrize("name,attempt,n,running,expected", BATCH_CASES, ids=[c[0] for c in BATCH_CASES])
def test_batch_attempts(name, attempt, n, running, expected):
    from jetdask.engine.policy import batch_attempts
    got = batch_attempts(attempt, n, running)
    assert [(a.started, a.departure) for a in got] == expected
    kinds = [decide(a, BIG, LIM).kind for a in got]
    assert kinds.count("isolate") == (1 if attempt.started and attempt.departure != "retired" else 0)


# -- where the chunk goes next: the action carries its requeue mode ----------------------------------
REQUEUE_CASES = [
    # (attempt, history, expected kind, expected requeue)
    (Attempt(AttemptKind.SPLIT), BIG, "split", Requeue.FRONT),
    (Attempt(AttemptKind.MEMORY), BIG, "split", Requeue.FRONT),
    (Attempt(AttemptKind.WORKER_LEFT, True, departure=Departure.MEMORY_KILL), BIG, "split", Requeue.ISOLATE),
    (Attempt(AttemptKind.TRANSIENT), BIG, "retry", Requeue.DELAY),
    (Attempt(AttemptKind.LOST), BIG, "rerun", Requeue.FRONT),
    (Attempt(AttemptKind.WORKER_LEFT, departure=Departure.RETIRED), BIG, "rerun", Requeue.FRONT),
    (Attempt(AttemptKind.WORKER_LEFT, departure=Departure.DIED), BIG, "isolate", Requeue.ISOLATE),
    (Attempt(AttemptKind.WORKER_LEFT, True, started=False, departure=Departure.DIED), BIG, "isolate", Requeue.ISOLATE),
    (Attempt(AttemptKind.DONE), BIG, "record", None),
    (Attempt(AttemptKind.STOP), BIG, "stop", None),
    (Attempt(AttemptKind.FAILED), BIG, "fail", None),
    (Attempt(AttemptKind.MEMORY), FLOOR, "fail", None),
]


@pytest.mark.parametrize("attempt,history,kind,requeue", REQUEUE_CASES)
def test_the_action_says_where_the_chunk_goes(attempt, history, kind, requeue):
    action = decide(attempt, history, LIM, random.Random(1))
    assert (action.kind, action.requeue) == (kind, requeue)


def test_a_lost_result_is_rerun_without_spending_anything():
    action = decide(Attempt(AttemptKind.LOST, isolated=True), History(4000, transient_failures=2, crashes=2), LIM)
    assert action.kind == "rerun" and action.spends == ""


# -- classify: by the error's type and the future's state, never by names or text ---------------------
class CancelledError(Exception):
    """Named like the cancellations, and not one of them."""


def _classify_cases():
    import asyncio
    import concurrent.futures

    from distributed import KilledWorker
    from distributed.client import FutureCancelledError
    from distributed.comm.core import CommClosedError

    from jetdask.errors import (
        DiskFullError,
        FileAccessError,
        MemoryBudgetError,
        ReservedCounterError,
        TransientError,
        TransientFileError,
    )
    killed = KilledWorker("jetdask-x", None, 0)
    cancelled = FutureCancelledError("jetdask-x", "lost")
    return [
        # (name, error, stage, future status, expected kind)
        ("MemoryError", MemoryError(), Stage.CHUNK, None, AttemptKind.MEMORY),
        ("memory budget", MemoryBudgetError("over"), Stage.CHUNK, None, AttemptKind.MEMORY),
        ("disk full", DiskFullError("/run", "no space"), Stage.CHUNK, None, AttemptKind.STOP),
        ("reserved counter", ReservedCounterError("A", ["events"], {"events": "read"}), Stage.CHUNK, None,
         AttemptKind.STOP),
        ("transient error", TransientError("busy"), Stage.CHUNK, None, AttemptKind.TRANSIENT),
        ("transient file error", TransientFileError("root://x//f", "timeout"), Stage.CHUNK, None,
         AttemptKind.TRANSIENT),
        ("file error said transient", FileAccessError("f", "busy", transient=True), Stage.CHUNK, None,
         AttemptKind.TRANSIENT),
        ("file error", FileAccessError("f", "timed out (text does not matter)"), Stage.CHUNK, None,
         AttemptKind.FAILED),
        ("timeout while reading", TimeoutError(), Stage.CHUNK, None, AttemptKind.TRANSIENT),
        ("connection reset", ConnectionResetError(), Stage.CHUNK, None, AttemptKind.TRANSIENT),
        ("analysis bug", ValueError("connection timeout"), Stage.CHUNK, None, AttemptKind.FAILED),
        ("no error", None, Stage.CHUNK, None, AttemptKind.DONE),
        ("task finished", None, Stage.TASK, "finished", AttemptKind.DONE),
        ("task reset", None, Stage.TASK, "pending", AttemptKind.LOST),
        ("task lost", None, Stage.TASK, "lost", AttemptKind.LOST),
        ("killed worker", killed, Stage.TASK, "error", AttemptKind.WORKER_LEFT),
        ("erred, then lost", ValueError("x"), Stage.TASK, "lost", AttemptKind.WORKER_LEFT),
        ("future cancelled", cancelled, Stage.TASK, "cancelled", AttemptKind.CANCELLED),
        ("cancelled state", ValueError("x"), Stage.TASK, "cancelled", AttemptKind.CANCELLED),
        ("asyncio cancellation", asyncio.CancelledError(), Stage.TASK, "error", AttemptKind.CANCELLED),
        ("comm closed", CommClosedError("gone"), Stage.TASK, "error", AttemptKind.CANCELLED),
        ("task raised", KeyError("jetdask-run-x"), Stage.TASK, "error", AttemptKind.FAILED),
        ("a look-alike name", CancelledError(), Stage.TASK, "error", AttemptKind.FAILED),
        ("fetch timed out", TimeoutError(), Stage.RESULT, None, AttemptKind.LOST),
        ("fetch cancelled", concurrent.futures.CancelledError(), Stage.RESULT, None, AttemptKind.LOST),
        ("fetch comm closed", CommClosedError("gone"), Stage.RESULT, None, AttemptKind.LOST),
        ("result unreadable", TypeError("bad bytes"), Stage.RESULT, None, AttemptKind.FAILED),
        ("look-alike on fetch", CancelledError(), Stage.RESULT, None, AttemptKind.FAILED),
        ("inspection's worker died", killed, Stage.INSPECTION, None, AttemptKind.WORKER_LEFT),
        ("inspection cancelled", cancelled, Stage.INSPECTION, None, AttemptKind.WORKER_LEFT),
        ("inspection failed", OSError("cannot open"), Stage.INSPECTION, None, AttemptKind.FAILED),
    ]


@pytest.mark.parametrize("case", range(len(_classify_cases())), ids=[c[0] for c in _classify_cases()])
def test_classify(case):
    name, error, stage, status, kind = _classify_cases()[case]
    assert classify(error, stage, status) == kind


def test_every_class_rule_is_reached():
    """Each (stage, types) rule of CLASSES decides at least one case above."""
    seen = set()
    for _, error, stage, _, kind in _classify_cases():
        for i, (where, types, k) in enumerate(CLASSES):
            if where == stage and error is not None and isinstance(error, types()) and k == kind:
                seen.add(i)
    assert seen == set(range(len(CLASSES)))


@pytest.mark.parametrize("reason,isolated,started,known", [
    (None, False, True, False),                       # nothing said yet: wait
    (Departure.DIED, False, True, True),
    (Departure.RETIRED, True, False, True),
    (Departure.DIED, True, True, False),              # a lone chunk that ran: wait for a memory report
    (Departure.MEMORY_KILL, True, True, True),
])
def test_when_a_departure_is_known_enough_to_decide(reason, isolated, started, known):
    from jetdask.engine.policy import departure_known
    assert departure_known(reason, isolated, started) is known
