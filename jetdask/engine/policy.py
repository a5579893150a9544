"""The failure policy: what an attempt of a chunk was, and what to do after it, as pure functions.

The single decision point of the engine. :func:`classify` maps how an attempt ended (the
exception raised where the chunk ran, or the state and error of the task's future the client
collected) to an :class:`~jetdask.engine.protocol.AttemptKind`, by the exception's type only
(:data:`CLASSES`). ``decide(attempt, history, limits)`` maps what happened to an attempt (its
kind, whether it ran alone on its worker, why its worker left) and the chunk's history in this
run to one :class:`Action`: what to record and where the chunk goes next (its requeue mode). It
does no I/O and holds no state; the loops hand the action to the run's
:class:`~jetdask.engine.recorder.Recorder`, which records it, and queue the chunk as the action
says. :data:`TABLE` lists its rules, each with an example attempt on which ``decide`` gives the
rule's action (checked by the tests; the documentation's failure-policy page is generated
from it).

A batch (several chunks in one task) whose worker left: :func:`batch_attempts` gives the
chunk the worker was running the attempt, and the others "finished" or "not started".
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import random
from typing import Callable

from ..config import default
from ..errors import DiskFullError, FileAccessError, ReservedCounterError, TransientError
from .protocol import ActionKind, AttemptKind, Departure, FailureKind, Requeue, StrEnum

DONE, SPLIT, MEMORY, TRANSIENT, FAILED, CANCELLED, WORKER_LEFT, LOST, STOP = (
    AttemptKind.DONE, AttemptKind.SPLIT, AttemptKind.MEMORY, AttemptKind.TRANSIENT, AttemptKind.FAILED,
    AttemptKind.CANCELLED, AttemptKind.WORKER_LEFT, AttemptKind.LOST, AttemptKind.STOP)
# why a worker left (from the scheduler: see jetdask.engine.departures)
RETIRED, MEMORY_KILL, DIED = Departure.RETIRED, Departure.MEMORY_KILL, Departure.DIED


class Stage(StrEnum):
    """Where an attempt's error was seen (what :func:`classify` is told)."""
    CHUNK = "chunk"              # where the chunk ran (a worker, or the serial loop)
    TASK = "task"                # the client, collecting the chunk task's future
    RESULT = "result"            # the client, fetching a finished task's result
    INSPECTION = "inspection"    # the client, collecting a file's inspection (planning)


def _cancelled() -> tuple[type, ...]:
    return (asyncio.CancelledError, concurrent.futures.CancelledError)   # dask's FutureCancelledError is one


def _killed() -> tuple[type, ...]:
    from distributed import KilledWorker
    return (KilledWorker,)


def _transient() -> tuple[type, ...]:
    return (TransientError, TimeoutError, ConnectionError)


#: How :func:`classify` maps an error, by stage: (stage, the error types, the attempt kind), in
#: the order it tries them; an error of no listed type is ``failed`` (a deterministic error).
#: Types are given as functions returning them (``distributed`` is imported only by the client's
#: stages).
CLASSES: tuple[tuple[Stage, Callable[[], tuple[type, ...]], AttemptKind], ...] = (
    (Stage.CHUNK, lambda: (MemoryError,), MEMORY),
    (Stage.CHUNK, lambda: (DiskFullError, ReservedCounterError), STOP),
    (Stage.CHUNK, _transient, TRANSIENT),
    (Stage.TASK, _killed, WORKER_LEFT),
    (Stage.TASK, lambda: (*_cancelled(), TimeoutError, OSError), CANCELLED),
    (Stage.RESULT, lambda: (*_cancelled(), TimeoutError, OSError), LOST),
    (Stage.INSPECTION, lambda: (*_killed(), *_cancelled()), WORKER_LEFT),
)


def classify(error: BaseException | None, stage: Stage, status: str | None = None) -> AttemptKind:
    """The kind of an attempt that ended with ``error`` (``None``: none) at ``stage``.

    ``status``: the state of the task's future (stage ``task``): ``finished`` without an error is
    ``done`` (a result to fetch), another state without an error ``lost`` (the result went with
    a worker), ``lost`` is ``worker-left`` and ``cancelled`` is ``cancelled`` whatever the error.
    A :class:`~jetdask.errors.FileAccessError` that says it is transient (from the XRootD
    status, never from text) is ``transient``.
    """
    if stage == Stage.TASK:
        if error is None:
            return DONE if status == "finished" else LOST
        if status == "lost":
            return WORKER_LEFT
        if status == "cancelled":
            return CANCELLED if not isinstance(error, _killed()) else WORKER_LEFT
    elif error is None:
        return DONE
    if stage == Stage.CHUNK and isinstance(error, FileAccessError) and not isinstance(error, TransientError):
        return TRANSIENT if error.transient else FAILED
    for where, types, kind in CLASSES:
        if where == stage and isinstance(error, types()):
            return kind
    return FAILED


