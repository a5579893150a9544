"""The failure policy: what to do after one attempt of a chunk, as a pure function.

``decide(attempt, history, limits)`` maps what happened to an attempt (its outcome
kind, whether it ran alone on its worker, why its worker left) and the chunk's
history in this run to one :class:`Action`. It does no I/O and holds no state;
the dispatcher applies the action (ledger, queues, timers). :data:`TABLE` lists its rules,
each with an example attempt on which ``decide`` gives the rule's action (checked by the
tests; the documentation's failure-policy page is generated from it).

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
    """What the policy may spend on a chunk: ``retries``, the ``split_floor`` (events), the backoff (s)."""
    retries: int = 3
    split_floor: int = 500
    backoff: float = 1.0      # seconds before the first retry
    backoff_max: float = 60.0


@dataclasses.dataclass(frozen=True)
class Action:
    """What the dispatcher does with the chunk: ``kind`` (record, split, retry, rerun, isolate, fail)."""
    kind: str                 # record | split | retry | rerun | isolate | fail
    delay: float = 0.0        # retry: seconds to wait before resubmitting
    failure: str = ""         # fail: the ledger's kind (memory, transient, error, crash)
    reason: str = ""          # human-readable why
    spends: str = ""          # the History counter this action adds one to ("" = none)


@dataclasses.dataclass(frozen=True)
class Row:
    """One rule of the failure policy, in words, with an attempt it covers."""
    outcome: str              # the attempt's outcome
    condition: str            # what else decides ("" = nothing)
    action: str               # what the dispatcher does
    attempt: Attempt          # an example attempt of this rule ...
    history: History          # ... with this history, under Limits()
    kind: str                 # the Action.kind that decide() gives for the example
    failure: str = ""         # and its Action.failure


_BIG, _FLOOR = History(4000), History(Limits.split_floor)

#: The rules of :func:`decide`, in the order it applies them.
TABLE: tuple[Row, ...] = (
    Row("done", "", "record (result and state in one transaction)", Attempt(DONE), _BIG, "record"),
    Row("split (estimate over budget) or memory (`MemoryError`)", "more events than `split-floor`",
        "split; the halves run first", Attempt(SPLIT), _BIG, "split"),
    Row("split or memory", "at `split-floor`", "fail (memory)", Attempt(MEMORY), _FLOOR, "fail", "memory"),
    Row("transient (I/O, timeout) or cancelled (a lost future)", "retries left",
        "retry after a backoff (exponential, with jitter)", Attempt(TRANSIENT), _BIG, "retry"),
    Row("transient or cancelled", "no retries left", "fail (transient)", Attempt(CANCELLED),
        History(4000, transient_failures=Limits.retries), "fail", "transient"),
    Row("failed (deterministic error)", "", "fail (error); the failing events are named", Attempt(FAILED), _BIG,
        "fail", "error"),
    Row("worker left: retired (graceful, or it started retiring and then left unannounced)", "",
        "rerun; nothing counted against the chunk", Attempt(WORKER_LEFT, departure=RETIRED), _BIG, "rerun"),
    Row("worker died", "the chunk had not started", "rerun once, then run it alone",
        Attempt(WORKER_LEFT, started=False, departure=DIED), _BIG, "rerun"),
    Row("worker died or was killed for memory", "the chunk shared the worker",
        "run it alone on one worker (a suspect)", Attempt(WORKER_LEFT, departure=MEMORY_KILL), _BIG, "isolate"),
    Row("worker killed for memory", "the chunk ran alone",
        "split (the halves also alone), or fail (memory) at `split-floor`",
        Attempt(WORKER_LEFT, isolated=True, departure=MEMORY_KILL), _BIG, "split"),
    Row("worker died, other reason (pre-emption, node loss)", "the chunk ran alone, crashes left (`retries`)",
        "run it alone again", Attempt(WORKER_LEFT, isolated=True, departure=DIED), _BIG, "isolate"),
    Row("worker died, other reason", "the chunk ran alone, no crashes left", "fail (crash)",
        Attempt(WORKER_LEFT, isolated=True, departure=DIED), History(4000, crashes=Limits.retries), "fail", "crash"),
)


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
    """The action after ``attempt`` of a chunk with ``history``: the rules of :data:`TABLE`, in order."""
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
