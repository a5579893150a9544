"""The failure policy: what to do after one attempt of a chunk, as a pure function.

``decide(attempt, history, limits)`` maps what happened to an attempt (its outcome
kind, whether it ran alone on its worker, why its worker left) and the chunk's
history in this run to one :class:`Action`. It does no I/O and holds no state;
the dispatcher applies the action (ledger, queues, timers). The table, also in
the README:

=========================  ===========================  ==========================================
outcome                    condition                    action
=========================  ===========================  ==========================================
done                                                    record
split / memory             events > floor               split (halves run first)
split / memory             at the floor                 fail (memory)
transient                  retries left                 retry after backoff (exponential, jitter)
transient                  no retries left              fail (transient)
failed                                                  fail (error)
cancelled / lost future    retries left                 retry after backoff
worker left: retired       (graceful, any)              rerun (no attempt counted against it)
worker died                not started                  rerun once, then isolate
worker died                shared the worker            isolate (alone on one worker)
worker died for memory     ran alone                    split, or fail (memory) at the floor
worker died, other reason  ran alone, crashes left      isolate again (pre-emption, node loss)
worker died, other reason  ran alone, no crashes left   fail (crash)
=========================  ===========================  ==========================================

A batch (several chunks in one task) whose worker left: :func:`batch_attempts` gives the
chunk the worker was running the attempt, and the others "finished" or "not started".
"""
from __future__ import annotations

import dataclasses
import random

DONE, SPLIT, MEMORY, TRANSIENT, FAILED, CANCELLED, WORKER_LEFT = (
    "done", "split", "memory", "transient", "failed", "cancelled", "worker-left")
# why a worker left (from the scheduler: see jetdask.engine.departures)
RETIRED, MEMORY_KILL, DIED = "retired", "memory", "died"


@dataclasses.dataclass(frozen=True)
class Attempt:
    """What happened to one attempt of a chunk."""
    kind: str                 # done | split | memory | transient | failed | cancelled | worker-left
    isolated: bool = False    # submitted to run alone on its worker
    started: bool = True      # the worker reported that it started the task
    departure: str = ""       # for worker-left: retired | memory | died


@dataclasses.dataclass(frozen=True)
class History:
    """What the run already knows of the chunk (this attempt not included)."""
    num_entries: int
    transient_failures: int = 0   # retries already spent on transient errors
    crashes: int = 0              # deaths (not for memory) while it ran alone
    unstarted_kills: int = 0      # deaths of its worker before it started


@dataclasses.dataclass(frozen=True)
class Limits:
    retries: int = 3
    split_floor: int = 500
    backoff: float = 1.0      # seconds before the first retry
    backoff_max: float = 60.0


@dataclasses.dataclass(frozen=True)
class Action:
    kind: str                 # record | split | retry | rerun | isolate | fail
    delay: float = 0.0        # retry: seconds to wait before resubmitting
    failure: str = ""         # fail: the ledger's kind (memory, transient, error, crash)
    reason: str = ""          # human-readable why
    spends: str = ""          # the History counter this action adds one to ("" = none)


def batch_attempts(attempt: Attempt, n: int, running: int) -> list[Attempt]:
    """The attempt of each chunk of a batch of ``n`` whose worker left while it ran chunk ``running``.

    Only the chunk it was running carries the attempt as it is (a suspect if the worker
    died); those before it had finished there (their results died with the worker: rerun,
    nothing counted against them), those after it had not started.
    """
    if attempt.kind != WORKER_LEFT or not attempt.started or n == 1:
        return [attempt] * n
    return [dataclasses.replace(attempt, departure=RETIRED) if i < running
            else attempt if i == running else dataclasses.replace(attempt, started=False) for i in range(n)]


def backoff_delay(n: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Delay before retry ``n`` (1-based): exponential, capped, with jitter in [0.5, 1] of it."""
    if base <= 0:
        return 0.0
    full = min(cap, base * 2 ** max(0, n - 1))
    return full * (0.5 + 0.5 * (rng or random).random())


def spend(history: History, action: Action) -> History:
    """The chunk's history after ``action`` (the counter it spends, plus one)."""
    if not action.spends:
        return history
    return dataclasses.replace(history, **{action.spends: getattr(history, action.spends) + 1})


def decide(attempt: Attempt, history: History, limits: Limits, rng: random.Random | None = None) -> Action:
    k = attempt.kind
    if k == DONE:
        return Action("record")
    if k in (SPLIT, MEMORY):
        return _split_or_fail(history, limits, "memory estimate over budget" if k == SPLIT else "MemoryError")
    if k in (TRANSIENT, CANCELLED):
        if history.transient_failures < limits.retries:
            n = history.transient_failures + 1
            return Action("retry", delay=backoff_delay(n, limits.backoff, limits.backoff_max, rng),
                          reason=f"transient error, retry {n}/{limits.retries}", spends="transient_failures")
        return Action("fail", failure="transient", reason=f"still failing after {limits.retries} retries")
    if k == FAILED:
        return Action("fail", failure="error", reason="deterministic error")
    if k == WORKER_LEFT:
        return _worker_left(attempt, history, limits)
    raise ValueError(f"unknown attempt kind {k!r}")


def _split_or_fail(history: History, limits: Limits, why: str) -> Action:
    if history.num_entries > limits.split_floor and history.num_entries > 1:
        return Action("split", reason=why)
    return Action("fail", failure="memory",
                  reason=f"{why}; chunk of {history.num_entries} events at the split floor ({limits.split_floor})")


def _worker_left(attempt: Attempt, history: History, limits: Limits) -> Action:
    if attempt.departure == RETIRED:
        return Action("rerun", reason="its worker retired")
    if not attempt.started:
        if attempt.isolated or history.unstarted_kills < 1:
            return Action("rerun" if not attempt.isolated else "isolate",
                          reason="its worker died before it started", spends="unstarted_kills")
        return Action("isolate", reason="its worker died twice before it was seen to start")
    if not attempt.isolated:
        return Action("isolate", reason="its worker died while it ran beside other chunks")
    if attempt.departure == MEMORY_KILL:
        return _split_or_fail(history, limits, "its worker was killed for memory while it ran alone")
    if history.crashes < limits.retries:
        return Action("isolate", reason="its worker died (not for memory) while it ran alone", spends="crashes")
    return Action("fail", failure="crash",
                  reason=f"its worker died {history.crashes + 1} times while it ran alone (not for memory)")
