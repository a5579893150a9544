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
``ttl`` seconds (a client that died) counts for nothing.
The cluster's ``minimum`` and ``maximum`` bound the result as always. The scheduler's
``adaptive_target`` is wrapped while a run's plugin (``jetdask-demand-<run>``) is installed:
the wrapper only ever adds demand published by jetdask runs, and the run's end removes its
plugin and, when no other run's is left, puts the scheduler's own method back.
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


def _installed_demands(scheduler) -> list:
    return [p for n, p in scheduler.plugins.items() if isinstance(n, str) and n.startswith(PLUGIN_NAME)]


def _restore(scheduler) -> None:
    original = getattr(scheduler, _ORIGINAL, None)
    if original is not None:
        scheduler.adaptive_target = original
        scheduler.handlers["adaptive_target"] = original
        delattr(scheduler, _ORIGINAL)


def _target(scheduler, target_duration=None) -> int:
    """dask's own target, or more when jetdask runs hold work back; the scheduler's own method
    again once no run's plugin is left."""
    original = getattr(scheduler, _ORIGINAL)
    demands = _installed_demands(scheduler)
    if not demands:
        _restore(scheduler)
        return original(target_duration)
    base = original(target_duration)
    left = sum(d.seconds_left() for d in demands)
    if not left:
        return base
    import dask
    from dask.utils import parse_timedelta
    duration = parse_timedelta(target_duration if target_duration is not None
                               else dask.config.get("distributed.adaptive.target-duration"))
    workers = scheduler.workers.values()
    threads = sum(ws.nthreads for ws in workers) / len(workers) if workers else 1.0
    return max(base, wanted_workers(left, duration, threads))


def withdraw(name: str, dask_scheduler=None) -> None:
    """Run on the scheduler at a run's end: its plugin removed, and the scheduler's own
    ``adaptive_target`` back once no other run's plugin is left."""
    if name in dask_scheduler.plugins:
        dask_scheduler.remove_plugin(name)
    if not _installed_demands(dask_scheduler):
        _restore(dask_scheduler)


class Demand(SchedulerPlugin):
    """One run's work left (registered as ``jetdask-demand-<run>``), added to the scheduler's
    adaptive target together with every other run's."""

    def __init__(self, token: str, ttl: float = TTL):
        self.name = f"{PLUGIN_NAME}-{token}"
        self.token, self.ttl = token, ttl

    async def start(self, scheduler) -> None:
        self.left, self.expires = 0.0, 0.0
        if getattr(scheduler, _ORIGINAL, None) is None:
            setattr(scheduler, _ORIGINAL, scheduler.adaptive_target)

            def adaptive_target(target_duration=None):
                return _target(scheduler, target_duration)

            scheduler.adaptive_target = adaptive_target              # called in-process (dask-gateway)
            scheduler.handlers["adaptive_target"] = adaptive_target  # called over the comm (Adaptive)

    def log_event(self, topic, msg) -> None:
        if topic == TOPIC and isinstance(msg, dict) and msg.get("run") == self.token:
            self.left, self.expires = float(msg.get("seconds", 0.0)), time.monotonic() + self.ttl

    def seconds_left(self) -> float:
        return self.left if time.monotonic() < self.expires else 0.0


class DemandPublisher:
    """The client's end: installs :class:`Demand` and publishes a run's work left, throttled."""

    def __init__(self, client, token: str, every: float = PUBLISH_EVERY):
        self.client, self.token, self.every = client, token, every
        self._last = 0.0
        self.plugin = Demand(token)
        client.register_plugin(self.plugin, name=self.plugin.name)

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
            self.client.run_on_scheduler(withdraw, name=self.plugin.name)
        except Exception as err:  # noqa: BLE001 - a lost scheduler forgets the estimate by itself (ttl)
            logger.debug("work left not withdrawn: %s", err)

    def _send(self, seconds: float) -> None:
        self.client.log_event(TOPIC, {"run": self.token, "seconds": float(seconds)})
