"""Three hot spots of uproot on wide PFNano trees, made cheaper in a process that asks for it.

A PFNano tree has ~900 branches; uproot deserializes every TBranch when the tree is opened,
and lists every branch name on each ``TTree.arrays`` call. Three costs there grow with the
number of branches (measured on the 889-branch synthetic file, 251 baskets per branch):

* **the branch-name listing** (``TBranch._keys_deep``) costs 14 ms per ``TTree.arrays`` call,
  more than reading 20 branches of 2k events (8 ms). A tree read from a file does not change,
  so the set is kept on the tree object (only membership is tested on it);
* **the class-name reads of an open** (``Cursor.classname``) each copy the whole rest of the
  tree's metadata buffer (a few MB) to find the next null byte: 3.5k copies, 0.12 s of a
  0.29 s open. The terminator is looked for in a window that grows (64 bytes, then x8);
* **class-name normalisation** (``uproot.model.classname_regularize``, 8k calls per open) runs
  two regular expressions on a handful of distinct names; it is a pure function of its
  string, so its results are memoized.

Nothing is patched when jetdask is imported: uproot stays as it is for every other user of it
in the process. :func:`apply` patches this process (idempotent); jetdask calls it where its own
work runs: the run's worker plugin on every worker (:mod:`jetdask.engine.workerside`), a file's
inspection at planning (it may run before the plugin), and the ``jetdask`` command. A Python
process that runs chunks itself (``Runner(..., serial=True)``) may call it too.

Each patch checks that uproot still has what it replaces and does nothing otherwise
(:data:`APPLIED` says which took). They change no result: ``tests/test_uproot_speedups.py``
opens real files with and without them and compares every branch's name, type and entries.
Measured effect on opening the 889-branch tree: ``benchmarks/open.py`` and docs/performance.md.
"""
from __future__ import annotations

import functools

import numpy

_FIRST_WINDOW = 64


def memoize_branch_names() -> bool:
    """``TBranch._keys_deep`` once per tree object (False: this uproot has no such function)."""
    try:
        from uproot.behaviors import TBranch as tbranch
    except ImportError:  # pragma: no cover
        return False
    original = getattr(tbranch, "_keys_deep", None)
    if original is None:  # pragma: no cover - uproot changed its internals
        return False
    if getattr(original, "_jetdask_memoized", False):
        return True

    def keys_deep(hasbranches):
        try:
            return hasbranches.__dict__["_jetdask_keys_deep"]
        except (KeyError, AttributeError):
            keys = frozenset(original(hasbranches))
            try:
                hasbranches.__dict__["_jetdask_keys_deep"] = keys
            except AttributeError:  # pragma: no cover - no instance dict
                pass
            return keys

    keys_deep.__dict__["_jetdask_memoized"] = True
    tbranch._keys_deep = keys_deep
    return True


def find_terminator(buffer) -> int:
    """Index of the first null byte of ``buffer`` (a uint8 array), or -1, looking at a
    window that grows instead of copying the whole buffer."""
    n = len(buffer)
    k = _FIRST_WINDOW
    while True:
        hits = numpy.flatnonzero(buffer[:k] == 0)
        if len(hits):
            return int(hits[0])
        if k >= n:
            return -1
        k *= 8


def windowed_classname() -> bool:
    """``Cursor.classname`` without copying the rest of the buffer (False: not applied)."""
    try:
        from uproot.source import cursor as cursor_mod
    except ImportError:  # pragma: no cover
        return False
    cls = getattr(cursor_mod, "Cursor", None)
    original = getattr(cls, "classname", None)
    if cls is None or original is None:  # pragma: no cover - uproot changed its internals
        return False
    if getattr(original, "_jetdask_windowed", False):
        return True

    def classname(self, chunk, context, move=True):
        remainder = chunk.remainder(self._index, self, context)
        stop = find_terminator(remainder)
        if stop < 0:   # uproot's own message for a string without terminator
            return original(self, chunk, context, move)
        if move:
            self._index += stop + 1
        return remainder[:stop].tobytes().decode(errors="surrogateescape")

    classname.__dict__["_jetdask_windowed"] = True
    classname.__doc__ = original.__doc__
    cls.classname = classname
    return True


def memoize_classname_regularize() -> bool:
    """``uproot.model.classname_regularize`` memoized (False: not applied)."""
    try:
        from uproot import model
    except ImportError:  # pragma: no cover
        return False
    original = getattr(model, "classname_regularize", None)
    if original is None:  # pragma: no cover
        return False
    if getattr(original, "_jetdask_memoized", False):
        return True
    cached = functools.lru_cache(maxsize=4096)(original)

    def regularize(classname):
        if not isinstance(classname, str):   # None, or bytes: as uproot does
            return original(classname)
        return cached(classname)

    regularize.__dict__["_jetdask_memoized"] = True
    regularize.__doc__ = original.__doc__
    model.classname_regularize = regularize
    return True


#: Which patch took in this process (all False until :func:`apply`).
APPLIED = {"branch_names": False, "classname": False, "classname_regularize": False}
_PATCHES = {"branch_names": memoize_branch_names, "classname": windowed_classname,
            "classname_regularize": memoize_classname_regularize}


def apply() -> dict[str, bool]:
    """Patch uproot in this process (each patch once); :data:`APPLIED`."""
    for name, patch in _PATCHES.items():
        if not APPLIED[name]:
            APPLIED[name] = patch()
    return dict(APPLIED)
