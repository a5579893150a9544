"""Reads that overlap compute: what a worker fetches ahead while a chunk's analysis runs.

A worker thread runs the chunks of a task (a batch of one file) in turn. Once a chunk's
baskets are read (:func:`after_read`, called by the chunk task), and while its analysis
runs, the thread's next chunks are prepared:

* the next chunks are the rest of the batch, then those of the jetdask tasks queued on this
  worker, up to ``DEPTH`` of them; with none known, the next ``DEPTH`` ranges of the same
  file, each as long as this one (:func:`following`, :func:`guesses`): the dispatcher hands
  a file's chunks to its home worker in order, so the guess is what comes. More than one:
  a round trip and the transfer can outlast a chunk's analysis (100 ms away, they did);
* their baskets (the branches the analysis reads, in their entry ranges) are asked for in
  vector reads, coalesced across branches (:mod:`jetdask.nanoaod.readahead`), when the file
  is a ``root://`` URL; a local file needs no help;
* the file of a queued chunk that is not open yet is opened in a background thread
  (:func:`open_ahead`), its metadata fetched before its first chunk starts; its baskets
  follow once it is open.

How much may be read ahead (:func:`allowance`): at most ``jetdask.prefetch-bytes`` held at
once in the process, and never more than the chunk budget of the memory guard leaves after
the running chunk's estimate and the open files (:mod:`jetdask.nanoaod.filecache`), nearest
chunk first. What a thread read ahead for chunks it will not run next is dropped at its next
read; what was read ahead for a task is dropped when that task is cancelled or released
unrun (:func:`forget_task`), and everything when the run ends on the worker or the worker
retires (:func:`shutdown`). A file is released (:func:`finished`) once the worker ran its
last range and has no other chunk of it queued.

Planning over a wide-area network: an inspection's open of a ``root://`` file leaves the
worker's thread while it waits (:func:`off_thread`), so a worker opens up to
``OPEN_CONCURRENCY`` files at once and a fileset of hundreds of files costs about one
open's round trips per file in parallel, not several in series.

``jetdask.prefetch: false`` turns all of it off (files are still released after their last
chunk).
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor

from .. import config
from ..config_schema import size_bytes
from . import io, readahead, remote

OPEN_THREADS = 2          # files opened ahead at once per process
DEPTH = 3                 # chunks a thread reads ahead, at most (a round trip can outlast a chunk's analysis)
OPEN_CONCURRENCY = 8      # inspections of root:// files opening at once off the worker threads
FIRST_PIECES = 4          # vector reads the first entries of a file just planned are asked for in

stats: collections.Counter[str] = collections.Counter()     # this process: what was read and opened ahead
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_local = threading.local()
_open_slots = threading.BoundedSemaphore(OPEN_CONCURRENCY)


@dataclasses.dataclass(frozen=True)
class Next:
    """A chunk to prepare: its file (URLs in order), tree, entry range, and the task it is in."""
    urls: tuple
    tree: str
    start: int
    stop: int
    task: str | None = None       # key of the queued task it belongs to (None: a guess)
    file_uuid: str = ""

    @property
    def path(self) -> str:
        return self.urls[0]

    @classmethod
    def of(cls, chunk, task=None) -> "Next":
        return cls(tuple(chunk.urls), chunk.tree, int(chunk.entry_start), int(chunk.entry_stop), task,
                   chunk.file_uuid)


# -- policy (pure) ------------------------------------------------------------------------
def allowance(budget: int, running_estimate: int, files_bytes: int, held: int, cap: int) -> int:
    """Bytes more that may be read ahead now: what the chunk budget leaves after the running
    chunk's estimate, the open files and what is held already, and no more than ``cap`` held."""
    return max(0, min(cap, budget - running_estimate - files_bytes) - held)


def next_range(start: int, stop: int, num_entries: int) -> tuple[int, int] | None:
    """The range after ``[start, stop)``, as long (cut at the file's end); None at the end."""
    if stop >= num_entries or stop <= start:
        return None
    return stop, min(num_entries, stop + (stop - start))


def following(batch_rest: list, queued: list[tuple[str, list]]) -> list[Next]:
    """What a thread runs after its current chunk, in order: the rest of its batch, then the
    chunks of the tasks queued on its worker (``(key, chunks)`` in the order they run)."""
    out = [Next.of(c) for c in batch_rest]
    for key, chunks in queued:
        out.extend(Next.of(c, key) for c in chunks)
    return out


def enabled() -> bool:
    return bool(config.get("prefetch"))


def cap() -> int:
    return size_bytes(config.get("prefetch-bytes")) or 0


# -- what the worker side tells us -------------------------------------------------------
def expect(rest: list[Next], queued=None) -> None:
    """The chunks this thread runs after the one it starts now: ``rest`` (of its batch), then
    those of ``queued()``, the ``(key, chunks)`` of the tasks waiting on the worker, asked for
    when the chunk's baskets are in (tasks sent meanwhile are then known)."""
    _local.rest = rest
    _local.queued = queued