@dataclasses.dataclass(frozen=True)
class Attempt:
    """What happened to one attempt of a chunk."""
    kind: AttemptKind
    isolated: bool = False    # submitted to run alone on its worker
    started: bool = True      # the worker reported that it started the task
    departure: Departure | str = ""   # for worker-left: why it left


@dataclasses.dataclass(frozen=True)
class History:
    """What the run already knows of the chunk (this attempt not included)."""
    num_entries: int
    transient_failures: int = 0   # retries already spent on transient errors
    crashes: int = 0              # deaths (not for memory) while it ran alone
    unstarted_kills: int = 0      # deaths of its worker before it started


    def counters(self) -> dict[str, int]:
        """The counters spent (non-zero), as the ledger keeps them (``chunks.history``)."""
        return {k: v for k in COUNTERS if (v := getattr(self, k))}


#: The counters of :class:`History` that actions spend.
COUNTERS = ("transient_failures", "crashes", "unstarted_kills")


@dataclasses.dataclass(frozen=True)
class Limits:
    """What the policy may spend on a chunk: ``retries``, the ``split_floor`` (events), the backoff (s).

    The defaults are those jetdask ships (``jetdask.retries``, ``split-floor``, ``retry-backoff``,
    ``retry-backoff-max``); a run passes the values of its configuration."""
    retries: int = dataclasses.field(default_factory=lambda: int(default("retries")))
    split_floor: int = dataclasses.field(default_factory=lambda: int(default("split-floor")))
    backoff: float = dataclasses.field(default_factory=lambda: float(default("retry-backoff")))  # before the 1st retry
    backoff_max: float = dataclasses.field(default_factory=lambda: float(default("retry-backoff-max")))


@dataclasses.dataclass(frozen=True)
class Action:
    """What happens to the chunk: ``kind``, and where it (or its halves) goes next: ``requeue``."""
    kind: ActionKind
    delay: float = 0.0        # retry: seconds to wait before resubmitting
    failure: FailureKind | str = ""   # fail: the ledger's kind
    reason: str = ""          # human-readable why
    spends: str = ""          # the History counter this action adds one to ("" = none)
    requeue: Requeue | None = None    # where the chunk (split: its halves) goes; None: nowhere


@dataclasses.dataclass(frozen=True)
class Row:
    """One rule of the failure policy, in words, with an attempt it covers."""
    outcome: str              # the attempt's outcome
    condition: str            # what else decides ("" = nothing)
    action: str               # what the dispatcher does
    attempt: Attempt          # an example attempt of this rule ...
    history: History          # ... with this history, under Limits()
    kind: ActionKind          # the Action.kind that decide() gives for the example
    failure: FailureKind | str = ""   # and its Action.failure


_LIMITS = Limits()   # the shipped limits, which the rows below are examples of
_BIG, _FLOOR = History(4000), History(_LIMITS.split_floor)

