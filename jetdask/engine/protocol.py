"""The words the engine's parts exchange, one definition each.

Every value is a string-valued enum member (:class:`StrEnum`): it *is* its string, so what
goes into SQLite (chunk and file states, failure kinds), JSON (``metadata.json``, ``jetdask
status --json``) and dask's event topics (worker actions, which arrive back as plain strings)
stays text, and a plain string read back compares equal to its member
(``ChunkState("done") is ChunkState.DONE``, ``"done" == ChunkState.DONE``).
"""
from __future__ import annotations

import enum


class StrEnum(str, enum.Enum):
    """A string-valued enum whose members print and format as their value (``enum.StrEnum`` of
    Python 3.11, also on 3.10)."""

    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, spec: str) -> str:
        return str.__format__(str.__str__(self), spec)


class ChunkState(StrEnum):
    """A chunk's state in the ledger (``chunks.state``)."""
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SPLIT = "split"       # replaced by its halves


#: Chunk states that are neither a result nor replaced by their halves: what a run still has to
#: do, and what keeps a file from being folded (:mod:`jetdask.engine.store`).
OPEN_STATES: tuple[ChunkState, ...] = (ChunkState.PENDING, ChunkState.RUNNING, ChunkState.FAILED)
#: Chunk states that a late or duplicate outcome must never change.
SETTLED_STATES: tuple[ChunkState, ...] = (ChunkState.DONE, ChunkState.SPLIT)


class FileState(StrEnum):
    """A file's state in the ledger (``files.state``)."""
    OK = "ok"
    FAILED = "failed"            # could not be planned (its reason kept)
    DUPLICATE = "duplicate"      # another file of its data set under a second path, read as its replica


class AttemptKind(StrEnum):
    """What happened to one attempt of a chunk (a task's ``Outcome.status`` on the worker, or what
    the client learnt of the task); :func:`jetdask.engine.policy.classify` maps errors to it."""
    DONE = "done"
    SPLIT = "split"              # the memory estimate is over the budget: nothing was read
    MEMORY = "memory"            # MemoryError while it ran
    TRANSIENT = "transient"      # a retryable error (I/O, a timeout)
    FAILED = "failed"            # a deterministic error
    CANCELLED = "cancelled"      # its task's future was cancelled or could not be collected
    WORKER_LEFT = "worker-left"  # its worker left while it was in flight
    LOST = "lost"                # it ran, and its result was gone before the client fetched it
    STOP = "stop"                # nothing wrong with it, but the run cannot go on (disk full, ...)


class Departure(StrEnum):
    """Why a worker left (:mod:`jetdask.engine.departures`)."""
    RETIRED = "retired"
    MEMORY_KILL = "memory"
    DIED = "died"


class ActionKind(StrEnum):
    """What the policy decides for a chunk after an attempt (:class:`jetdask.engine.policy.Action`)."""
    RECORD = "record"
    SPLIT = "split"
    RETRY = "retry"
    RERUN = "rerun"
    ISOLATE = "isolate"
    FAIL = "fail"
    STOP = "stop"


class FailureKind(StrEnum):
    """Why a chunk failed (the ledger's ``chunks.kind``)."""
    MEMORY = "memory"
    TRANSIENT = "transient"
    ERROR = "error"
    CRASH = "crash"


class Requeue(StrEnum):
    """Where a chunk to run again goes in the loop's queues."""
    FRONT = "front"        # next, on its file's worker
    BACK = "back"          # after what is waiting
    DELAY = "delay"        # after the action's delay (a retry's backoff)
    ISOLATE = "isolate"    # alone on one worker (a suspect)


class Event(StrEnum):
    """What the dispatcher's loop receives on its queue."""
    FUTURE = "future"      # a task's future finished
    FETCHED = "fetched"    # a finished task's result was fetched (or could not be)
    STARTED = "started"    # a worker reported a chunk task started
    WORKER = "worker"      # a worker joined, is ready, was killed for memory, or left
    PLANNED = "planned"    # a file's inspection returned


class WorkerAction(StrEnum):
    """The ``action`` of a worker message on the run's topics."""
    JOIN = "join"
    READY = "ready"
    MEMORY_KILL = "memory-kill"
    LEAVE = "leave"


def sql_list(values) -> str:
    """``'a', 'b'``: enum values written into an SQL ``IN (...)``."""
    return ", ".join(f"'{v}'" for v in values)
