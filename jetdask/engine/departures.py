"""Why workers come and go, learnt from the scheduler (not by polling a worker list).

:class:`WorkerWatch` is a scheduler plugin. It reads the scheduler's own events —
``remove-worker`` (with ``expected``: a graceful retirement, e.g. ``lifetime``,
adaptive scale-down, ``retire_workers``), a worker's status change to
``closing_gracefully`` (it started retiring) and the nanny's ``worker-restart-memory``
(the nanny killed the worker for exceeding its memory limit) — and publishes one
message per worker joining or leaving on the topic ``jetdask-workers``, with the
reason (:func:`departure_reason`): ``retired``, ``memory`` or ``died``. A worker that
started retiring and then left without the scheduler calling it expected (its
retirement was given up, e.g. two workers whose ``lifetime`` ended together had nowhere
to move their results, and each closed anyway) retired: its chunks are rerun, never
suspected; a worker that started retiring more than ``retire_window`` (30 s) before it
left without notice died. It also makes one worker death err a chunk task at once
(``KilledWorker``, :meth:`WorkerWatch.transition`): jetdask counts the deaths of each chunk
itself. That is set per task, never through the scheduler's ``allowed-failures``, which every
task of every user of a shared scheduler goes by. :class:`WorkerEvents` subscribes the
client to it and to ``jetdask-started`` (sent by the worker plugin when a chunk task
starts executing) and hands the messages to the dispatcher through a queue.
"""
from __future__ import annotations

import logging
import queue
import time

from distributed.diagnostics.plugin import SchedulerPlugin

from .protocol import Departure, Event, WorkerAction

log = logging.getLogger(__name__)

TOPIC = "jetdask-workers"
STARTED = "jetdask-started"
READY = "jetdask-ready"
PLUGIN_NAME = "jetdask-worker-watch"
MEMORY_EVENT = "worker-restart-memory"


RETIRING = "closing_gracefully"
CHUNK_PREFIX = "jetdask-"   # the key of every chunk task (the dispatcher's)


def departure_reason(expected: bool, memory_killed: bool, was_retiring: bool) -> Departure:
    """Why a worker left: the nanny's memory kill first (a retiring worker can still run out
    of memory), then a retirement (the scheduler's ``expected``, or a worker that had started
    retiring), else it died."""
    if memory_killed and not expected:
        return Departure.MEMORY_KILL
    if expected or was_retiring:
        return Departure.RETIRED
    return Departure.DIED


class WorkerWatch(SchedulerPlugin):
    """Publishes joins and departures with their reason on :data:`TOPIC`."""

    name = PLUGIN_NAME

    def __init__(self, memory_window: float = 30.0, retire_window: float = 30.0):
        self.memory_window = memory_window
        self.retire_window = retire_window

    async def start(self, scheduler) -> None:
        self.scheduler = scheduler
        self.memory_kills: dict[str, float] = {}
        self.retiring: dict[str, float] = {}   # worker -> when it started retiring

    def transition(self, key, start, finish, *args, **kwargs) -> None:
        """A chunk task sent to a worker: its next death there is one too many (``KilledWorker``
        at once: one kill per bisection level, not four). The mark lives with the task and goes
        with it; other tasks, and the scheduler's own setting, are left as they are."""
        if finish == "processing" and isinstance(key, str) and key.startswith(CHUNK_PREFIX):
            ts = self.scheduler.tasks.get(key)
            if ts is not None and ts.suspicious < self.scheduler.allowed_failures:
                ts.suspicious = self.scheduler.allowed_failures

    def add_worker(self, scheduler, worker: str) -> None:
        ws = scheduler.workers.get(worker)
        scheduler.log_event(TOPIC, {"action": WorkerAction.JOIN.value, "worker": worker,
                                    "nthreads": int(ws.nthreads) if ws is not None else 1})

    def log_event(self, topic, msg) -> None:
        if not isinstance(msg, dict):
            return
        if msg.get("action") == "worker-status-change" and isinstance(topic, str):
            # kept when the status goes back to running: a retirement that is given up sets it
            # back just before the worker closes anyway (``lifetime``)
            if msg.get("status") == RETIRING:
                self.retiring[topic] = time.time()
        elif topic == MEMORY_EVENT and msg.get("worker"):
            self.memory_kills[msg["worker"]] = time.time()
            self.scheduler.log_event(TOPIC, {"action": WorkerAction.MEMORY_KILL.value, "worker": msg["worker"],
                                             "rss": msg.get("rss")})
        elif topic == "all" and msg.get("action") == "remove-worker":
            worker, now, expected = str(msg.get("worker")), time.time(), bool(msg.get("expected"))
            killed = self.memory_kills.pop(worker, None)
            began = self.retiring.pop(worker, None)
            reason = departure_reason(expected, killed is not None and now - killed < self.memory_window,
                                      began is not None and now - began < self.retire_window)
            self.scheduler.log_event(TOPIC, {"action": WorkerAction.LEAVE.value, "worker": worker,
                                             "reason": reason.value,
                                             "handed_on": expected,   # its results moved
                                             "stimulus_id": msg.get("stimulus_id", ""),
                                             "processing": sorted(str(k) for k in msg.get("processing-tasks", ()))})


class WorkerEvents:
    """The client's end: messages of :data:`TOPIC` and :data:`STARTED` in one thread-safe queue."""

    def __init__(self, client, q: "queue.Queue | None" = None):
        self.client = client
        self.queue = q if q is not None else queue.Queue()
        client.register_plugin(WorkerWatch(), name=PLUGIN_NAME)
        client.subscribe_topic(TOPIC, self._on_worker)
        client.subscribe_topic(STARTED, self._on_started)
        client.subscribe_topic(READY, self._on_worker)

    def _on_worker(self, event) -> None:
        self.queue.put((Event.WORKER, event[1]))

    def _on_started(self, event) -> None:
        self.queue.put((Event.STARTED, event[1]))

    def close(self) -> None:
        for topic in (TOPIC, STARTED, READY):
            try:
                self.client.unsubscribe_topic(topic)
            except Exception as err:  # noqa: BLE001 - the client may be closing: nothing to undo then
                log.debug("jetdask: unsubscribing from %s failed: %r", topic, err)
