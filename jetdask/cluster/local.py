"""LocalCluster with real worker processes, connecting to an address, closing cleanly."""
from __future__ import annotations

import os
from contextlib import suppress

from ..errors import ConfigError

LOCAL_KEYS = {"n_workers", "threads_per_worker", "memory_limit", "dashboard_address", "processes",
              "local_directory", "silence_logs"}


def _default_memory_limit(n_workers: int) -> int:
    import psutil
    total = psutil.virtual_memory().total
    return int(min(4 * 2**30, total * 0.8 / max(n_workers, 1)))


def worker_environ() -> dict:
    """``jetdask.worker-environ`` as strings (variables set to null are left out)."""
    from .. import config
    env = config.get("worker-environ") or {}
    return {str(k): str(v) for k, v in env.items() if v is not None}


def apply_worker_environ() -> dict:
    """Make nannies started by this process give ``jetdask.worker-environ`` to their workers.

    The nanny sets ``distributed.nanny.pre-spawn-environ`` in this process' ``os.environ``
    before spawning a worker, and a variable already in ``os.environ`` wins over the dask
    config; so both are set here (as distributed itself does with its own defaults). The
    ``DASK_*`` variables among them are also set in this process' dask config.
    """
    import dask.config
    env = worker_environ()
    if env:
        os.environ.update(env)
        pre = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
        pre.update(env)
        dask.config.set({"distributed.nanny.pre-spawn-environ": pre})
        # a nanny hands its own dask config to its worker, which sets it over what the worker read
        # from DASK_* variables: those settings go into this process' config too (the scheduler
        # and nannies of a LocalCluster live here, and take the same tick setting)
        dask.config.update(dask.config.config, dask.config.collect_env(env))
    return env


SCHEDULER_SETTINGS = {
    # every chunk task is pinned to its worker (jetdask's dispatcher places them and helps with
    # tails itself), so dask's work stealing moves nothing; its balancing pass (every second)
    # and per-task bookkeeping only take CPU from the process that also runs the client
    "distributed.scheduler.work-stealing": False,
}


def apply_scheduler_settings() -> None:
    """Settings of a scheduler that jetdask starts in this process (LocalCluster, batch jobs)."""
    import dask.config
    dask.config.set(SCHEDULER_SETTINGS)


def start_local(n_workers: int | None = None, threads_per_worker: int = 1, memory_limit=None,
                dashboard_address: str = "127.0.0.1:0", **options):
    """A LocalCluster on this machine: one single-threaded worker process per core by default."""
    import dask.config
    from distributed import Client, LocalCluster
    apply_worker_environ()
    apply_scheduler_settings()
    # a worker slot whose process keeps dying (a memory culprit) must come back, not be closed
    # after distributed's 15 s lost-worker-timeout (the run would then wait on zero workers)
    dask.config.set({"distributed.deploy.lost-worker-timeout": "24h"})
    unknown = set(options) - LOCAL_KEYS
    if unknown:
        raise ConfigError(f"unknown option(s) {sorted(unknown)} for a local cluster", f"cluster.{sorted(unknown)[0]}")
    n_workers = n_workers or max(1, (os.cpu_count() or 2) // threads_per_worker)
    # the workers share the terminal's process group: Ctrl-C is the client's to handle (engine/interrupts.py)
    from ..engine.interrupts import WORKER_PRELOAD, quiet_dask_logging, sigint_deferred, workers_ignore_sigint
    preload = list(dask.config.get("distributed.worker.preload", default=None) or []) + [WORKER_PRELOAD]
    cluster = client = None
    try:
        with workers_ignore_sigint():
            cluster = LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                                   memory_limit=memory_limit or _default_memory_limit(n_workers),
                                   dashboard_address=dashboard_address, host="127.0.0.1", processes=True,
                                   preload=preload, **options)
        client = Client(cluster)
        client.wait_for_workers(n_workers, timeout=120)
    except BaseException:   # Ctrl-C while it started: it goes down quietly, its client too
        with sigint_deferred(), quiet_dask_logging():
            if client is not None:
                with suppress(Exception):    # the start's own error is the one to see
                    client.close()
            if cluster is not None:
                cluster.close()
        raise
    return client


def worker_memory_limits(client) -> dict:
    """Memory limit (bytes) of each worker, as the cluster (or batch system) set it."""
    return client.run_on_scheduler(_memory_limits)


def _memory_limits(dask_scheduler=None) -> dict:
    return {a: ws.memory_limit for a, ws in dask_scheduler.workers.items()}


_SHUTDOWN_NOISE = ("Worker process still alive", "CommClosedError", "Stream is closed", "Connection closed",
                   "Event loop was unresponsive", "Exception in callback", "Task exception was never retrieved")


class _ShutdownNoise:
    """Drops what distributed logs while a finished cluster goes down (nannies killing slow exits,
    comms closed under a heartbeat): nothing there concerns the run, whose results are stored."""

    def filter(self, record) -> bool:
        text = record.getMessage()
        if record.exc_info and record.exc_info[0] is not None:
            text += " " + record.exc_info[0].__name__
        return not any(s in text for s in _SHUTDOWN_NOISE)


def close_cluster(client) -> None:
    """Close the client and the cluster it owns (batch jobs included), quietly."""
    import logging
    cluster = getattr(client, "cluster", None)
    loggers = [logging.getLogger(n) for n in ("distributed", "distributed.nanny", "distributed.core",
                                              "distributed.client", "distributed.worker", "distributed.comm",
                                              "distributed.batched", "distributed.scheduler", "asyncio",
                                              "tornado.application")]
    # records of child loggers are filtered by the handlers they reach, not by the parent loggers
    loggers += [h for n in ("distributed", "") for h in logging.getLogger(n or None).handlers]
    noise = _ShutdownNoise()
    for lg in loggers:
        lg.addFilter(noise)
    try:
        try:
            from ..engine.interrupts import hush_workers
            hush_workers(client)      # a LocalCluster's workers share this terminal
            client.close()
        finally:
            if cluster is not None:
                cluster.close(timeout=60) if _accepts_timeout(cluster) else cluster.close()
                waiter = getattr(cluster, "_jetdask_wait_gone", None)
                if waiter is not None:
                    waiter()
    finally:
        for lg in loggers:
            lg.removeFilter(noise)


def _accepts_timeout(cluster) -> bool:
    import inspect
    try:
        return "timeout" in inspect.signature(cluster.close).parameters
    except (TypeError, ValueError):
        return False
