"""The chunk task: what a worker runs for one chunk.

``run_chunk(analysis, chunk, options)`` never raises for a problem of the
chunk; it returns a :class:`Outcome` whose ``status`` (an
:class:`~jetdask.engine.protocol.AttemptKind`, from the error's type:
:func:`jetdask.engine.policy.classify`) tells the runner what to do next:

``done``       result attached;
``split``      the memory estimate exceeds the budget (nothing was read);
``memory``     a ``MemoryError`` was raised while running (split and retry);
``transient``  a retryable error (network I/O, timeouts), on every replica;
``failed``     a deterministic error: bad file, missing branch, bug in the
               analysis. For analysis errors the failing events are narrowed
               down by bisection on the chunk already in memory, and their
               run/lumi/event numbers are reported.
``stop``       nothing wrong with the chunk, but the run cannot go on: no space
               left for its arrays (:class:`~jetdask.errors.DiskFullError`), or
               the analysis returned a counter the engine owns
               (:class:`~jetdask.errors.ReservedCounterError`); ``Outcome.stop``
               holds the error, the chunk stays to do.

Engine counters: every result gets ``events`` (events read) and, on simulation,
``sumw`` (the sum of ``genWeight``) added by the engine (:data:`ENGINE_COUNTERS`);
an analysis may not return counters of these names.

A file with replicas (``chunk.replicas``) is read from the first URL that
opens and reads; a file error at one URL moves on to the next, and
``Outcome.replica`` names the URL that served the chunk.

This module does not import ``distributed``: the same task runs in a plain loop
(``--serial``) or on a dask worker.
"""
from __future__ import annotations

import dataclasses
import os
import socket
import time
import traceback as tb
from typing import Any

import numpy as np

from ..atomicwrite import atomic_path
from ..chunk import Chunk
from ..errors import FileAccessError, MissingColumnError, ReservedCounterError, TransientFileError
from ..nanoaod import io, prefetch
from ..nanoaod.columns import resolve_columns
from ..nanoaod.events import events_from_arrays
from ..result import Result
from .diskspace import disk_full, is_disk_full
from .memory import chunk_budget, estimate_peak, monitor
from .policy import Stage, classify
from .protocol import AttemptKind

ID_COLUMNS = ["run", "luminosityBlock", "event", "optional:genWeight"]

# the counters the engine adds to every chunk's result (an analysis' own counters use other names)
ENGINE_COUNTERS = {"events": "the events read", "sumw": "the sum of genWeight on simulation"}
STOP = AttemptKind.STOP


@dataclasses.dataclass
class Outcome:
    chunk_id: str
    status: AttemptKind
    result: Result | None = None
    worker: str = ""
    worker_address: str = ""
    started: float = 0.0
    finished: float = 0.0
    peak_rss: int = 0
    n_events: int = 0
    estimate: int = 0
    budget: int = 0
    error_type: str = ""
    message: str = ""
    traceback: str = ""
    events: list = dataclasses.field(default_factory=list)   # [(run, lumi, event), ...]
    bad_range: tuple | None = None                            # smallest failing [start, stop)
    timings: dict = dataclasses.field(default_factory=dict)
    replica: str = ""                                         # the URL that served the chunk
    blob: bytes = b""        # the result encoded on the worker (options["encode"]); ``result`` is then None
    stop: BaseException | None = None   # status "stop": why the run cannot go on (no space, a reserved counter)


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _worker_address() -> str:
    """The dask worker's address when running on one (used for file locality), else ''."""
    try:
        from distributed import get_worker
        return get_worker().address
    except ValueError:   # not on a dask worker (the serial loop)
        return ""


def _worker_memory_limit() -> int | None:
    """Memory limit of the dask worker running this task (what the batch system gave it)."""
    try:
        from distributed import get_worker
        return get_worker().memory_manager.memory_limit or None
    except ValueError:   # not on a dask worker (the serial loop)
        return None


def _event_ids(events, start: int, stop: int) -> list:
    sub = events[start:stop]
    try:
        return [(int(r), int(lumi), int(e)) for r, lumi, e in
                zip(np.asarray(sub.run), np.asarray(sub.luminosityBlock), np.asarray(sub.event))]
    except (AttributeError, ValueError, TypeError):   # events without run/lumi/event numbers: none to name
        return []


