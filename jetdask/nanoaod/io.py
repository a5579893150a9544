"""Opening files and reading a chunk's branches, with a per-process file cache.

Opening a PFNano file costs 0.1–0.4 s (TTree metadata of 300–1800 branches, with
:mod:`jetdask.nanoaod.uproot_speedups`), and over a wide-area network a few round trips more;
reading a 2k-event chunk costs tens of ms. Each worker process therefore keeps its opened
trees in a cache keyed by (path, tree) (:mod:`jetdask.nanoaod.filecache`: bounded by their
memory, ``jetdask.file-cache-bytes``, and their number, ``jetdask.file-cache-size``), so the
second chunk of a file skips the open. A file being opened by another thread (a chunk, an
inspection, an open ahead by :mod:`jetdask.nanoaod.prefetch`) is waited for, not opened twice. Errors are translated
once, here, into :class:`~jetdask.errors.FileAccessError` with the path and the reason, or
:class:`~jetdask.errors.TransientFileError` when :func:`remote.classify` says retrying may
help (server unreachable, timeouts); missing, truncated or corrupt files are permanent. A
file that failed is dropped from the cache (reopened next time). ``root://`` URLs are read
through :mod:`jetdask.nanoaod.remote`.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import threading
import time

import uproot

from .. import config
from ..config_schema import size_bytes
from ..errors import FileAccessError, TransientFileError
from . import filecache, readahead, remote, uproot_speedups

log = logging.getLogger(__name__)

_cache = filecache.FileCache()
_lock = threading.Lock()
# (path, tree) -> the Future of its open under way in a thread of this process (:func:`claim`)
_opening: dict[tuple[str, str], concurrent.futures.Future] = {}
stats = {"opens": 0, "hits": 0, "open_seconds": 0.0}   # this process's opens (cached), their time
_close = filecache.close_tree


def _classify(path: str, err: BaseException, entries: tuple | None = None) -> FileAccessError:
    """The jetdask error for ``err``: :class:`TransientFileError` when retrying may help
    (:func:`remote.classify`), else :class:`FileAccessError`."""
    if isinstance(err, FileAccessError):
        return err
    if isinstance(err, FileNotFoundError):
        return FileAccessError(path, "no such file")
    if isinstance(err, remote.XRootDStatusError):
        reason = err.message
    else:
        reason = f"{type(err).__name__}: {err}".strip()
    if len(reason) > 500:
        reason = reason[:500] + "..."
    if remote.classify(err) == remote.TRANSIENT:
        return TransientFileError(path, reason, entries)
    return FileAccessError(path, reason)


def _open_options(path: str) -> dict:
    # no array cache: chunks read disjoint ranges, and the memory guard needs predictable memory
    opts = {"timeout": config.get("open-timeout"), "array_cache": None}
    if remote.is_xrootd(path):
        opts.update(remote.uproot_options())
    return opts


def cache_limits() -> tuple[int, int]:
    """(bytes, files) the cache may hold: ``jetdask.file-cache-bytes`` and ``jetdask.file-cache-size``."""
    return size_bytes(config.get("file-cache-bytes")) or 0, int(config.get("file-cache-size"))


def _open(path: str, tree: str):
    """The tree, opened now (no cache); errors classified."""
    try:
        f = uproot.open(path, **_open_options(path))
        try:
            return f[tree]
        except KeyError:
            raise FileAccessError(path, f"no tree {tree!r}; keys: {list(f.keys())[:10]}") from None
        finally:
            done = getattr(f.file.source, "opened", None)     # remote: the bytes read at the open go
            if done is not None:
                done()
    except Exception as err:  # noqa: BLE001 - anything uproot raises: one FileAccessError naming the file
        raise _classify(path, err) from None


def keep(path: str, tree: str, t, seconds: float, pin: bool = False) -> None:
    """Put an opened tree in the cache (counted as an open that took ``seconds``)."""
    with _lock:
        stats["opens"] += 1
        stats["open_seconds"] += seconds
    _cache.put((path, tree), t, filecache.tree_bytes(t), *cache_limits(), pin=pin)


def open_tree(path: str, tree: str = "Events", cache: bool = True, pin: bool = False):
    """The uproot TTree ``tree`` of ``path``, from the process cache when open. A file another
    thread of this process is opening (a chunk, an inspection, an open ahead) is waited for, not
    opened twice; when that open failed, it is opened again here, where its error is reported.
    ``pin``: held for the caller, who unpins it (:func:`reading`)."""
    key = (path, tree)
    if not cache:
        t = _open(path, tree)
        if pin:
            _cache.pin(t)
        return t
    t = _cached(key, pin)
    if t is not None:
        return t
    fut, mine = claim(key)
    if fut is not None and mine:
        return run_claimed(fut, path, tree, pin)
    if fut is not None:
        try:
            fut.result()
        except Exception as err:  # noqa: BLE001 - opened again here, where its error is reported
            log.debug("jetdask: opening %s in another thread failed (opened again now): %r", path, err)
    t = _cached(key, pin)      # kept by the other thread (unless evicted since)
    return t if t is not None else _open_and_keep(path, tree, pin)


def claim(key: tuple[str, str]) -> tuple[concurrent.futures.Future | None, bool]:
    """Who opens ``key`` = (path, tree) in this process: ``(None, False)`` when it is in the cache,
    ``(its Future, False)`` when another thread is opening it, else ``(a new Future, True)``:
    registered for the caller, who must open it with :func:`run_claimed`."""
    with _lock:
        fut = _opening.get(key)
        if fut is not None:
            return fut, False
        if key in _cache:
            return None, False
        fut = _opening[key] = concurrent.futures.Future()
        return fut, True


def run_claimed(fut: concurrent.futures.Future, path: str, tree: str, pin: bool = False):
    """Open and keep ``path`` claimed by :func:`claim`, its Future completed with the tree or
    the error (raised here too), and unregistered: the threads waiting for it go on."""
    try:
        t = _open_and_keep(path, tree, pin)
        fut.set_result(t)
        return t
    except BaseException as err:
        fut.set_exception(err)
        raise
    finally:
        with _lock:
            if _opening.get((path, tree)) is fut:
                del _opening[(path, tree)]


def _open_and_keep(path: str, tree: str, pin: bool):
    t0 = time.perf_counter()
    t = _open(path, tree)
    keep(path, tree, t, time.perf_counter() - t0, pin=pin)
    return t


def _cached(key: tuple[str, str], pin: bool):
    t = _cache.get(key, pin=pin)
    if t is not None:
        stats["hits"] += 1
    return t


@contextlib.contextmanager
def reading(path: str, tree: str = "Events"):
    """``open_tree`` for the length of a chunk's read: the tree is not closed under its reader
    when the cache evicts or releases it meanwhile (it is closed afterwards)."""
    t = open_tree(path, tree, pin=True)
    try:
        yield t
    finally:
        _cache.unpin(t)


def _drop_read_ahead(path: str) -> None:
    for key in [k for k in _cache.keys() if k[0] == path]:
        store = getattr(getattr(getattr(_cache.peek(key), "file", None), "source", None), "store", None)
        if store is not None:
            store.drop()


def forget(path: str) -> None:
    """Drop every cached tree of ``path`` and what was read ahead of it (after a read error, or
    when a file was replaced)."""
    _drop_read_ahead(path)
    _cache.pop(path)


def release(path: str) -> None:
    """This worker has no more chunks of ``path``: drop what was read ahead of it, and release its
    trees (:meth:`filecache.FileCache.finish`: closed first when room is needed, kept only while
    the released trees take at most a quarter of ``jetdask.file-cache-bytes``)."""
    keep = cache_limits()[0] // 4
    _drop_read_ahead(path)
    for key in [k for k in _cache.keys() if k[0] == path]:
        _cache.finish(key, keep)


def make_room(room: int, keep_path: str | None = None) -> int:
    """Close least recently used files (not ``keep_path``), then drop ranges read ahead, until the
    open files and the read-ahead bytes together take at most ``room`` bytes; bytes freed."""
    freed = 0
    if _cache.bytes + readahead.held.bytes > room:
        keep = {k for k in _cache.keys() if k[0] == keep_path}
        freed += _cache.shrink(max(0, room - readahead.held.bytes), keep=keep)
    if _cache.bytes + readahead.held.bytes > room:
        freed += readahead.drop_all()
    return freed


def held_bytes() -> int:
    """Memory this process's open files and read-ahead data take (estimated)."""
    return _cache.bytes + readahead.held.bytes


