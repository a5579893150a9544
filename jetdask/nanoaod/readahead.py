"""Byte ranges of a remote file read ahead, and the bytes they hold in this process.

A :class:`Store` belongs to one open ``root://`` file (its :class:`~jetdask.nanoaod.remote.XRootDSource`).
:meth:`Store.want` sends XRootD vector reads for basket byte ranges (at most
``readv_iov_max`` ranges per request, as the server allows) and returns at once; the client's
threads fill them in. When uproot later asks the source for ranges, :meth:`Store.take` hands
over those read ahead (done or still arriving) and the source reads only the others, so a
chunk whose baskets were fetched while the previous chunk ran costs no round trip.

Every byte asked for is counted in :data:`held` from the request until the range is taken
(it is then the running chunk's memory, which its estimate covers) or dropped: by tag (the
chunk or task it was for), with its file, or all at once. A read ahead that failed is
forgotten: the chunk then reads the range itself, and a failure there is reported with
today's classes (:mod:`jetdask.nanoaod.remote`). Errors met while waiting for a range are
the client's status, as :class:`~jetdask.nanoaod.remote.XRootDStatusError`.
"""
from __future__ import annotations

import threading
import weakref


class Held:
    """Bytes read ahead in this process (asked for and not yet taken or dropped), and the peak."""

    def __init__(self):
        self._lock = threading.Lock()
        self.bytes = 0
        self.peak = 0

    def add(self, n: int) -> None:
        with self._lock:
            self.bytes += n
            self.peak = max(self.peak, self.bytes)

    def sub(self, n: int) -> None:
        with self._lock:
            self.bytes -= n

    def reset_peak(self) -> None:
        with self._lock:
            self.peak = self.bytes


held = Held()
_stores: "weakref.WeakSet[Store]" = weakref.WeakSet()
_stores_lock = threading.Lock()
counts = {"requested": 0, "taken": 0, "dropped": 0, "failed": 0, "requests": 0}   # ranges; requests


class Batch:
    """One vector read under way: its ranges' bytes by ``(start, stop)`` once it answered, or its error.

    One event and one lock per request, not per range: a chunk's read asks for hundreds of
    baskets, and uproot's own source makes two futures (each with its lock and condition) per
    basket, 0.15 s of 0.76 s of a remote chunk read's CPU time (measured, 5500 baskets).
    """

    __slots__ = ("buffers", "error", "_event", "_lock", "_callbacks")

    def __init__(self):
        self.buffers: dict | None = None
        self.error = None
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list = []

    def done(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout=None) -> None:
        self._event.wait(timeout)

    def add_done_callback(self, fn) -> None:
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(fn)
                return
        fn()

    def finish(self, buffers, error) -> None:
        with self._lock:
            self.buffers, self.error = buffers, error
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            fn()


class Range:
    """One byte range of a :class:`Batch`: a future uproot's :class:`~uproot.source.chunk.Chunk` can wait on."""

    __slots__ = ("start", "stop", "tag", "batch", "accounted")

    def __init__(self, start: int, stop: int, tag=None, batch: Batch | None = None):
        self.start, self.stop, self.tag, self.batch = start, stop, tag, batch
        self.accounted = False

    @property
    def size(self) -> int:
        return self.stop - self.start

    @property
    def _requested(self) -> Batch:
        if self.batch is None:
            raise RuntimeError(f"range [{self.start}, {self.stop}) was never requested")
        return self.batch

    def done(self) -> bool:
        return self._requested.done()

    def failed(self) -> bool:
        return self._requested.done() and self._requested.error is not None

    def result(self, timeout=None):
        batch = self._requested
        batch.wait(timeout)
        if batch.error is not None:
            raise batch.error
        return batch.buffers[(self.start, self.stop)]

    def add_done_callback(self, fn) -> None:
        self._requested.add_done_callback(fn)


