"""Chunks waiting for a worker: one queue per file, handed out so that a file stays on one worker.

Opening a PFNano file costs 0.3-1 s of CPU (889 branches) and a worker keeps the files
it opened (:mod:`jetdask.nanoaod.io`), so every file has a *home*: the worker that planning
opened it on, or the first worker given its chunks. The queue also knows which files each
worker has open (those it was given, and those it reported open when the run began:
a resubmit or a second run on the same cluster opens nothing again). :meth:`Pending.take`
gives a worker with a free slot, in this order:

1. the next chunks of a file it is the home of;
2. a file with no home, one it has open first (the worker becomes its home);
3. a file of the home with most files waiting, one it has open first (the file moves to it);
4. the last chunks of the file with most chunks waiting among those it has open, else of
   the file with most chunks waiting per worker that has it open, if those are enough to be
   worth an open (:func:`steal_threshold`): the workers on it would not finish sooner alone;
   stealing from the back, so the home worker and the helper do not read the same baskets.

What one dask task runs is a *batch*: contiguous chunks of one file, as many as take about
``jetdask.batch-seconds`` and no more than a thread's share of the chunks left
(:func:`batch_size`); a chunk stays the unit of the ledger, the memory guard and the
failure policy.
"""
from __future__ import annotations

import collections
import math
from typing import Iterable, Iterator

from ..chunk import Chunk

BATCH_MAX = 64     # chunks in one task at most
OPENED = 0.01      # seconds: an open that took longer was not a hit of the worker's file cache
NEVER = 2**62      # a steal threshold no file reaches
DEFAULT_OPEN = 0.5  # seconds an open takes before one was measured (889-branch PFNano: 0.3-1 s)


def batch_size(chunk_seconds: float | None, target_seconds: float, unfinished: int, threads: int,
               mine: int = 0, own_threads: int = 1, cap: int = BATCH_MAX) -> int:
    """Chunks per task: about ``target_seconds`` of work, and no more than a thread's fair share.

    ``chunk_seconds``: the running mean of a chunk's time on its worker (``None`` before
    the first result: one chunk per task); ``unfinished``: chunks waiting or in flight;
    ``threads``: the worker threads they share; ``mine``: chunks the asking worker (of
    ``own_threads`` threads) already holds. A task takes at most an equal share per thread of
    the unfinished chunks, less what the worker holds per thread: the batches shrink as the
    run ends, so the last chunks spread over every thread, and a worker that holds a long
    batch gets a short one next.
    """
    if not chunk_seconds or chunk_seconds <= 0 or target_seconds <= 0:
        return 1
    share = unfinished // max(1, threads) - mine // max(1, own_threads)
    return max(1, min(int(target_seconds / chunk_seconds), cap, share))


def steal_threshold(open_seconds: float | None, chunk_seconds: float | None) -> int:
    """Fewest waiting chunks of a file worth opening it for on a second worker.

    Helping a file's home worker with its last chunks costs the helper a file open first:
    with less waiting work than one open takes, the home worker finishes it as soon alone.
    Before a chunk's time is known, no file is (the first result comes within one chunk's
    time; an open of a PFNano file costs 0.3-1 s, on every idle worker at once); before an
    open's time is known (every open so far hit a worker's file cache), one costs
    ``DEFAULT_OPEN`` seconds.
    """
    if not chunk_seconds or chunk_seconds <= 0:
        return NEVER
    return max(1, math.ceil((open_seconds or DEFAULT_OPEN) / chunk_seconds))


class Pace:
    """Running means of a chunk's time and of a file open on the workers (the batch size and the
    steal threshold follow them)."""

    def __init__(self, open_seconds: float | None = None):
        self.chunk_seconds: float | None = None
        self.open_seconds = open_seconds

    def chunk(self, seconds: float) -> None:
        if seconds > 0:
            self.chunk_seconds = seconds if self.chunk_seconds is None else 0.8 * self.chunk_seconds + 0.2 * seconds

    def opened(self, seconds: float) -> None:
        if seconds > OPENED:    # not a hit of the worker's file cache
            self.open_seconds = seconds if self.open_seconds is None else 0.8 * self.open_seconds + 0.2 * seconds

    def batch(self, target_seconds: float, unfinished: int, threads: int, mine: int = 0, own_threads: int = 1) -> int:
        return batch_size(self.chunk_seconds, target_seconds, unfinished, threads, mine, own_threads)

    def min_steal(self, planning: bool = False) -> int:
        """:func:`steal_threshold`; while files are still being planned, no file is worth an open
        for its tail: the files to come give an idle worker a file of its own."""
        return NEVER if planning else steal_threshold(self.open_seconds, self.chunk_seconds)


