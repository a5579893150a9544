"""What the dispatcher asks of dask, in one place: the run's plugins, the ready workers, chunk tasks.

:class:`ClusterPort` is the dispatcher's only way to the scheduler (the files being planned
talk to it through the :class:`~jetdask.engine.planfeed.PlanFeed`). It installs the run's
worker plugin and the scheduler's departure watch for the length of the run
(:func:`jetdask.engine.workerside.installed`), asks which workers are ready, and submits a
batch of chunks pinned to one worker, taking one of its slots (a suspect: all of them); it tells
the scheduler the run's work left, so that an adaptive cluster grows (:mod:`jetdask.engine.demand`). What
comes back are dask futures; the dispatcher hears of them, of workers coming and going and of
tasks starting through its event queue. The dispatcher's unit tests drive it with a scripted
stand-in of these methods and of the futures (tests/test_dispatcher_units.py).
"""
from __future__ import annotations

import contextlib

from .demand import DemandPublisher
from .workerside import SLOTS, RunPlugin, installed, ready_workers, run_registered


class ClusterPort:
    """The dispatcher's view of a ``distributed.Client`` (see the module docstring)."""

    def __init__(self, client, token: str, payload: bytes, options: dict, resources: dict | None = None):
        self.client, self.token = client, token
        self.demand: DemandPublisher | None = None
        self.plugin = RunPlugin(f"jetdask-run-{token}", payload)
        self.options = options
        self.resources = dict(resources or {})     # the analysis' own resources, on every task

    @contextlib.contextmanager
    def installed(self, events):
        """The run's plugins on the cluster, reporting on ``events``, for the length of the block."""
        with installed(self.client, self.plugin, events), DemandPublisher(self.client, self.token) as self.demand:
            yield

    def work_left(self, chunks: int, chunk_seconds: float | None) -> None:
        """The run holds ``chunks`` not yet done (waiting or in flight), of about ``chunk_seconds`` each."""
        if self.demand is not None:
            self.demand.update(chunks, chunk_seconds)

    def ready_workers(self) -> dict[str, int]:
        """Address -> threads of the workers the run's plugin is set up on (a scheduler call)."""
        return self.client.run_on_scheduler(ready_workers)

    def connected(self) -> set[str]:
        """Addresses of every worker the client knows of, ready or not."""
        return set(self.client.nthreads())

    def submit(self, chunks: list, addr: str, key: str, slots: float, isolated: bool):
        """A task running ``chunks`` on ``addr`` only, taking ``slots`` of its slots; its future."""
        return self.client.submit(run_registered, self.plugin.name, chunks, self.options, key=key, pure=False,
                                  workers=[addr], allow_other_workers=False, retries=0,
                                  resources={SLOTS: slots, **self.resources}, priority=10 if isolated else 0)