#: The rules of :func:`decide`, in the order it applies them.
TABLE: tuple[Row, ...] = (
    Row("done", "", "record (result and state in one transaction)", Attempt(DONE), _BIG, ActionKind.RECORD),
    Row("stop (no space left for its arrays; a counter the engine owns)", "",
        "stop the run; the chunk stays to do, nothing counted against it", Attempt(STOP), _BIG, ActionKind.STOP),
    Row("split (estimate over budget) or memory (`MemoryError`)", "more events than `split-floor`",
        "split; the halves run first", Attempt(SPLIT), _BIG, ActionKind.SPLIT),
    Row("split or memory", "at `split-floor`", "fail (memory)", Attempt(MEMORY), _FLOOR, ActionKind.FAIL,
        FailureKind.MEMORY),
    Row("transient (I/O, timeout) or cancelled (a lost future)", "retries left",
        "retry after a backoff (exponential, with jitter)", Attempt(TRANSIENT), _BIG, ActionKind.RETRY),
    Row("transient or cancelled", "no retries left", "fail (transient)", Attempt(CANCELLED),
        History(4000, transient_failures=_LIMITS.retries), ActionKind.FAIL, FailureKind.TRANSIENT),
    Row("failed (deterministic error)", "", "fail (error); the failing events are named", Attempt(FAILED), _BIG,
        ActionKind.FAIL, FailureKind.ERROR),
    Row("lost (it ran, and its result went with its worker before it was fetched)", "",
        "rerun; nothing counted against the chunk", Attempt(LOST), _BIG, ActionKind.RERUN),
    Row("worker left: retired (graceful, or it started retiring and then left unannounced)", "",
        "rerun; nothing counted against the chunk", Attempt(WORKER_LEFT, departure=RETIRED), _BIG, ActionKind.RERUN),
    Row("worker died", "the chunk had not started", "rerun once, then run it alone",
        Attempt(WORKER_LEFT, started=False, departure=DIED), _BIG, ActionKind.RERUN),
    Row("worker died or was killed for memory", "the chunk shared the worker",
        "run it alone on one worker (a suspect)", Attempt(WORKER_LEFT, departure=MEMORY_KILL), _BIG,
        ActionKind.ISOLATE),
    Row("worker killed for memory", "the chunk ran alone",
        "split (the halves also alone), or fail (memory) at `split-floor`",
        Attempt(WORKER_LEFT, isolated=True, departure=MEMORY_KILL), _BIG, ActionKind.SPLIT),
    Row("worker died, other reason (pre-emption, node loss)", "the chunk ran alone, crashes left (`retries`)",
        "run it alone again", Attempt(WORKER_LEFT, isolated=True, departure=DIED), _BIG, ActionKind.ISOLATE),
    Row("worker died, other reason", "the chunk ran alone, no crashes left", "fail (crash)",
        Attempt(WORKER_LEFT, isolated=True, departure=DIED), History(4000, crashes=_LIMITS.retries), ActionKind.FAIL,
        FailureKind.CRASH),
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


def departure_known(reason: str | None, isolated: bool, started: bool) -> bool:
    """Whether an attempt whose task erred with its worker can be decided with ``reason`` (why the
    worker left, ``None``: not said yet). A task can err before the scheduler says why its worker
    left (a retirement it gave up is only known then); a lone chunk that ran also waits for a
    memory report, which decides between splitting it and running it alone again."""
    return reason == MEMORY_KILL or (reason is not None and not (isolated and started))


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
        return Action(ActionKind.RECORD)
    if k == STOP:
        return Action(ActionKind.STOP, reason="the run cannot go on")
    if k in (SPLIT, MEMORY):
        return _split_or_fail(history, limits, "memory estimate over budget" if k == SPLIT else "MemoryError",
                              Requeue.FRONT)
    if k in (TRANSIENT, CANCELLED):
        if history.transient_failures < limits.retries:
            n = history.transient_failures + 1
            return Action(ActionKind.RETRY, delay=backoff_delay(n, limits.backoff, limits.backoff_max, rng),
                          reason=f"transient error, retry {n}/{limits.retries}", spends="transient_failures",
                          requeue=Requeue.DELAY)
        return Action(ActionKind.FAIL, failure=FailureKind.TRANSIENT,
                      reason=f"still failing after {limits.retries} retries")
    if k == FAILED:
        return Action(ActionKind.FAIL, failure=FailureKind.ERROR, reason="deterministic error")
    if k == LOST:
        return Action(ActionKind.RERUN, reason="its result went with its worker", requeue=Requeue.FRONT)
    if k == WORKER_LEFT:
        return _worker_left(attempt, history, limits)
    raise ValueError(f"unknown attempt kind {k!r}")


def _split_or_fail(history: History, limits: Limits, why: str, requeue: Requeue) -> Action:
    if history.num_entries > limits.split_floor and history.num_entries > 1:
        return Action(ActionKind.SPLIT, reason=why, requeue=requeue)
    return Action(ActionKind.FAIL, failure=FailureKind.MEMORY,
                  reason=f"{why}; chunk of {history.num_entries} events at the split floor ({limits.split_floor})")


def _worker_left(attempt: Attempt, history: History, limits: Limits) -> Action:
    def rerun(reason: str, spends: str = "") -> Action:
        return Action(ActionKind.RERUN, reason=reason, spends=spends, requeue=Requeue.FRONT)

    def alone(reason: str, spends: str = "") -> Action:
        return Action(ActionKind.ISOLATE, reason=reason, spends=spends, requeue=Requeue.ISOLATE)

    if attempt.departure == RETIRED:
        return rerun("its worker retired")
    if not attempt.started:
        if attempt.isolated or history.unstarted_kills < 1:
            return (alone if attempt.isolated else rerun)("its worker died before it started", "unstarted_kills")
        return alone("its worker died twice before it was seen to start")
    if not attempt.isolated:
        return alone("its worker died while it ran beside other chunks")
    if attempt.departure == MEMORY_KILL:   # the halves of a lone memory culprit run alone too
        return _split_or_fail(history, limits, "its worker was killed for memory while it ran alone", Requeue.ISOLATE)
    if history.crashes < limits.retries:
        return alone("its worker died (not for memory) while it ran alone", "crashes")
    return Action(ActionKind.FAIL, failure=FailureKind.CRASH,
                  reason=f"its worker died {history.crashes + 1} times while it ran alone (not for memory)")
