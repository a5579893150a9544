"""Opening files and reading a chunk's branches, with a per-process file cache.

Opening a PFNano file costs 0.1–0.4 s (TTree metadata of 300–1800 branches, with
:mod:`jetdask.nanoaod.uproot_speedups`); reading a 2k-event chunk costs tens of ms. Each
worker process therefore keeps its opened trees in a small LRU cache keyed by (path, tree),
so the second chunk of a file skips the open. Errors are translated once, here, into
:class:`~jetdask.errors.FileAccessError` with the path and the reason, or
:class:`~jetdask.errors.TransientFileError` when :func:`remote.classify` says
retrying may help (server unreachable, timeouts); missing, truncated or corrupt
files are permanent. A file that failed is dropped from the cache (reopened
next time). ``root://`` URLs are read through :mod:`jetdask.nanoaod.remote`.
"""
from __future__ import annotations

import collections
import threading
import time

import uproot

from .. import config
from ..errors import FileAccessError, TransientFileError
from . import remote, uproot_speedups

_cache: "collections.OrderedDict[tuple[str, str], object]" = collections.OrderedDict()
_lock = threading.Lock()
stats = {"opens": 0, "hits": 0, "open_seconds": 0.0}   # this process's opens (cached), their time


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


def _close(tree) -> None:
    """Close the file of an uproot tree; a file that fails to close is already unusable."""
    try:
        tree.file.close()
    except Exception:
        pass


def open_tree(path: str, tree: str = "Events", cache: bool = True):
    """The uproot TTree ``tree`` of ``path``, from the process cache when open."""
    key = (path, tree)
    if cache:
        with _lock:
            t = _cache.get(key)
            if t is not None:
                _cache.move_to_end(key)
                stats["hits"] += 1
                return t
    t0 = time.perf_counter()
    try:
        f = uproot.open(path, **_open_options(path))
        try:
            t = f[tree]
        except KeyError:
            raise FileAccessError(path, f"no tree {tree!r}; keys: {list(f.keys())[:10]}") from None
    except Exception as err:
        raise _classify(path, err) from None
    if cache:
        with _lock:
            stats["opens"] += 1
            stats["open_seconds"] += time.perf_counter() - t0
            _cache[key] = t
            while len(_cache) > config.get("file-cache-size"):
                _, old = _cache.popitem(last=False)
                _close(old)
    return t


def forget(path: str) -> None:
    """Drop every cached tree of ``path`` (after a read error, or when a file was replaced)."""
    with _lock:
        for key in [k for k in _cache if k[0] == path]:
            _cache.pop(key)


def cached_paths() -> list[str]:
    """Paths of the files this process has open, least recently used first."""
    with _lock:
        return [k[0] for k in _cache]


def clear_cache() -> None:
    """Close and drop every cached file of this process (benchmarks: measure cold opens)."""
    with _lock:
        while _cache:
            _close(_cache.popitem()[1])


def file_info(path: str, tree: str = "Events", cache: bool = False) -> dict:
    """What planning needs: UUID, entries and cluster boundaries.

    ``cache=True`` leaves the file open in this process' cache, for the chunks that follow
    (planning on a worker: its first chunk of the file then skips the open).
    """
    t = open_tree(path, tree, cache=cache)
    try:
        return {"path": path, "tree": tree, "uuid": str(t.file.uuid), "num_entries": int(t.num_entries),
                "clusters": [int(x) for x in t.common_entry_offsets()]}
    except Exception as err:
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
        except Exception:
            continue
    return int(total * frac)


_BATCHED = uproot_speedups.APPLIED["branch_names"]


def read_arrays(tree, branches, entry_start: int, entry_stop: int, path: str) -> dict:
    """Read ``branches`` of ``[entry_start, entry_stop)`` as a dict of awkward arrays.

    One ``TTree.arrays`` call for all branches (one pass over their baskets, as
    ``uproot.iterate`` does), with the branch-name listing memoized per tree (see
    :mod:`jetdask.nanoaod.uproot_speedups`). Without that memo, branch by branch is cheaper.
    """
    try:
        if _BATCHED:
            return tree.arrays(list(branches), entry_start=entry_start, entry_stop=entry_stop,
                               library="ak", how=dict)
        return {b: tree[b].array(entry_start=entry_start, entry_stop=entry_stop, library="ak") for b in branches}
    except MemoryError:
        raise
    except Exception as err:
        forget(path)
        raise _classify(path, err, (entry_start, entry_stop)) from None
