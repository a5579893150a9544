"""The failure policy on its own: a table of (attempt, history) -> action."""
from __future__ import annotations

import random

import pytest

from jetdask.engine.policy import Action, Attempt, History, Limits, backoff_delay, decide, spend

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