class Pending:
    """The waiting chunks, per file in first-seen order, with each file's home worker."""

    def __init__(self, homes: dict[str, str] | None = None, cache_size: int = 64):
        self.files: dict[str, collections.deque[Chunk]] = {}
        self.home: dict[str, str] = dict(homes or {})
        self.at: dict[str, dict[str, None]] = {}      # worker -> its home files that have chunks waiting
        self.homeless: dict[str, None] = {}           # files with chunks waiting and no home
        self.cache_size = cache_size                  # files a worker keeps open (jetdask.file-cache-size)
        self.open: dict[str, dict[str, None]] = {}    # worker -> files it has (probably) open, LRU order
        for path, w in self.home.items():
            self._opened(w, path)
        self.n = 0

    # -- contents -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.n

    def __bool__(self) -> bool:
        return self.n > 0

    def __iter__(self) -> Iterator[Chunk]:
        for dq in self.files.values():
            yield from dq

    def extend(self, chunks: Iterable[Chunk]) -> None:
        for c in chunks:
            self.push(c)

    def push(self, chunk: Chunk, front: bool = False) -> None:
        dq = self.files.get(chunk.path)
        if dq is None:
            dq = self.files[chunk.path] = collections.deque()
            self._index(chunk.path)
        dq.appendleft(chunk) if front else dq.append(chunk)
        self.n += 1

    def _index(self, path: str) -> None:
        h = self.home.get(path)
        (self.at.setdefault(h, {}) if h is not None else self.homeless)[path] = None

    def _unindex(self, path: str) -> None:
        h = self.home.get(path)
        group = self.at.get(h, {}) if h is not None else self.homeless
        group.pop(path, None)
        if h is not None and not group:
            self.at.pop(h, None)

    def _move(self, path: str, worker: str) -> None:
        self._unindex(path)
        self.home[path] = worker
        self._index(path)

    # -- workers --------------------------------------------------------------------------------
    def set_home(self, path: str, worker: str) -> None:
        """``worker`` opened ``path`` (it planned the file while the run went): its home."""
        if path in self.files:
            self._move(path, worker)
        else:
            self.home[path] = worker
        self._opened(worker, path)

    def has_home_work(self, worker: str) -> bool:
        """Chunks of a file whose home is ``worker`` are waiting."""
        return bool(self.at.get(worker))

    def note_open(self, worker: str, paths: Iterable[str]) -> None:
        """``worker`` has these files open (it said so when it joined the run)."""
        for path in paths:
            self._opened(worker, path)

    def _opened(self, worker: str, path: str) -> None:
        lru = self.open.setdefault(worker, {})
        lru.pop(path, None)
        lru[path] = None
        if len(lru) > self.cache_size:
            del lru[next(iter(lru))]

    def drop_worker(self, worker: str) -> None:
        """``worker`` left: its files have no home any more."""
        self.open.pop(worker, None)
        for path in list(self.at.get(worker, ())):
            self._unindex(path)
            del self.home[path]
            self._index(path)
        for path in [p for p, w in self.home.items() if w == worker]:
            del self.home[path]

    def take(self, worker: str, n: int = 1, min_steal: int = 1) -> list[Chunk]:
        """Up to ``n`` contiguous chunks of one file for ``worker`` (see the module docstring);
        none when the only work left is in files it does not have open with fewer than
        ``min_steal`` chunks waiting (:func:`steal_threshold`)."""
        if not self.n:
            return []
        mine = self.at.get(worker)
        if mine:
            return self._front(worker, next(iter(mine)), n)
        has = self.open.get(worker, {})
        if self.homeless:
            path = next((p for p in reversed(has) if p in self.homeless), None) or next(iter(self.homeless))
            self._move(path, worker)
            return self._front(worker, path, n)
        donor = max(self.at, key=lambda w: len(self.at[w]))
        if len(self.at[donor]) > 1:
            spare = list(self.at[donor])[1:]
            path = next((p for p in spare if p in has), spare[-1])
            self._move(path, worker)
            return self._front(worker, path, n)
        known = [p for p in self.files if p in has]     # every file has a home of its own: few files
        if known:
            return self._back(worker, max(known, key=lambda p: len(self.files[p])), n)
        per = {p: len(q) / self._holders(p) for p, q in self.files.items()}   # waiting per worker on it
        path = max(per, key=lambda p: per[p])
        if per[path] < min_steal:
            return []
        return self._back(worker, path, n)

    def _holders(self, path: str) -> int:
        """Workers that have ``path`` open (at least 1: its home)."""
        return max(1, sum(1 for lru in self.open.values() if path in lru))

    def _front(self, worker: str, path: str, n: int) -> list[Chunk]:
        dq = self.files[path]
        out = [dq.popleft() for _ in range(min(n, len(dq)))]
        self._after(worker, path, dq, len(out))
        return out

    def _back(self, worker: str, path: str, n: int) -> list[Chunk]:
        dq = self.files[path]
        out = [dq.pop() for _ in range(min(n, len(dq)))]
        out.reverse()
        self._after(worker, path, dq, len(out))
        return out

    def _after(self, worker: str, path: str, dq, taken: int) -> None:
        self.n -= taken
        self._opened(worker, path)
        if not dq:
            self._unindex(path)
            del self.files[path]
