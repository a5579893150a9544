"""'Did you mean ...?': the closest known names to a mistyped one, for every error that names a key,
a subcommand, an analysis class, a cluster kind, a branch (``difflib``'s ratio; one place for all)."""
from __future__ import annotations

import difflib
from typing import Iterable


def close_names(name: str, known: Iterable[str], n: int = 1, cutoff: float = 0.6) -> list[str]:
    """Up to ``n`` names of ``known`` like ``name``, the closest first (``difflib``, ratio >= ``cutoff``)."""
    return difflib.get_close_matches(str(name), [str(k) for k in known], n=n, cutoff=cutoff)


def did_you_mean(name: str, known: Iterable[str], cutoff: float = 0.6) -> str:
    """``"; did you mean 'x'?"`` for the closest known name, or ``""``."""
    near = close_names(name, known, 1, cutoff)
    return f"; did you mean {near[0]!r}?" if near else ""
