"""What a run installs on every worker, once: the analysis, a slots resource, start reports.

:class:`RunPlugin` is a dask worker plugin registered at the start of a run and removed
at its end. Workers that join later get it too. It

* holds the analysis (cloudpickle bytes, unpickled once per worker): tasks carry only
  the chunk and a few options, not the 26-49 kB analysis;
* advertises the resource :data:`SLOTS` equal to the worker's threads: a normal task
  takes one slot, a suspect all of one worker's slots, so a suspect runs alone on one
  worker while every other worker keeps working;
* reports when a jetdask task starts executing (topic ``jetdask-started``), so the
  dispatcher knows which chunks were really running on a worker that died;
* freezes what the young worker process holds (:func:`jetdask.engine.memory.freeze_imports`),
  if planning did not already;
* tells the prefetcher (:mod:`jetdask.nanoaod.prefetch`) what each thread runs next (the rest
  of its batch, then the jetdask tasks queued on the worker), drops what was read ahead for a
  task that is cancelled or released unrun, and everything read ahead when the run ends on the
  worker or the worker retires (:meth:`RunPlugin.teardown`).
"""
from __future__ import annotations

import contextlib
import logging
import time
from typing import cast

from distributed.diagnostics.plugin import WorkerPlugin

from ..nanoaod import prefetch, uproot_speedups
from .departures import PLUGIN_NAME, READY, STARTED, WorkerEvents
from .memory import freeze_imports
from .protocol import AttemptKind, WorkerAction
from .task import run_chunk
from .versions import check_workers

log = logging.getLogger(__name__)

SLOTS = "jetdask-slots"
KEY_PREFIX = "jetdask-"
DROPPED = ("cancelled", "released", "forgotten")   # a task's states after which its read-ahead is dropped
QUEUED = ("ready", "constrained", "waiting")        # a task's states while it waits on its worker


class RunPlugin(WorkerPlugin):
    idempotent = False

    def __init__(self, name: str, payload: bytes):
        self.name = name
        self.payload = payload
        self._analysis = None

    async def setup(self, worker) -> None:
        self.worker = worker
        uproot_speedups.apply()       # patched where jetdask's own work runs, never at import
        freeze_imports()
        await worker.set_resources(**{SLOTS: float(worker.state.nthreads)})
        # only now may chunks be pinned here: the scheduler does not look again at a task it found
        # no worker for when a worker's resources change later
        from .. import __version__
        from ..nanoaod.io import cached_paths, stats
        worker.log_event(READY, {"action": WorkerAction.READY.value, "worker": worker.address,
                                 "nthreads": worker.state.nthreads,
                                 "version": __version__,      # the client refuses another jetdask
                                 "files": cached_paths(),     # the dispatcher sends their chunks here first
                                 "open_seconds": stats["open_seconds"] / max(1, stats["opens"])})

    def transition(self, key, start, finish, **kwargs) -> None:
        if finish == "executing" and isinstance(key, str) and key.startswith(KEY_PREFIX):
            try:
                self.worker.log_event(STARTED, {"key": key, "worker": self.worker.address})
            except Exception as err:  # noqa: BLE001 - best effort; the policy copes with a missing report
                log.debug("jetdask: the start of %s could not be reported: %r", key, err)
        elif finish in DROPPED and isinstance(key, str) and key.startswith(KEY_PREFIX):
            prefetch.forget_task(key)

    def teardown(self, worker) -> None:
        prefetch.shutdown()

    @property
    def analysis(self):
        if self._analysis is None:
            import cloudpickle
            self._analysis = cloudpickle.loads(self.payload)
        return self._analysis


def register(client, plugin: RunPlugin, tries: int = 3) -> None:
    """Register ``plugin`` on every worker. A worker that dies while the scheduler sends it the
    plugin makes the scheduler drop the client's call (the plugin stays registered for the other
    workers and those that join later): it is registered again, at most ``tries`` times in all."""
    from distributed.comm.core import CommClosedError
    for i in range(tries):
        try:
            client.register_plugin(plugin, name=plugin.name)
            return
        except (CommClosedError, OSError):
            if i == tries - 1:
                raise
            time.sleep(0.5 * (i + 1))


@contextlib.contextmanager
def installed(client, plugin: RunPlugin, events):
    """For the length of a run: workers' comings and goings and chunk starts on ``events``
    (:mod:`jetdask.engine.departures`, whose scheduler plugin also errs a chunk task at its
    worker's first death) and ``plugin`` on every worker; both removed at the end, where the
    cluster is still there. No scheduler-wide setting is changed (the scheduler may be shared)."""
    check_workers(client)           # before anything is installed: another jetdask is refused
    watch = WorkerEvents(client, events)
    register(client, plugin)
    try:
        yield
    finally:
        for call in (lambda: client.unregister_worker_plugin(plugin.name),
                     lambda: client.unregister_scheduler_plugin(PLUGIN_NAME)):
            try:
                call()
            except Exception as err:  # noqa: BLE001 - the cluster may be gone; nothing to restore then
                log.debug("jetdask: removing the run's plugins failed: %r", err)
        watch.close()


def ready_workers(dask_scheduler=None) -> dict:
    """Run on the scheduler: workers that advertise the slots resource (the run's plugin is set up)."""
    return {a: int(ws.nthreads) for a, ws in dask_scheduler.workers.items()
            if ws.resources.get(SLOTS) and ws.status.name == "running"}


def run_registered(plugin_name: str, chunks: list, options: dict) -> list:
    """The task on a worker: each chunk of a batch in turn; the analysis comes from the run's plugin.

    Each chunk after the first of a batch is reported started (``index``), so that if the
    worker dies, only the chunk it was running becomes a suspect.
    """
    from distributed import get_worker
    worker = get_worker()
    plugin = cast(RunPlugin, worker.plugins[plugin_name])
    out = []
    for i, chunk in enumerate(chunks):
        if i:
            try:
                worker.log_event(STARTED, {"key": worker.get_current_task(), "index": i})
            except Exception as err:  # noqa: BLE001 - best effort, as the task's own start report
                log.debug("jetdask: the start of chunk %d of a batch could not be reported: %r", i, err)
        def queued():
            return queued_chunks(worker, plugin_name)
        rest = prefetch.following(chunks[i + 1:], [])
        prefetch.expect(rest, queued)   # what the chunk's read fetches ahead, once its own baskets are in
        got = run_chunk(plugin.analysis, chunk, options)
        if got.status == AttemptKind.DONE:   # its file's last range, and no chunk of it comes: released
            prefetch.finished(chunk, got.replica or chunk.path, rest + prefetch.following([], queued()))
        out.append(got)
    prefetch.expect([])
    return out


def queued_chunks(worker, plugin_name: str) -> list[tuple[str, list]]:
    """``(key, chunks)`` of the run's chunk tasks waiting on ``worker``, in the order it runs them."""
    try:
        found = []
        for key, ts in list(worker.state.tasks.items()):
            if ts.state not in QUEUED or not (isinstance(key, str) and key.startswith(KEY_PREFIX)):
                continue
            args: tuple = getattr(ts.run_spec, "args", ())
            if len(args) >= 2 and args[0] == plugin_name and isinstance(args[1], list):
                found.append((ts.priority or (), key, args[1]))
        return [(key, chunks) for _, key, chunks in sorted(found, key=lambda x: x[0])]
    except Exception:  # noqa: BLE001 - the worker's bookkeeping changed shape: nothing is known to come
        return []
