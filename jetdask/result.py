"""What a chunk returns: histograms, counters and arrays to save.

:class:`Result` is an additive container: ``a + b`` adds histograms bin by bin
(``hist`` addition) and counters. Arrays are not carried back to the client:
the worker writes them to parquet (see :mod:`jetdask.engine.task`) and the result only
keeps their paths. Results persist as JSON with the UHI serialization of
histograms (no pickle).
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any

import hist
import uhi.io.json as uhi_json


@dataclasses.dataclass
class Result:
    """What an analysis returns for one chunk: histograms, counters, and arrays to save.

    ``hists``: name -> :class:`hist.Hist`; ``counters``: name -> number (summed over chunks);
    ``arrays``: name -> awkward array, written to parquet by the worker (``array_files`` then
    holds the paths). Results add: ``a + b`` adds histograms bin by bin and counters.
    """
    hists: dict[str, hist.Hist] = dataclasses.field(default_factory=dict)
    counters: dict[str, float] = dataclasses.field(default_factory=dict)
    arrays: dict[str, Any] = dataclasses.field(default_factory=dict)   # name -> ak.Array (worker side only)
    array_files: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # name -> parquet paths

    def __add__(self, other: "Result") -> "Result":
        out = Result(dict(self.hists), dict(self.counters), {}, {k: list(v) for k, v in self.array_files.items()})
        out.iadd(other)
        return out

    def iadd(self, other: "Result") -> "Result":
        """Add ``other`` into this result (histograms, counters, array files) and return it."""
        for k, h in other.hists.items():
            if k in self.hists:
                self.hists[k] = self.hists[k] + h
            else:
                self.hists[k] = h.copy()
        for k, v in other.counters.items():
            self.counters[k] = self.counters.get(k, 0) + v
        for k, v in other.array_files.items():
            self.array_files.setdefault(k, []).extend(v)
        return self

    # -- persistence ------------------------------------------------------
    def to_json(self) -> str:
        """This result as JSON text (histograms in the UHI form; arrays by their files)."""
        return json.dumps({"hists": self.hists, "counters": self.counters, "array_files": self.array_files},
                          default=uhi_json.default)

    @classmethod
    def from_json(cls, text: str) -> "Result":
        """The result that :meth:`to_json` wrote."""
        d = json.loads(text, object_hook=uhi_json.object_hook)
        return cls({k: hist.Hist(v) for k, v in d["hists"].items()}, d["counters"], {}, d.get("array_files", {}))


def merge(results) -> Result:
    """Sum an iterable of results in the given order."""
    total = Result()
    for r in results:
        total.iadd(r)
    return total
