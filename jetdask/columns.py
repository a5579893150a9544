"""Which branches a chunk reads: exact names, glob patterns, collection names, ``optional:``.

``resolve_columns(available, requested)`` expands what an analysis declares into the
sorted list of branches to read:

* ``"Jet_pt"``: that branch; ``"Jet_DeepJet_Cpfcan_*"``: a glob (fnmatch);
* ``"Jet"``: the collection, every ``Jet_*`` branch and its counter ``nJet``; ``"HLT"``: every ``HLT_*``;
* the counter ``nX`` of every jagged ``X_*`` branch is added when the file has it;
* ``"optional:NAME"``: included when present, silently skipped when absent (truth branches
  that data files lack).

A name or pattern that matches nothing raises :class:`~jetdask.errors.MissingColumnError`
with the closest branch names as a hint.
"""
from __future__ import annotations

import difflib
import fnmatch
from typing import Iterable

from .errors import MissingColumnError

OPTIONAL = "optional:"


def _match(available: list[str], avail_set: set[str], name: str) -> list[str]:
    if any(c in name for c in "*?["):
        return fnmatch.filter(available, name)
    if name in avail_set:
        return [name]
    prefix = name + "_"
    return [k for k in available if k.startswith(prefix)]


def resolve_columns(available: Iterable[str], requested: Iterable[str], path: str | None = None) -> list[str]:
    available = list(available)
    avail_set = set(available)
    out: set[str] = set()
    for req in requested:
        optional = req.startswith(OPTIONAL)
        name = req[len(OPTIONAL):] if optional else req
        found = _match(available, avail_set, name)
        if not found:
            if optional:
                continue
            close = difflib.get_close_matches(name, available, n=5, cutoff=0.6)
            hint = f"did you mean {', '.join(close)}?" if close else "the file has no branch of that name"
            raise MissingColumnError(name, path, hint)
        out.update(found)
    for k in list(out):
        if "_" in k:
            counter = "n" + k.split("_", 1)[0]
            if counter in avail_set:
                out.add(counter)
    return sorted(out)
