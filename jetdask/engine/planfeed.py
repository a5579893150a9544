"""Files planned while the run goes: a file's chunks start as soon as its inspection returns.

With hundreds of files no chunk waits for the slowest open of the fileset (an XRootD
server that answers late, a busy disk): the runner submits every file's inspection
(:func:`jetdask.engine.planning.submit_inspections`) before the dispatcher sets up, and
the dispatcher's loop receives each as it finishes (``Event.PLANNED`` events, fetched
off the loop by two threads). For each file the feed

* records the file and its chunks in the ledger in one transaction, so a run that stops
  while planning leaves only complete files behind, and the next run plans the rest;
* gives the dispatcher the chunks, the worker that has the file open now (its home) and
  the time the open took;
* inspects a file again, on any worker, when the worker inspecting it died or left (dask
  keeps a task pinned to a departed worker waiting for good when no worker was left at that
  moment, even with ``allow_other_workers``), at most ``tries`` times; after that, or when
  the file cannot be read, records the file as failed with its reason (``jetdask resubmit``
  tries it again).

When the last file is in, ``complete`` (the runner) writes the plan's summary and marks
planning complete in the ledger.
"""
from __future__ import annotations

import collections
import dataclasses
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from ..chunk import Chunk
from . import planning, policy
from .fetch import RESULT_TIMEOUT
from .protocol import AttemptKind, Event


@dataclasses.dataclass
class Planned:
    """One file's part, for the dispatcher."""
    path: str
    chunks: list[Chunk]
    home: str | None             # the worker that has the file open
    open_seconds: float = 0.0    # what the open took there


def worker_lost(err: BaseException) -> bool:
    """The inspection's worker died or left (dask cancels or kills the task): inspect again."""
    return policy.classify(err, policy.Stage.INSPECTION) == AttemptKind.WORKER_LEFT


class PlanFeed:
    """The inspections in flight, by entry index; see the module docstring."""

    def __init__(self, client, entries: list[tuple], chunk_size: int, *, record: Callable, complete: Callable,
                 columns=None, memory_limit: int | None = None, tries: int = 3):
        self.client = client
        self.entries = entries          # (dataset, (path, tree, replicas), pattern), planning.plan_entries
        self.chunk_size = chunk_size
        self.record = record            # (files, failures, chunks) -> chunks recorded: one ledger transaction
        self.complete = complete        # (Plan) -> None: every file is in
        self.tries = tries
        self.kw = planning.inspection_kwargs(columns, memory_limit)
        self.plan = planning.Plan([], [], [], chunk_size)
        self.futures: dict[int, Any] = {}
        self.on: collections.Counter = collections.Counter()   # worker -> inspections sent to it, unfinished
        self.target: dict[int, str | None] = {}
        self.lost: collections.Counter = collections.Counter()  # entry -> times its worker died
        self.events: Any = None
        self._pool = ThreadPoolExecutor(2, thread_name_prefix="jetdask-plan")
        sent = planning.submit_inspections(client, [spec for _, spec, _ in entries], **self.kw)
        for i, (fut, w) in enumerate(sent):
            self._track(i, fut, w)

    def __len__(self) -> int:
        """Files still being inspected."""
        return len(self.futures)

    def planning_on(self, worker: str) -> bool:
        """``worker`` was sent inspections it has not finished (its thread is busy opening files)."""
        return self.on[worker] > 0

    def attach(self, events) -> None:
        """Report each finished inspection on ``events`` (the dispatcher's queue)."""
        self.events = events
        for i, fut in list(self.futures.items()):
            self._watch(i, fut)

    def _track(self, i: int, fut, worker) -> None:
        self.futures[i] = fut
        self.target[i] = worker
        self.on[worker] += 1
        if self.events is not None:
            self._watch(i, fut)

    def _watch(self, i: int, fut) -> None:
        fut.add_done_callback(lambda f: self._report(i, f))

    def _report(self, i: int, fut) -> None:
        """A finished inspection handed to a pool thread; once the feed is closed (the run stopped
        before planning ended: a refused analysis, an interrupt) nothing waits for it."""
        try:
            self._pool.submit(self._fetch, i, fut)
        except RuntimeError:   # the pool is shut down: the feed was closed
            pass

    def _fetch(self, i: int, fut) -> None:
        """In a pool thread: the inspection's result (or error) onto the dispatcher's queue."""
        try:
            got = fut.result(timeout=RESULT_TIMEOUT)
        except BaseException as err:  # noqa: BLE001 - reported to the loop, which decides
            got = err
        self.events.put((Event.PLANNED, (i, fut, got)))

    def take(self, item) -> Planned | None:
        """A reported inspection: the file's chunks recorded and returned (``None``: inspected again,
        or a report of an inspection already replaced)."""
        i, fut, got = item
        if self.futures.get(i) is not fut:
            return None
        self._forget(i)
        if isinstance(got, BaseException):
            if worker_lost(got) and self._resend(i):
                return None
            got = self._error(i, f"{type(got).__name__}: {got}")
        return self._planned(i, got)

    def worker_left(self, worker: str) -> list[Planned]:
        """``worker`` left: the inspections sent to it go again to any worker (or fail, after ``tries``)."""
        out = []
        for i in [i for i, w in self.target.items() if w == worker]:
            self._forget(i).cancel()
            if not self._resend(i):
                out.append(self._planned(i, self._error(i, f"its worker {worker} left")))
        return out

    def _forget(self, i: int):
        fut = self.futures.pop(i)
        self.on[self.target.pop(i)] -= 1
        fut.release()
        return fut

    def _resend(self, i: int) -> bool:
        if self.lost[i] >= self.tries:
            return False
        self.lost[i] += 1
        self._track(i, self.client.submit(planning._inspect, *self.entries[i][1], pure=False, **self.kw), None)
        return True

    def _error(self, i: int, reason: str) -> dict:
        path, tree, replicas = self.entries[i][1]
        return {"path": path, "tree": tree, "replicas": list(replicas),
                "error": f"the file's inspection failed: {reason}"}

    def _planned(self, i: int, got: dict) -> Planned:
        ds, spec, pattern = self.entries[i]
        info, failure, chunks = planning.planned_file(ds, got, pattern, self.chunk_size)
        chunks = self.record([info] if info else [], [failure] if failure else [], chunks)  # a duplicate: none
        self.plan.add(info, failure, chunks)
        if not self.futures:
            self.complete(self.plan)
        return Planned(spec[0], chunks, got.get("worker"), float(got.get("open_seconds") or 0.0))

    def close(self) -> None:
        """The run ended (or stopped): cancel what is still being inspected."""
        for fut in self.futures.values():
            fut.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)
