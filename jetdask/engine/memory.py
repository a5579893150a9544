"""Memory accounting on the worker: chunk budgets and peak-RSS sampling.

A chunk's budget is a fraction (``jetdask.memory-fraction``) of the worker's
memory limit; the estimate of a chunk is the uncompressed size of the baskets
it reads times ``jetdask.memory-overhead`` (awkward/numpy temporaries of the
analysis). What this module covers: the estimate before reading and the peak
resident memory of the process while a chunk ran (sampled every
``jetdask.memory-sample-interval``, 50 ms, by one daemon thread per process).
What it does not: a single allocation that jumps past the limit between two
samples; that kills the worker (nanny), and the runner handles it (quarantine,
then bisect).

The same budget also bounds what the worker holds for the chunks to come: the files it keeps
open and the baskets read ahead (:mod:`jetdask.nanoaod.prefetch`) take at most what a chunk's
estimate leaves of it (``io.make_room`` closes files and drops read-ahead data before the
chunk reads; the read-ahead asks for no more than that).

It also keeps the garbage collector off what a worker process holds after its imports
(:func:`freeze_imports`).
"""
from __future__ import annotations

import itertools
import threading
import time

import psutil

from .. import config

_frozen = False


def freeze_imports() -> bool:
    """Collect once, then keep every object alive now out of later collections (once per process).

    A worker holds 100k+ objects after importing dask, distributed, awkward and uproot; every
    full collection walks them again, and opening an 889-branch file triggers one (0.1 s of a
    0.3 s open, measured). Called by the first planning task or run set-up in a worker, before
    it opens any file: what is frozen is modules, classes and dask's state, none of a run's
    data (objects made later are collected as usual). Returns whether this call froze.
    """
    global _frozen
    if _frozen:
        return False
    import gc
    gc.collect()
    gc.freeze()
    _frozen = True
    return True


def chunk_budget(memory_limit: int | None) -> int:
    if not memory_limit:
        return int(config.get("default-budget"))
    return int(memory_limit * float(config.get("memory-fraction")))


def estimate_peak(uncompressed_bytes: int) -> int:
    return int(uncompressed_bytes * float(config.get("memory-overhead")))


class PeakMonitor:
    """Per-process sampler of resident memory; ``with monitor.track() as t: ...; t.peak``."""

    def __init__(self, interval: float | None = None):
        # every wake-up makes the thread running the chunk give up the GIL: sampling every
        # 10 ms cost 4-8 ms per 55 ms chunk (measured), every 50 ms about nothing
        self.interval = interval  # None: jetdask.memory-sample-interval, read at each sample
        self._proc = psutil.Process()
        self._active: dict[int, list[int]] = {}
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._thread = None

    def _run(self):
        while True:
            with self._lock:
                if not self._active:
                    self._thread = None
                    return
                rss = self._proc.memory_info().rss
                for box in self._active.values():
                    if rss > box[0]:
                        box[0] = rss
            time.sleep(self.interval if self.interval is not None else float(config.get("memory-sample-interval")))

    def track(self):
        monitor = self

        class _Tracker:
            peak = 0

            def __enter__(self):
                self._id = next(monitor._ids)
                self._box = [monitor._proc.memory_info().rss]
                with monitor._lock:
                    monitor._active[self._id] = self._box
                    if monitor._thread is None:
                        monitor._thread = threading.Thread(target=monitor._run, daemon=True, name="jetdask-mem")
                        monitor._thread.start()
                return self

            def __exit__(self, *exc):
                with monitor._lock:
                    monitor._active.pop(self._id, None)
                self.peak = max(self._box[0], monitor._proc.memory_info().rss)
                return False

        return _Tracker()


monitor = PeakMonitor()