def cached_paths() -> list[str]:
    """Paths of the files this process has open, least recently used first."""
    return [k[0] for k in _cache.keys()]


def clear_cache() -> None:
    """Close and drop every cached file of this process (benchmarks: measure cold opens)."""
    readahead.drop_all()
    _cache.clear()


def file_info(path: str, tree: str = "Events", cache: bool = False) -> dict:
    """What planning needs: UUID, entries and cluster boundaries.

    ``cache=True`` leaves the file open in this process' cache, for the chunks that follow
    (planning on a worker: its first chunk of the file then skips the open). A ``root://``
    open waits off the worker's thread (:func:`jetdask.nanoaod.prefetch.off_thread`): the
    worker opens several files at once.
    """
    from . import prefetch
    with prefetch.off_thread(path):
        t = open_tree(path, tree, cache=cache)
    try:
        return {"path": path, "tree": tree, "uuid": str(t.file.uuid), "num_entries": int(t.num_entries),
                "clusters": [int(x) for x in t.common_entry_offsets()]}
    except Exception as err:  # noqa: BLE001 - anything uproot raises: one FileAccessError naming the file
        forget(path)
        raise _classify(path, err) from None
    finally:
        if not cache:
            _close(t)


def estimate_bytes(tree, branches, entry_start: int, entry_stop: int) -> int:
    """Uncompressed bytes of ``branches`` in ``[entry_start, entry_stop)``, from basket metadata."""
    n = max(int(tree.num_entries), 1)
    frac = (entry_stop - entry_start) / n
    total = 0
    for name in branches:
        try:
            total += int(tree[name].uncompressed_bytes)
        except Exception:  # noqa: BLE001 - a branch without size metadata counts for nothing in the estimate
            continue
    return int(total * frac)


def read_arrays(tree, branches, entry_start: int, entry_stop: int, path: str) -> dict:
    """Read ``branches`` of ``[entry_start, entry_stop)`` as a dict of awkward arrays.

    One ``TTree.arrays`` call for all branches (one pass over their baskets, as
    ``uproot.iterate`` does), when the branch-name listing is memoized per tree (see
    :mod:`jetdask.nanoaod.uproot_speedups`, applied by the run's workers). Without that memo,
    branch by branch is cheaper.
    """
    try:
        if uproot_speedups.APPLIED["branch_names"]:
            return tree.arrays(list(branches), entry_start=entry_start, entry_stop=entry_stop,
                               library="ak", how=dict)
        return {b: tree[b].array(entry_start=entry_start, entry_stop=entry_stop, library="ak") for b in branches}
    except MemoryError:
        raise
    except Exception as err:  # noqa: BLE001 - anything uproot raises: one FileAccessError naming the file
        forget(path)
        raise _classify(path, err, (entry_start, entry_stop)) from None
