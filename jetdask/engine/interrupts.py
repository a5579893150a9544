"""Ctrl-C ends a run with one line: the client stops it, the workers of its LocalCluster do not die.

Ctrl-C in a terminal sends SIGINT to the whole process group: ``jetdask run`` and the worker
processes its LocalCluster spawned. Left alone, every worker raises ``KeyboardInterrupt`` (two
tracebacks "Process Dask Worker process (from Nanny)"), the scheduler then reports tasks
"marked as failed because workers died", and dask logs its shutdown. Here:

* a worker process ignores SIGINT: the client owns the run and closes the cluster. The
  LocalCluster's workers are spawned while the client ignores it (:func:`workers_ignore_sigint`),
  so they inherit that from birth; a Ctrl-C meanwhile is seen by a witness process and raised
  once the cluster stands, which then goes down whole. A worker started later (a nanny restarting
  one that died) ignores it from its first import of jetdask (``jetdask/__init__.py``: a script
  that imports jetdask, the ``jetdask`` command itself, is run first in a spawned process), and
  from this module, the workers' dask *preload* (:data:`WORKER_PRELOAD`, :func:`dask_setup`),
  which also drops the one warning a worker logs for each task a stopping client cancels;
* :func:`sigint_deferred`: the client's cleanup after the first Ctrl-C (chunks in flight put
  back to pending, the cluster closed) is not cut short by a second one;
* :func:`quiet_dask_logging`, :func:`hush_workers`: what the client's own dask loggers and the
  workers of its LocalCluster say while the cluster goes down is dropped (the run's state is in
  the ledger; one line says what happened).

Workers a facility runs (batch jobs, a gateway) are in no process group of the client's and
never see its Ctrl-C; they are not changed.
"""
from __future__ import annotations

import contextlib
import logging
import signal
import threading

log = logging.getLogger(__name__)

WORKER_PRELOAD = __name__

# what a worker logs for a task that the client cancelled while it ran (the run was stopped)
_CANCEL_NOISE = ("ended with CancelledError",)


class _CancelNoise(logging.Filter):
    def filter(self, record) -> bool:
        return not any(s in record.getMessage() for s in _CANCEL_NOISE)


def dask_setup(worker) -> None:
    """Run by each worker process at start (``distributed.worker.preload``)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.getLogger("distributed.worker.state_machine").addFilter(_CancelNoise())


@contextlib.contextmanager
def workers_ignore_sigint():
    """Processes spawned during the block (a LocalCluster's workers) ignore SIGINT from birth: this
    process ignores it meanwhile, which they inherit. A Ctrl-C in the block is not lost: a
    *witness* process in the same process group (``sleep``, which SIGINT ends) tells it, and it is
    raised as ``KeyboardInterrupt`` when the block ends."""
    import shutil
    import subprocess
    sleep = shutil.which("sleep")
    if threading.current_thread() is not threading.main_thread() or sleep is None:
        yield
        return
    witness = subprocess.Popen([sleep, "86400"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        interrupted = witness.poll() == -signal.SIGINT
        if not interrupted:
            witness.kill()
        witness.wait()
    if interrupted:
        raise KeyboardInterrupt


@contextlib.contextmanager
def sigint_deferred():
    """SIGINT during the block is held back (a second Ctrl-C while a run cleans up) and raised
    as ``KeyboardInterrupt`` after it; outside the main thread the block runs as is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got = []
    previous = signal.signal(signal.SIGINT, lambda *_: got.append(True))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if got:
        raise KeyboardInterrupt


def _hush(dask_worker=None) -> None:
    """In a worker about to be closed: its dask loggers say nothing more (the scheduler going down
    first makes a worker report failed heartbeats and plugins it could not remove)."""
    for name in DASK_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)


def hush_workers(client) -> None:
    """Before a LocalCluster that this process started is closed: its workers log nothing more
    (they share this terminal). Best effort; other clusters' workers are left as they are."""
    from distributed import LocalCluster
    if not isinstance(getattr(client, "cluster", None), LocalCluster):
        return
    try:
        client.run(_hush, on_error="ignore")
    except Exception as err:  # noqa: BLE001 - a cluster already going down says nothing either
        log.debug("jetdask: hushing the LocalCluster's workers failed: %r", err)


DASK_LOGGERS = ("distributed", "distributed.client", "distributed.scheduler", "distributed.core",
                "distributed.nanny", "distributed.worker", "distributed.comm", "distributed.batched",
                "distributed.deploy", "distributed.process", "asyncio", "tornado.application")


@contextlib.contextmanager
def quiet_dask_logging(level: int = logging.CRITICAL):
    """The client process' dask loggers (and their handlers) above ``level`` only, for the block."""
    loggers = [logging.getLogger(n) for n in DASK_LOGGERS]
    saved = [lg.level for lg in loggers]
    handlers = [h for n in ("distributed", "") for h in logging.getLogger(n or None).handlers]
    saved_h = [h.level for h in handlers]
    for lg in loggers:
        lg.setLevel(level)
    for h in handlers:
        h.setLevel(level)
    try:
        yield
    finally:
        for lg, lv in zip(loggers, saved):
            lg.setLevel(lv)
        for h, lv in zip(handlers, saved_h):
            h.setLevel(lv)