def _coming() -> list[Next]:
    rest = getattr(_local, "rest", None) or []
    queued = getattr(_local, "queued", None)
    return rest + following([], queued()) if queued is not None else list(rest)


def _tag():
    return threading.get_ident()


def after_read(chunk, url: str, tree, branches_of, estimate: int, budget: int) -> None:
    """The chunk's baskets are read (from ``url``, tree ``tree``): fetch the next chunk's.

    ``branches_of(tree, next)``: the branches the analysis reads in a tree; ``estimate``,
    ``budget``: the running chunk's memory estimate and the memory guard's chunk budget. Never
    raises: reading ahead is best effort, the chunk's own read reports every error.
    """
    if not enabled():
        return
    try:
        _after_read(chunk, url, tree, branches_of, estimate, budget)
    except Exception:  # noqa: BLE001 - see the docstring
        stats["errors"] += 1


def _after_read(chunk, url, tree, branches_of, estimate, budget) -> None:
    rest = _coming()
    me = _tag()
    todo = rest[:DEPTH] if rest else guesses(chunk, url, int(tree.num_entries), DEPTH)
    if not todo:
        readahead.drop_tagged_if(lambda t: t[0] == me)
        return
    limit = allowance(budget, estimate, io._cache.bytes, readahead.held.bytes, cap())
    for other in _files_after(rest, todo[0]):
        open_ahead(other.path, other.tree)
    wants, keep, opening = [], set(), False
    for n in todo:
        t = io._cache.get((n.path, n.tree))
        if t is None:
            if not opening:       # the first file not open yet: opened now, its baskets asked for then
                opening = True
                fut = open_ahead(n.path, n.tree)
                if fut is not None:
                    fut.add_done_callback(lambda f, n=n: _opened(f, n, branches_of, limit, me))
            continue
        got = _ranges(t, n, branches_of)
        if got is not None:
            wants.append((got[0], got[1], (me, n.task)))
            keep.update(got[1])
    readahead.drop_tagged_if(lambda t: t[0] == me, lambda r: (r.start, r.stop) not in keep)
    for store, ranges, tag in wants:
        limit -= _want(store, ranges, tag, limit)


