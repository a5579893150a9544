"""Fetching finished tasks' results without holding up the dispatcher's loop.

A task's result lives on the worker that ran it until the client fetches it. If that
worker is killed first, the scheduler puts the task back to run again, pinned to the
dead worker, and a blocking ``future.result()`` waits its whole timeout: a loop that
fetched in line stopped submitting for a minute per such result (measured: a churn run
of short chunks took 5.6x a clean one). Here a few threads fetch results and put them on
the dispatcher's queue (``(Event.FETCHED, key)``); what a failed fetch means is the failure
policy's to say (:func:`jetdask.engine.policy.classify`, stage ``result``); when a worker dies, the results still
being fetched from it are given up at once (their futures cancelled) and the dispatcher
reruns those chunks.
"""
from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..chunk import Chunk
from .protocol import Event

RESULT_TIMEOUT = 60.0  # seconds to fetch a finished task's result from its worker


@dataclasses.dataclass
class Flight:
    """A task the dispatcher sent: what it runs, where, and how far the worker said it got."""
    chunks: list[Chunk]          # one chunk when isolated; a batch of one file otherwise
    isolated: bool
    worker: str
    future: Any
    started: bool = False
    running: int = 0             # index in ``chunks`` of the chunk the worker reported it started last


class Fetcher:
    """Results being fetched, by task key: ``start`` one, ``claim`` it when its report arrives."""

    def __init__(self, events, threads: int = 4, timeout: float = RESULT_TIMEOUT):
        self.events = events
        self.timeout = timeout
        self.pending: dict[str, Any] = {}        # task key -> the dispatcher's Flight
        self.results: dict[str, tuple] = {}      # task key -> (outcomes, error)
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="jetdask-fetch")

    def __len__(self) -> int:
        return len(self.pending)

    def start(self, flight) -> None:
        key = flight.future.key
        self.pending[key] = flight
        self._pool.submit(self._fetch, key, flight.future)

    def _fetch(self, key, future) -> None:
        got: tuple[Any, BaseException | None]
        try:
            got = (future.result(timeout=self.timeout), None)
        except BaseException as err:  # noqa: BLE001 - reported to the loop, which decides
            got = (None, err)
        self.results[key] = got
        self.events.put((Event.FETCHED, key))

    def claim(self, key):
        """``(flight, outcomes, error)`` of a fetch that ended, or None if it was given up."""
        got = self.results.pop(key, (None, None))
        flight = self.pending.pop(key, None)
        if flight is None:
            return None
        flight.future.release()
        return flight, got[0], got[1]

    def give_up(self, worker: str | None = None) -> list:
        """Stop fetching from ``worker`` (every worker: None); the flights whose chunks must run again."""
        out = [f for f in self.pending.values() if worker is None or f.worker == worker]
        for f in out:
            del self.pending[f.future.key]
            f.future.cancel()
        return out

    def close(self) -> None:
        self.give_up()
        self._pool.shutdown(wait=False, cancel_futures=True)
