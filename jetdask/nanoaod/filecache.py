"""The open trees of one process, bounded by their memory and by their number.

An open PFNano tree holds its branches' metadata: about 10 kB per branch plus the basket
index (9.5 MB for an 889-branch tree of 200 events, 14 MB with 300 baskets per branch,
18 MB for the 1800-branch real PFNano file; measured as the resident memory of 10 trees).
:func:`tree_bytes` estimates it from the branch count and the size of the tree's record.

The cache keeps trees least recently used first. A tree the worker has no more chunks of is
*released* (:meth:`FileCache.finish`): it is closed first whenever room is needed, and kept
at all only while the released trees take at most ``keep`` bytes (a quarter of the bound:
a next run over the same files finds them open). Beyond ``jetdask.file-cache-bytes`` or
``jetdask.file-cache-size`` the cache closes released trees, then the least recently used;
:meth:`FileCache.shrink` closes more when a chunk needs the room. A tree in use
(:meth:`FileCache.pin`) is never closed under its reader: when it is evicted or released
meanwhile, the last :meth:`FileCache.unpin` closes it.
"""
from __future__ import annotations

import collections
import logging
import threading

log = logging.getLogger(__name__)

PER_BRANCH = 10_500    # bytes of Python objects per TBranch of an open tree (measured, see above)


def _count(branches) -> int:
    return sum(1 + _count(b.branches) for b in branches)


def tree_bytes(tree) -> int:
    """Estimated memory an open ``tree`` holds (its branches' metadata and basket index)."""
    try:
        n = _count(tree.branches)
    except Exception:  # noqa: BLE001 - an estimate; a tree uproot cannot list is rare
        n = 0
    try:
        record = int(tree.file.key(tree.name).data_uncompressed_bytes)
    except Exception:  # noqa: BLE001 - a tree not at the top of its file
        record = 0
    return PER_BRANCH * n + record


_closer = None


def _close_now(tree) -> None:
    try:
        tree.file.close()
    except Exception as err:  # noqa: BLE001 - a file that fails to close is already unusable
        log.debug("jetdask: closing %s failed: %r", getattr(tree.file, "file_path", "a file"), err)


def close_tree(tree) -> None:
    """Close the file of an uproot tree: a remote file in a background thread (closing is a round
    trip to its server, which the chunk that evicted it need not wait for), a local one now."""
    global _closer
    if not str(getattr(tree.file, "file_path", "")).startswith(("root://", "roots://")):
        _close_now(tree)
        return
    if _closer is None:
        from concurrent.futures import ThreadPoolExecutor
        _closer = ThreadPoolExecutor(1, thread_name_prefix="jetdask-close")
    _closer.submit(_close_now, tree)


class FileCache:
    """Trees by ``(path, tree name)``, least recently used first (see the module docstring)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._trees: "collections.OrderedDict[tuple[str, str], tuple[object, int]]" = collections.OrderedDict()
        self._pins: collections.Counter = collections.Counter()      # id(tree) -> readers
        self._orphans: dict[int, object] = {}                         # evicted while pinned: closed at unpin
        self._finished: "collections.OrderedDict[tuple[str, str], None]" = collections.OrderedDict()
        self.bytes = 0
        self.peak = 0          # the most bytes held at once (benchmarks; reset_peak)

    def reset_peak(self) -> None:
        self.peak = self.bytes

    def __len__(self) -> int:
        return len(self._trees)

    def __contains__(self, key) -> bool:
        return key in self._trees

    def get(self, key, pin: bool = False):
        """The tree of ``key`` (most recently used now; ``pin``: held for a reader too), or None."""
        with self._lock:
            got = self._trees.get(key)
            if got is None:
                return None
            self._trees.move_to_end(key)
            self._finished.pop(key, None)          # wanted again
            if pin:
                self._pins[id(got[0])] += 1
            return got[0]

    def peek(self, key):
        """The tree of ``key`` or None, its place in the order unchanged."""
        with self._lock:
            got = self._trees.get(key)
            return None if got is None else got[0]

    def finish(self, key, keep: int) -> None:
        """``key``'s tree is released: closed first when room is needed, and now if the released
        trees take more than ``keep`` bytes (oldest released first)."""
        with self._lock:
            if key not in self._trees:
                return
            self._finished[key] = None
            self._finished.move_to_end(key)
            out = []
            for k in list(self._finished):
                if self.finished_bytes() <= keep:
                    break
                if not self._pins[id(self._trees[k][0])]:
                    out.append(self._remove(k))
        for t in out:
            close_tree(t)

    def finished_bytes(self) -> int:
        return sum(self._trees[k][1] for k in self._finished)

    def _remove(self, key):
        tree, n = self._trees.pop(key)
        self._finished.pop(key, None)
        self.bytes -= n
        return tree

    def put(self, key, tree, nbytes: int, max_bytes: int, max_count: int, pin: bool = False) -> None:
        """Keep ``tree`` (``pin``: held for a reader too); close the oldest others beyond the bounds."""
        with self._lock:
            if key in self._trees:
                self._retire(self._remove(key))
            if pin:
                self._pins[id(tree)] += 1
            self._trees[key] = (tree, nbytes)
            self.bytes += nbytes
            self.peak = max(self.peak, self.bytes)
            out = self._evict(max_bytes, max_count, keep=key)
        for t in out:
            close_tree(t)

    def shrink(self, max_bytes: int, keep=()) -> int:
        """Close least recently used trees (not in ``keep``, nor in use) until at most ``max_bytes``
        are held; bytes freed."""
        with self._lock:
            before = self.bytes
            out = self._evict(max_bytes, None, keep=set(keep))
            freed = before - self.bytes
        for t in out:
            close_tree(t)
        return freed

    def _evict(self, max_bytes: int, max_count: int | None, keep) -> list:
        keep = keep if isinstance(keep, set) else {keep}
        out = []
        for key in list(self._finished) + [k for k in self._trees if k not in self._finished]:
            if self.bytes <= max_bytes and (max_count is None or len(self._trees) <= max_count):
                break
            if key in keep or self._pins[id(self._trees[key][0])]:
                continue
            out.append(self._remove(key))
        return out

    def _retire(self, tree) -> list:
        """``tree`` leaves the cache: closed now, or by its last reader."""
        if self._pins[id(tree)]:
            self._orphans[id(tree)] = tree
            return []
        return [tree]

    def pop(self, path: str, close: bool = False) -> int:
        """Drop every tree of ``path`` (closed when ``close`` and no reader holds it); how many."""
        with self._lock:
            keys = [k for k in self._trees if k[0] == path]
            out = []
            for k in keys:
                tree = self._remove(k)
                if close:
                    out.extend(self._retire(tree))
        for t in out:
            close_tree(t)
        return len(keys)

    def pin(self, tree) -> None:
        with self._lock:
            self._pins[id(tree)] += 1

    def unpin(self, tree) -> None:
        with self._lock:
            self._pins[id(tree)] -= 1
            if self._pins[id(tree)] > 0:
                return
            del self._pins[id(tree)]
            orphan = self._orphans.pop(id(tree), None)
        if orphan is not None:
            close_tree(orphan)

    def keys(self) -> list:
        with self._lock:
            return list(self._trees)

    def clear(self) -> None:
        with self._lock:
            out = [t for t, _ in self._trees.values() if not self._pins[id(t)]]
            for t, _ in self._trees.values():
                if self._pins[id(t)]:
                    self._orphans[id(t)] = t
            self._trees.clear()
            self._finished.clear()
            self.bytes = 0
        for t in out:
            close_tree(t)