def first_entries(url: str, tree_name: str, columns, info: dict) -> int:
    """Planning opened ``url`` on this worker, where its first chunk will run: read ahead the
    baskets of ``columns`` in its first ``jetdask.chunk-size`` entries (fewer when the chunk
    budget plans smaller chunks, ``info["max_events"]``), within ``info["budget"]``; bytes asked."""
    if not enabled() or not remote.is_xrootd(url):
        return 0
    from .columns import resolve_columns
    tree = io._cache.peek((url, tree_name))
    store = getattr(getattr(getattr(tree, "file", None), "source", None), "store", None)
    if store is None:
        return 0
    n = min(int(tree.num_entries), int(config.get("chunk-size")), int(info.get("max_events") or 2**62))
    budget = int(info.get("budget") or 0)
    if n <= 0 or budget <= 0:
        return 0
    branches = resolve_columns(tree.keys(), list(columns), path=url)
    limit = allowance(budget, 0, io._cache.bytes, readahead.held.bytes, cap())
    asked = 0
    for a in range(0, n, -(-n // FIRST_PIECES)):    # in pieces: the first chunk need not wait for the rest
        asked += _want(store, basket_ranges(tree, branches, a, min(n, a - (-n // FIRST_PIECES))), ("plan", url),
                       limit - asked)
    return asked


def guesses(chunk, url: str, num_entries: int, depth: int) -> list[Next]:
    """The next ``depth`` ranges of the file after ``chunk``, each as long as it (:func:`next_range`)."""
    out, a, b = [], chunk.entry_start, chunk.entry_stop
    for _ in range(depth):
        g = next_range(a, b, num_entries)
        if g is None:
            break
        out.append(Next((url,), chunk.tree, g[0], g[1], None, chunk.file_uuid))
        a, b = g
    return out


def _files_after(rest: list[Next], nxt: Next) -> list[Next]:
    """The first chunk of the next other file among the next few chunks (opened ahead)."""
    seen, out = {nxt.path}, []
    for n in rest[:8]:
        if n.path not in seen:
            seen.add(n.path)
            out.append(n)
    return out[:1]


def _opened(fut, nxt, branches_of, limit, me) -> None:
    """In the opening thread: the file of ``nxt`` is open; its baskets follow if still wanted."""
    try:
        if fut.exception() is not None:
            return          # the chunk opens it again and reports the error
        tree = fut.result()
        got = _ranges(tree, nxt, branches_of) if enabled() else None
        if got is not None:
            _want(got[0], got[1], (me, nxt.task), limit)
    except Exception:  # noqa: BLE001 - best effort
        stats["errors"] += 1


def _ranges(tree, nxt: Next, branches_of):
    """``(store, basket ranges)`` of ``nxt`` in its open ``tree``; None for a local file (the
    operating system reads it fast enough) or a file that is not the one planned."""
    store = getattr(getattr(tree.file, "source", None), "store", None)
    if store is None or (nxt.file_uuid and str(tree.file.uuid) != nxt.file_uuid):
        return None
    stop = min(nxt.stop, int(tree.num_entries))
    return store, basket_ranges(tree, branches_of(tree, nxt), nxt.start, stop)


def _want(store, ranges, tag, limit: int) -> int:
    """Ask for ``ranges`` not held yet, within ``limit`` bytes; the bytes asked for."""
    lacking = sum(b - a for a, b in ranges if not store.has(a, b))
    got = store.want(ranges, tag=tag, limit=max(0, limit))
    stats["bytes"] += got
    stats["chunks"] += 1 if got else 0
    if got < lacking:
        stats["over_budget"] += 1       # the budget left some of the chunk to its own read
    return got


def basket_ranges(tree, branches, entry_start: int, entry_stop: int) -> list[tuple[int, int]]:
    """Byte ranges of the baskets of ``branches`` in ``[entry_start, entry_stop)`` (those uproot
    reads for ``tree.arrays(branches, entry_start, entry_stop)``; embedded baskets have none)."""
    out = []
    for name in branches:
        for _, rb in tree[name].entries_to_ranges_or_baskets(entry_start, entry_stop):
            if isinstance(rb, tuple):
                out.append((int(rb[0]), int(rb[1])))
    return out


# -- opening ahead -----------------------------------------------------------------------
def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(OPEN_THREADS, thread_name_prefix="jetdask-open")
        return _pool


def open_ahead(url: str, tree: str = "Events"):
    """Open ``url`` in the background into the file cache (a ``root://`` file not open yet);
    the Future of the tree, or None. A chunk that needs it meanwhile waits for it
    (:func:`jetdask.nanoaod.io.open_tree`); an open that fails is repeated by that chunk."""
    if not enabled() or not remote.is_xrootd(url):
        return None
    fut, mine = io.claim((url, tree))
    if mine:
        stats["opens"] += 1
        _executor().submit(_open, fut, url, tree)
    return fut


def _open(fut, url: str, tree: str) -> None:
    try:
        io.run_claimed(fut, url, tree)
    except Exception:  # noqa: BLE001 - the chunk opens it again and reports the error
        stats["open_errors"] += 1


@contextlib.contextmanager
def off_thread(path: str):
    """Around a file inspection's open on a dask worker: a ``root://`` open waits off the worker's
    thread (``distributed.secede``/``rejoin``), at most ``OPEN_CONCURRENCY`` at once."""
    seceded = False
    if enabled() and remote.is_xrootd(path) and _open_slots.acquire(blocking=False):
        try:
            from distributed import secede
            from distributed.worker import thread_state
            if getattr(thread_state, "key", None) is not None:
                secede()
                seceded = True
        except Exception:  # noqa: BLE001 - not on a worker: nothing to leave
            seceded = False
        if not seceded:
            _open_slots.release()
    if seceded:
        with _pool_lock:
            stats["off_thread_now"] += 1
            stats["off_thread_peak"] = max(stats["off_thread_peak"], stats["off_thread_now"])
    try:
        yield
    finally:
        if seceded:
            with _pool_lock:
                stats["off_thread_now"] -= 1
            _open_slots.release()
            from distributed import rejoin
            rejoin()


# -- the worker side: finished chunks, cancelled tasks, the end ---------------------------
_ended: set = set()     # files whose last range this process ran, not yet released


def finished(chunk, url: str, rest: list[Next]) -> bool:
    """The worker ran ``chunk`` (read from ``url``): release the file once the worker ran its last
    range (now or before: a chunk may come back later, a retry, or a tail another worker left) and
    no chunk of it is among ``rest``. Returns whether it was released."""
    tree = io._cache.peek((url, chunk.tree))
    if tree is None:
        _ended.discard(url)
        return False
    if chunk.entry_stop >= int(tree.num_entries):
        if len(_ended) > 4096:
            _ended.clear()
        _ended.add(url)
    if url not in _ended or any(url in n.urls or chunk.path in n.urls for n in rest):
        return False
    _ended.discard(url)
    io.release(url)
    stats["released"] += 1
    return True


def forget_task(key: str) -> int:
    """A task was cancelled or released: drop what was read ahead for it; bytes freed."""
    return readahead.drop_tagged_if(lambda t: t[1] == key)


def shutdown() -> None:
    """The run ended on this worker, or the worker retires: drop every range read ahead."""
    readahead.drop_all()
    expect([])


def reset_stats() -> None:
    stats.clear()
    readahead.held.reset_peak()
    io._cache.reset_peak()
    readahead.counts.update({k: 0 for k in readahead.counts})


def stats_snapshot() -> dict:
    """What this process read and opened ahead, and the most it held (benchmarks, tests)."""
    return dict(stats, held=readahead.held.bytes, held_peak=readahead.held.peak, files_bytes=io._cache.bytes,
                files_peak=io._cache.peak, files=len(io._cache),
                **{f"ranges_{k}": v for k, v in readahead.counts.items()})