def _bisect_failure(analysis, events, chunk: Chunk, err_type: type[BaseException], min_events: int,
                    max_calls: int = 64):
    """Smallest contiguous local range [a, b) of ``events`` on which the analysis still fails."""
    a, b = 0, len(events)
    calls = 0
    while b - a > min_events and calls < max_calls:
        mid = (a + b) // 2
        moved = False
        for lo, hi in ((a, mid), (mid, b)):
            calls += 1
            sub = dataclasses.replace(chunk, entry_start=chunk.entry_start + lo, entry_stop=chunk.entry_start + hi)
            try:
                analysis(events[lo:hi], sub)
            except err_type:
                a, b = lo, hi
                moved = True
                break
            except Exception:  # noqa: BLE001 - another error in this half: not the failure being narrowed
                continue
        if not moved:
            break
    return a, b


def run_chunk(analysis, chunk: Chunk, options: dict[str, Any] | None = None) -> Outcome:
    """Run ``analysis`` on ``chunk``; see the module docstring."""
    options = options or {}
    out = Outcome(chunk.id, AttemptKind.FAILED, worker=_worker_name(), worker_address=_worker_address(),
                  started=time.time())
    budget = chunk_budget(options.get("memory_limit") or _worker_memory_limit())
    out.budget = budget
    floor = int(options.get("split_floor", 0))
    with monitor.track() as mem:
        try:
            _run(analysis, chunk, options, out, budget, floor)
        except BaseException as err:  # noqa: BLE001 - the task boundary reports everything
            err = disk_full(err, options.get("array_dir") or os.getcwd(), f"chunk {chunk.where}") or err
            out.status = classify(err, Stage.CHUNK)
            out.stop = err if out.status == STOP else None
            out.error_type = type(err).__name__
            out.message = str(err) or (out.error_type if out.status == AttemptKind.MEMORY else "")
            out.traceback = tb.format_exc(limit=20)
    out.peak_rss = mem.peak
    out.finished = time.time()
    return out


_branch_cache: dict[tuple, list[str]] = {}


def _branches(tree, chunk: Chunk, columns: tuple) -> list[str]:
    """Branches to read, resolved once per (file, columns) in this process (``tree.keys()`` costs ~6 ms)."""
    key = (chunk.file_uuid, chunk.tree, columns)
    found = _branch_cache.get(key)
    if found is None:
        found = resolve_columns(tree.keys(), list(columns), path=chunk.path)
        if len(_branch_cache) > 256:
            _branch_cache.clear()
        _branch_cache[key] = found
    return found


def _read(url: str, analysis, chunk: Chunk, options, out: Outcome, budget: int, floor: int):
    """The chunk's events read from ``url``, or ``None`` when the estimate says split.

    The open files and the data read ahead count against the budget (``io.make_room``); once
    the chunk's baskets are in, the next chunk's are asked for (:mod:`jetdask.nanoaod.prefetch`).
    """
    t0 = time.perf_counter()
    columns = tuple(analysis.columns) + tuple(ID_COLUMNS)
    with io.reading(url, chunk.tree) as tree:
        out.timings["open"] = time.perf_counter() - t0
        if str(tree.file.uuid) != chunk.file_uuid:
            io.forget(url)
            raise FileAccessError(url, f"file UUID changed (planned {chunk.file_uuid}, found {tree.file.uuid}): "
                                       "the file was replaced; plan it again")
        if chunk.entry_stop > tree.num_entries:
            raise FileAccessError(url, f"has {tree.num_entries} entries, chunk needs up to {chunk.entry_stop}")
        branches = _branches(tree, chunk, columns)
        out.estimate = estimate_peak(io.estimate_bytes(tree, branches, chunk.entry_start, chunk.entry_stop))
        if out.estimate > budget and chunk.num_entries > floor and not options.get("no_presplit"):
            out.status = AttemptKind.SPLIT
            out.message = f"estimated {out.estimate / 1e6:.0f} MB > budget {budget / 1e6:.0f} MB"
            return None
        io.make_room(budget - out.estimate, keep_path=url)
        t1 = time.perf_counter()
        arrays = io.read_arrays(tree, branches, chunk.entry_start, chunk.entry_stop, url)
        prefetch.after_read(chunk, url, tree, lambda t, c: _branches(t, c, columns), out.estimate, budget)
    events = events_from_arrays(arrays, entry_start=chunk.entry_start)
    out.timings["read"] = time.perf_counter() - t1
    return events


_failed_urls: dict[str, float] = {}   # URL -> when it last failed in this process
REPLICA_PENALTY_S = 300.0


