"""What a run still has to do, told to the scheduler so that an adaptive cluster grows for it.

dask's adaptive scaling (``cluster.adapt(...)`` of dask-jobqueue and LocalCluster, and a
dask-gateway cluster's own) asks the scheduler for a target number of workers
(``Scheduler.adaptive_target``), computed from the tasks the scheduler knows. The dispatcher
keeps only a few tasks per thread on the scheduler (the rest wait on the client, sized into
batches as results come back), so that target sees almost no work and an adaptive cluster
never grows during a run.

:class:`Demand` is a scheduler plugin that adds the run's own estimate: the client publishes,
every few seconds, the seconds of chunk work left (chunks waiting or in flight times the
running mean of a chunk's time) on the topic :data:`TOPIC`; the scheduler's target becomes the
larger of dask's own and :func:`wanted_workers` of that work. An estimate not refreshed for
``ttl`` seconds (a client that died) counts for nothing; the run publishes zero when it ends.
The cluster's ``minimum`` and ``maximum`` bound the result as always. The scheduler's
``adaptive_target`` is wrapped while the plugin is installed, for every client of that
scheduler: the wrapper only ever adds demand published by jetdask runs.
"""
from __future__ import annotations

import logging
import math
import time

from distributed.diagnostics.plugin import SchedulerPlugin

TOPIC = "jetdask-demand"
PLUGIN_NAME = "jetdask-demand"
PUBLISH_EVERY = 2.0      # seconds between two estimates of one run
TTL = 30.0               # seconds an estimate counts without being refreshed
_ORIGINAL = "_jetdask_adaptive_target"
logger = logging.getLogger(__name__)


def wanted_workers(seconds_left: float, target_duration: float, threads_per_worker: float) -> int:
    """Workers that finish ``seconds_left`` of single-threaded chunk work in about
    ``target_duration`` seconds (dask's own rule for the tasks it sees): one at least while
    any work is left, none when there is none."""
    if seconds_left <= 0:
        return 0
    cores = math.ceil(seconds_left / max(target_duration, 1e-3))
    return max(1, math.ceil(cores / max(threads_per_worker, 1.0)))


class Demand(SchedulerPlugin):
    """Adds the published work of jetdask runs to the scheduler's adaptive target."""

    name = PLUGIN_NAME

    def __init__(self, ttl: float = TTL):
        self.ttl = ttl

    async def start(self, scheduler) -> None:
        self.scheduler = scheduler
        self.runs: dict[str, tuple[float, float]] = {}     # run token -> (seconds left, expiry)
        original = getattr(scheduler, _ORIGINAL, None) or scheduler.adaptive_target
        setattr(scheduler, _ORIGINAL, original)

        def adaptive_target(target_duration=None):
            return self.target(original, target_duration)

        scheduler.adaptive_target = adaptive_target              # called in-process (dask-gateway)
        scheduler.handlers["adaptive_target"] = adaptive_target  # called over the comm (Adaptive)

    async def close(self) -> None:
        original = getattr(self.scheduler, _ORIGINAL, None)
        if original is not None:
            self.scheduler.adaptive_target = original
            self.scheduler.handlers["adaptive_target"] = original
            delattr(self.scheduler, _ORIGINAL)

    def log_event(self, topic, msg) -> None:
        if topic == TOPIC and isinstance(msg, dict) and msg.get("run"):
            seconds = float(msg.get("seconds", 0.0))
            if seconds > 0:
                self.runs[msg["run"]] = (seconds, time.monotonic() + self.ttl)
            else:
                self.runs.pop(msg["run"], None)

    def seconds_left(self) -> float:
        now = time.monotonic()
        self.runs = {k: v for k, v in self.runs.items() if v[1] > now}
        return sum(s for s, _ in self.runs.values())

    def target(self, original, target_duration=None) -> int:
        base = original(target_duration)
        left = self.seconds_left()
        if not left:
            return base
        import dask
        from dask.utils import parse_timedelta
        duration = parse_timedelta(target_duration if target_duration is not None
                                   else dask.config.get("distributed.adaptive.target-duration"))
        workers = self.scheduler.workers.values()
        threads = sum(ws.nthreads for ws in workers) / len(workers) if workers else 1.0
        return max(base, wanted_workers(left, duration, threads))


class DemandPublisher:
    """The client's end: installs :class:`Demand` and publishes a run's work left, throttled."""

    def __init__(self, client, token: str, every: float = PUBLISH_EVERY):
        self.client, self.token, self.every = client, token, every
        self._last = 0.0
        client.register_plugin(Demand(), name=PLUGIN_NAME)

    def update(self, chunks_left: int, chunk_seconds: float | None) -> None:
        now = time.monotonic()
        if now - self._last < self.every:
            return
        self._last = now
        self._send(chunks_left * (chunk_seconds if chunk_seconds is not None else 1.0))

    def __enter__(self) -> DemandPublisher:  # noqa: PYI034 - Python 3.10 has no typing.Self
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """The run ended: its work counts no more."""
        try:
            self._send(0.0)
        except Exception as err:  # noqa: BLE001 - a lost scheduler forgets the estimate by itself (ttl)
            logger.debug("work left not withdrawn: %s", err)

    def _send(self, seconds: float) -> None:
        self.client.log_event(TOPIC, {"run": self.token, "seconds": float(seconds)})
