"""What a run records of its chunks' attempts: one object both loops call.

The dispatcher (:mod:`jetdask.engine.dispatcher`) and the serial loop of the
:class:`~jetdask.engine.runner.Runner` schedule; the :class:`Recorder` keeps what is recorded:

* the ledger: a new attempt when a chunk is sent (:meth:`Recorder.start`), its chunks back to
  pending when a run stops with them in flight (:meth:`Recorder.unstart`), and each attempt's
  outcome (:meth:`Recorder.settle`): the result, the split, the failure with its reason;
* each chunk's retry history (:class:`jetdask.engine.policy.History`), kept in the ledger as
  it is spent, and read back when a run resumes: a resumed run goes on with what each chunk
  already spent (``jetdask resubmit`` gives failed chunks a full budget again);
* the run's counts (``stats``: done, split, retried, rerun, suspects, failed, tasks, workers
  that left by reason) and the progress bar.

:meth:`Recorder.settle` asks the failure policy (:func:`jetdask.engine.policy.decide`) for the
action, records it, and returns it with the chunks the loop queues as the action's ``requeue``
says (the chunk itself, its halves, or none).
"""
from __future__ import annotations

import collections
import random
from typing import Callable

from ..chunk import Chunk
from . import policy
from .ledger import Ledger
from .protocol import ActionKind, AttemptKind, FailureKind


class Recorder:
    """The run's records of its chunks (see the module docstring)."""

    def __init__(self, ledger: Ledger, limits: policy.Limits, progress, stats: collections.Counter | None = None,
                 memory_text: Callable[[], str] = lambda: "limit unknown", rng: random.Random | None = None):
        self.ledger = ledger
        self.limits = limits
        self.progress = progress             # the run's Progress (update, split)
        self.stats = stats if stats is not None else collections.Counter()
        self.memory_text = memory_text       # the workers' memory limits, for a memory failure's message
        self.rng = rng or random.Random()
        self._spent: dict[str, dict[str, int]] = ledger.histories()   # chunk id -> counters spent

    # -- attempts sent and taken back ----------------------------------------------------------
    def start(self, chunks: list[Chunk]) -> list[int]:
        """Record a new attempt of each chunk (one transaction); their numbers (part of the task key)."""
        self.stats["tasks"] += 1
        return self.ledger.mark_running(chunks)

    def unstart(self, chunks: list[Chunk]) -> None:
        """Chunks sent but not settled when the run stops: pending again (never a done one)."""
        self.ledger.reset_chunks([c.id for c in chunks])

    def history(self, chunk: Chunk) -> policy.History:
        return policy.History(chunk.num_entries, **self._spent.get(chunk.id, {}))

    def worker_left(self, reason: str) -> None:
        """A worker left the run (``reason``: a :class:`~jetdask.engine.protocol.Departure`)."""
        self.stats[f"workers_{reason}"] += 1

    # -- an attempt's outcome ----------------------------------------------------------------------
    def settle(self, chunk: Chunk, attempt: policy.Attempt, out=None, error_type: str = "",
               message: str = "") -> tuple[policy.Action, list[Chunk]]:
        """The policy's action after ``attempt`` of ``chunk``, recorded; with the chunks to queue.

        ``out``: the task's :class:`~jetdask.engine.task.Outcome` when it returned one;
        ``error_type``, ``message``: what the ledger says of a failure seen by the client (for a
        worker that left: which, and why). A ``stop`` outcome (no space left, a counter the engine
        owns) is not the chunk's failure: the chunk stays to do and its error is raised.
        """
        action = policy.decide(attempt, self.history(chunk), self.limits, self.rng)
        if action.spends:
            spent = policy.spend(self.history(chunk), action).counters()
            self._spent[chunk.id] = spent
            self.ledger.set_history(chunk.id, spent)
        if out is not None:
            error_type, message = error_type or out.error_type, message or out.message
        if attempt.kind == AttemptKind.WORKER_LEFT and message:
            message = f"{message}: {action.reason}"
        return action, self._record(chunk, attempt, action, out, error_type, message)

    def _record(self, chunk: Chunk, attempt: policy.Attempt, action: policy.Action, out, error_type: str,
                message: str) -> list[Chunk]:
        k = action.kind
        if k == ActionKind.RECORD:
            # a worker sends its result encoded (histcodec): stored as is, not decoded here
            if self.ledger.mark_done(chunk, out, out.blob or out.result):   # False: a late duplicate
                self.stats["done"] += 1
                self.progress.update(chunk.num_entries, done=True)
            return []
        if k == ActionKind.STOP:
            self.unstart([chunk])
            raise out.stop
        if k == ActionKind.SPLIT:
            children = chunk.split(2)
            self.ledger.mark_split(chunk, children, message or action.reason)
            self.stats["split"] += 1
            self.progress.split(len(children))
            return children
        if k == ActionKind.FAIL:
            self.ledger.mark_failed(chunk, action.failure, error_type or action.failure,
                                    self._failure_text(chunk, attempt, action, message),
                                    out.traceback if out else "", out)
            self.stats["failed"] += 1
            self.progress.update(chunk.num_entries, done=False)
            return []
        self.stats[_COUNTED[k]] += 1
        return [chunk]

    def _failure_text(self, chunk: Chunk, attempt: policy.Attempt, action: policy.Action, message: str) -> str:
        text = message or action.reason
        if action.failure == FailureKind.MEMORY and attempt.kind == AttemptKind.WORKER_LEFT:
            return (f"the worker process was killed for memory while running this chunk alone "
                    f"({self.memory_text()}); {chunk.num_entries} events is at the split floor "
                    f"({self.limits.split_floor}); give workers more memory or lower jetdask.split-floor")
        if action.failure == FailureKind.MEMORY:
            return f"{text}; {action.reason}; lower jetdask.split-floor or give workers more memory"
        if action.failure == FailureKind.TRANSIENT and action.reason not in text:
            return f"{text} ({action.reason})"
        return text


# the stats key each action that runs the chunk again counts under
_COUNTED = {ActionKind.RETRY: "retried", ActionKind.RERUN: "rerun", ActionKind.ISOLATE: "suspects"}
