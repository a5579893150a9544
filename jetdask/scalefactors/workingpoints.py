"""Working points: where the cuts come from and how they meet the histogram's bin edges.

* an official tagger: ``L``/``M``/``T`` from the ``<tagger>_wp_values`` correction of a b-tagging
  correction file (:func:`from_correction_file`);
* a private tagger: cuts given by the user (``"L:0.1,M:0.5,T:0.9"``, :func:`parse`), or, when
  none are given, the CMS definition by MC light-jet mistag rate (10 %, 1 %, 0.1 % for L, M, T:
  :func:`from_mistag_rates`).

A measurement can only cut at a bin edge of the histogram: :func:`snap` moves a cut to the
nearest edge and says so when it is not exactly on one.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import ConfigError

MISTAG_RATES = {"L": 0.1, "M": 0.01, "T": 0.001}
WP_ORDER = ("L", "M", "T", "XT", "XXT")


@dataclasses.dataclass(frozen=True)
class WorkingPoint:
    name: str
    cut: float        # the cut as given
    index: int        # bin-edge index used
    used: float       # the edge actually used
    origin: str       # "file", "given", "mistag 1%"

    @property
    def note(self) -> str | None:
        if np.isclose(self.cut, self.used, rtol=0, atol=1e-9):
            return None
        return f"WP {self.name}: cut {self.cut:.4g} taken at the nearest bin edge {self.used:.4g}"


def sort_wps(names) -> list[str]:
    return sorted(names, key=lambda n: (WP_ORDER.index(n) if n in WP_ORDER else len(WP_ORDER), n))


def parse(text: str, key: str = "--wp") -> dict[str, float]:
    """``"L:0.1,M:0.5,T:0.9"`` -> ``{"L": 0.1, "M": 0.5, "T": 0.9}``."""
    out = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, sep, value = part.partition(":")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"expected NAME:CUT, got {part!r}", key) from None
        if not sep or not name.strip():
            raise ConfigError(f"expected NAME:CUT, got {part!r}", key)
    if not out:
        raise ConfigError(f"no working point in {text!r}", key)
    return out


def from_correction_file(path: str, tagger: str) -> dict[str, float] | None:
    """``{wp: cut}`` from ``<tagger>_wp_values`` of a correctionlib file; None when it has none."""
    import correctionlib
    try:
        cset = correctionlib.CorrectionSet.from_file(str(path))
    except (OSError, RuntimeError, ValueError) as err:
        raise ConfigError(f"cannot read correction file {path}: {err}", "wp_file") from None
    name = f"{tagger}_wp_values"
    if name not in cset:
        return None
    corr = cset[name]
    out = {}
    for wp in WP_ORDER:
        try:
            out[wp] = float(corr.evaluate(wp))
        except IndexError:   # correctionlib: a category key the file does not define (e.g. XT)
            pass
    return out or None


def snap(name: str, cut: float, edges, origin: str) -> WorkingPoint:
    """The working point at the bin edge nearest to ``cut`` (inner edges only: a cut at the
    lowest edge tags everything, one at the top nothing)."""
    edges = np.asarray(edges, float)
    i = int(np.argmin(np.abs(edges - cut)))
    return WorkingPoint(name, float(cut), i, float(edges[i]), origin)


def from_mistag_rates(light_values, edges, rates: dict | None = None) -> dict[str, float]:
    """Cuts at which the MC light-jet mistag rate first falls to ``rates`` (default 10 %, 1 %,
    0.1 %): the lowest bin edge whose fraction of light jets above is <= the rate.

    ``light_values``: light-jet counts along a with-flow discriminant axis (underflow, bins, overflow)."""
    v = np.asarray(light_values, float)
    total = v.sum()
    edges = np.asarray(edges, float)
    out = {}
    for name, rate in (rates or MISTAG_RATES).items():
        if total <= 0:
            continue
        above = np.array([v[i + 1:].sum() for i in range(len(edges))]) / total
        ok = np.flatnonzero(above <= rate)
        if ok.size:
            out[name] = float(edges[ok[0]])
    return out


def resolve(names_cuts: dict[str, float], edges, origin: str) -> tuple[list[WorkingPoint], list[str]]:
    """Snapped working points, ordered L, M, T, and the notes for cuts off the edges."""
    wps = [snap(n, names_cuts[n], edges, origin) for n in sort_wps(names_cuts)]
    return wps, [w.note for w in wps if w.note]