def replica_order(urls, failed: dict[str, float], now: float) -> list[str]:
    """``urls`` in the order to try: those that failed in the last ``REPLICA_PENALTY_S`` last."""
    recent = {u for u in urls if now - failed.get(u, -1e18) < REPLICA_PENALTY_S}
    return [u for u in urls if u not in recent] + [u for u in urls if u in recent]


def _read_any(analysis, chunk: Chunk, options, out: Outcome, budget: int, floor: int):
    """:func:`_read` from the first replica that serves the chunk (``out.replica``).

    A URL that failed recently in this worker is tried after the others, so the
    chunks after the first do not wait for a dead site's timeout again.
    """
    errors: list[tuple[str, FileAccessError]] = []
    urls = chunk.urls if len(chunk.urls) == 1 else replica_order(chunk.urls, _failed_urls, time.monotonic())
    for url in urls:
        try:
            events = _read(url, analysis, chunk, options, out, budget, floor)
        except FileAccessError as err:
            errors.append((url, err))
            _failed_urls[url] = time.monotonic()
            continue
        _failed_urls.pop(url, None)
        out.replica = url
        return events
    if len(errors) == 1:
        url, only = errors[0]
        if isinstance(only, TransientFileError) and only.entries is None:   # failed opening: name the range
            raise TransientFileError(url, only.reason, (chunk.entry_start, chunk.entry_stop))
        raise only
    reason = f"all {len(errors)} replicas failed: " + "; ".join(f"{u}: {e.reason}" for u, e in errors)
    if any(e.transient for _, e in errors):
        raise TransientFileError(chunk.path, reason, (chunk.entry_start, chunk.entry_stop))
    raise FileAccessError(chunk.path, reason)


def _run(analysis, chunk, options, out: Outcome, budget: int, floor: int) -> None:
    events = _read_any(analysis, chunk, options, out, budget, floor)
    if events is None:
        return
    out.n_events = len(events)
    t2 = time.perf_counter()
    try:
        result = analysis(events, chunk)
    except (MemoryError, MissingColumnError):
        raise
    except Exception as err:
        # only a deterministic error has events to blame: a transient one is retried, a full disk
        # (the analysis' own writes) stops the run; neither is run again on halves of the chunk
        kind = AttemptKind.STOP if is_disk_full(err) else classify(err, Stage.CHUNK)
        if kind != AttemptKind.FAILED or not options.get("bisect", True):
            raise
        a, b = _bisect_failure(analysis, events, chunk, type(err), int(options.get("bisect_min_events", 1)))
        out.bad_range = (chunk.entry_start + a, chunk.entry_start + b)
        out.events = _event_ids(events, a, b)[:20]
        raise
    out.timings["process"] = time.perf_counter() - t2
    if result is None:
        result = Result()
    if not isinstance(result, Result):
        raise TypeError(f"{type(analysis).__name__}.process must return jetdask.Result, got {type(result).__name__}")
    clash = sorted(set(result.counters) & set(ENGINE_COUNTERS))
    if clash:
        raise ReservedCounterError(getattr(analysis, "label", None) or type(analysis).__name__, clash, ENGINE_COUNTERS)
    result.counters["events"] = result.counters.get("events", 0) + len(events)
    if "genWeight" in events.fields:
        sumw = float(np.sum(np.asarray(events.genWeight, dtype=np.float64)))
        result.counters["sumw"] = result.counters.get("sumw", 0.0) + sumw
    if result.arrays:
        _write_arrays(result, chunk, options.get("array_dir"))
    if options.get("encode"):
        from .histcodec import encode
        out.blob, out.result = encode(result), None
    else:
        out.result = result
    out.status = AttemptKind.DONE


def _write_arrays(result: Result, chunk: Chunk, array_dir: str | None) -> None:
    import awkward as ak
    if not array_dir:
        raise ValueError("the analysis returned arrays but the run has no array directory")
    for name, arr in result.arrays.items():
        d = os.path.join(array_dir, name, chunk.dataset)
        final = os.path.join(d, f"{chunk.id}.parquet")
        try:
            os.makedirs(d, exist_ok=True)
            # plain Arrow types (no awkward extension metadata): 3.4x faster to write, readable by
            # any parquet reader (pandas, polars, ROOT's RDataFrame), and ak.from_parquet reads it back
            with atomic_path(final) as tmp:   # a partial file would take the space a rerun needs
                ak.to_parquet(arr, tmp, extensionarray=False)
        except BaseException as err:
            full = disk_full(err, d, f"the arrays {name!r} of chunk {chunk.where} could not be written")
            if full is not None:
                raise full from None
            raise
        result.array_files.setdefault(name, []).append(final)
    result.arrays = {}