def send(source, ranges: list[Range], on_error) -> list[Batch]:
    """Ask for ``ranges`` (each at most the server's element size) in vector reads of at most the
    server's number of elements; each range gets its :class:`Batch`. ``on_error(status)``: the
    exception a failed request sets (raised here when the request cannot be sent)."""
    max_n, _ = source.readv_limits()
    batches = []
    for i in range(0, len(ranges), max_n):
        part = ranges[i:i + max_n]
        batch = Batch()
        for r in part:
            r.batch = batch

        def callback(status, response, hosts, batch=batch):
            if status.error:
                batch.finish(None, on_error(status))
            else:
                batch.finish({(c.offset, c.offset + c.length): c.buffer for c in response.chunks}, None)

        counts["requests"] += 1
        status = source.file.vector_read(chunks=[(r.start, r.stop - r.start) for r in part],
                                         timeout=source.request_timeout(), callback=callback)
        if status.error:
            raise on_error(status)
        batches.append(batch)
    return batches


class Store:
    """The ranges of one open remote file read ahead (see the module docstring)."""

    def __init__(self, source):
        self._source = weakref.ref(source)
        self._ranges: dict[tuple[int, int], Range] = {}
        self._lock = threading.Lock()
        with _stores_lock:
            _stores.add(self)

    def __len__(self) -> int:
        return len(self._ranges)

    def __del__(self):
        # a file dropped without being closed (forgotten while read): what it held is not held
        try:
            left = sum(r.size for r in self._ranges.values() if r.accounted)
        except Exception:  # noqa: BLE001 - interpreter shutdown
            return
        if left:
            held.sub(left)

    def bytes(self) -> int:
        with self._lock:
            return sum(r.size for r in self._ranges.values() if r.accounted)

    def has(self, start: int, stop: int) -> bool:
        return (start, stop) in self._ranges

    def want(self, ranges, tag=None, limit: int | None = None) -> int:
        """Read ``ranges`` ahead (those not held already), up to ``limit`` bytes in all; bytes asked."""
        source = self._source()
        if source is None or source.closed:
            return 0
        _, max_size = source.readv_limits()
        todo, total = [], 0
        with self._lock:
            for start, stop in ranges:
                key = (int(start), int(stop))
                size = key[1] - key[0]
                if key in self._ranges or size <= 0 or size > max_size:
                    continue
                if limit is not None and total + size > limit:
                    continue          # the smaller ones that still fit are worth their round trip
                r = Range(key[0], key[1], tag)
                r.accounted = True
                todo.append(r)
                total += size
        if not todo:
            return 0
        held.add(total)
        counts["requested"] += len(todo)

        def failed(status):
            counts["failed"] += 1
            return source.status_error(status)
        try:
            send(source, todo, failed)
        except Exception:  # noqa: BLE001 - a read ahead that cannot be sent is simply not there
            held.sub(total)
            counts["failed"] += len(todo)
            return 0
        with self._lock:
            for r in todo:
                self._ranges[(r.start, r.stop)] = r
        return total

    def take(self, ranges) -> dict[tuple[int, int], Range]:
        """The ranges of ``ranges`` read ahead (done or arriving), removed from the store and from
        :data:`held`; those that failed already are dropped (the caller reads them itself)."""
        got = {}
        freed = 0
        with self._lock:
            for start, stop in ranges:
                r = self._ranges.pop((start, stop), None)
                if r is None:
                    continue
                if r.accounted:
                    freed += r.size
                    r.accounted = False
                if not r.failed():
                    got[(start, stop)] = r
        if freed:
            held.sub(freed)
        counts["taken"] += len(got)
        return got

    def drop(self, which=None) -> int:
        """Forget the ranges ``which(range)`` is true of (all: None); bytes freed."""
        freed = 0
        with self._lock:
            keys = [k for k, r in self._ranges.items() if which is None or which(r)]
            for k in keys:
                r = self._ranges.pop(k)
                if r.accounted:
                    freed += r.size
                    r.accounted = False
        if freed:
            held.sub(freed)
        counts["dropped"] += len(keys)
        return freed


def stores() -> list[Store]:
    with _stores_lock:
        return list(_stores)


def drop_tagged_if(tag_test, range_test=None) -> int:
    """Forget, in every file, the ranges whose tag passes ``tag_test`` (and that pass
    ``range_test``, when given); bytes freed."""
    def which(r):
        return r.tag is not None and tag_test(r.tag) and (range_test is None or range_test(r))
    return sum(s.drop(which) for s in stores())


def drop_all() -> int:
    return sum(s.drop() for s in stores())
