"""Which branches a chunk reads: exact names, glob patterns, collection names, ``optional:``.

``resolve_columns(available, requested, path)`` expands what an analysis declares into the
sorted, de-duplicated list of branches to read:

* ``"Jet_pt"``: that branch (exact names are looked up first);
* ``"Jet_DeepJet_Cpfcan_*"``: a glob (``fnmatch``, case-sensitive; ``*``, ``?``, ``[...]``);
* ``"Jet"``: the collection, every ``Jet_*`` branch (not ``JetPFCands_*``) and its counter
  ``nJet``; ``"HLT"``: every ``HLT_*`` (per-event records have no counter);
* the counter ``nX`` of every ``X_*`` branch read is added when the file has it, so the
  events view always knows the collection's lists;
* ``"optional:NAME"`` (with any of the forms above): included when present, silently skipped
  when absent (truth branches such as ``Jet_FlavSplit`` that data files lack).

A required name or pattern that matches nothing raises
:class:`~jetdask.errors.MissingColumnError` (``column``: the first one missing, ``path``, and
a ``hint`` with the closest branch or collection names from ``difflib`` and the other missing
names). Cross-references of the events view need nothing special: request both collections
(see :func:`jetdask.nanoaod.events.required_branches_for_links`).
"""
from __future__ import annotations

import fnmatch
import re
from typing import Iterable

from ..errors import MissingColumnError
from ..suggest import close_names

OPTIONAL = "optional:"
_GLOB_CHARS = "*?["


def is_pattern(name: str) -> bool:
    """Whether ``name`` is a glob pattern rather than a branch or collection name."""
    return any(c in name for c in _GLOB_CHARS)


class _Index:
    """The branch names of one file, indexed for exact, prefix and glob look-ups."""

    def __init__(self, available: Iterable[str]):
        self.names = list(dict.fromkeys(str(a) for a in available))
        self.set = set(self.names)
        self.by_prefix: dict[str, list[str]] = {}
        for k in self.names:
            if "_" in k:
                self.by_prefix.setdefault(k.split("_", 1)[0], []).append(k)

    def match(self, name: str) -> list[str]:
        if is_pattern(name):
            rx = re.compile(fnmatch.translate(name))
            return [k for k in self.names if rx.match(k)]
        found = self.by_prefix.get(name, [])
        if name in self.set:
            return [name, *found]
        return list(found)

    def counter(self, branch: str) -> str | None:
        if "_" not in branch:
            return None
        c = "n" + branch.split("_", 1)[0]
        return c if c in self.set else None

    def hint(self, name: str) -> str:
        literal = re.sub(r"[*?\[\]]", "", name) if is_pattern(name) else name
        candidates = self.names + [p for p in self.by_prefix if p not in self.set]
        close = close_names(literal, candidates, n=5, cutoff=0.6)
        if not close and "_" in literal:
            prefix = literal.split("_", 1)[0]
            same = self.by_prefix.get(prefix, [])
            close = close_names(literal, same, n=5, cutoff=0.3)
            if not close and same:
                return (f"collection {prefix!r} has {len(same)} branches, none like {name!r} "
                        f"(e.g. {', '.join(same[:5])})")
        if close:
            return "did you mean " + ", ".join(close) + "?"
        return "the file has no branch or collection of that name"


def resolve_columns(available: Iterable[str], requested: Iterable[str], path: str | None = None) -> list[str]:
    """The sorted list of branches of ``available`` that ``requested`` asks for (see the module doc)."""
    if isinstance(requested, str):
        requested = [requested]
    index = _Index(available)
    out: set[str] = set()
    missing: list[str] = []
    for req in requested:
        req = str(req).strip()
        optional = req.startswith(OPTIONAL)
        name = req[len(OPTIONAL):].strip() if optional else req
        found = index.match(name) if name else []
        if not found:
            if not optional:
                missing.append(name)
            continue
        out.update(found)
    if missing:
        first = missing[0]
        hint = index.hint(first) if first else "empty column name"
        if len(missing) > 1:
            hint += "; also missing: " + ", ".join(repr(m) for m in missing[1:10])
            hint += " ..." if len(missing) > 10 else ""
        hint += " (prefix a name with 'optional:' if some files may lack it)"
        raise MissingColumnError(first, path, hint)
    for k in list(out):
        c = index.counter(k)
        if c is not None:
            out.add(c)
    return sorted(out)
