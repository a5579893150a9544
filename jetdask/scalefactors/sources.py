"""Systematic sources as the SF derivation sees them, and how their shifts combine.

A :class:`Source` names the categories of a histogram's ``syst`` axis that belong to one
systematic (``pileup`` -> ``pileup_up``/``pileup_down``; the 7-point scale envelope -> six
members), its group (``pile-up``, ``JES``, ``theory`` ...) and how its members combine:

* ``"updown"``: an up/down pair (or a single one-sided member); the upward shift of the
  result is the largest positive member shift, the downward the largest negative one, so
  a pair that moves the result the same way counts on one side only;
* ``"envelope"``: the same rule over any number of members (e.g. the muR/muF envelope).

Groups add their sources in quadrature; the total adds the groups and the statistical
components in quadrature. A source with ``in_total=False`` (a component of another, e.g. a
regrouped JES source beside the JES total) is reported per source only. Pure functions on numpy arrays, no histograms.
"""
from __future__ import annotations

import dataclasses
import re

import numpy as np

NOMINAL = "nominal"
COMBINES = ("updown", "envelope")
STAT_GROUP = "statistic"


@dataclasses.dataclass(frozen=True)
class Source:
    """One systematic: its ``syst``-axis members, its group and how the members combine."""
    name: str
    group: str
    members: tuple[str, ...]
    combine: str = "updown"
    in_total: bool = True      # False: a component of another source (breakdown only)

    def __post_init__(self):
        if self.combine not in COMBINES:
            raise ValueError(f"source {self.name!r}: combine must be one of {COMBINES}, got {self.combine!r}")
        if not self.members:
            raise ValueError(f"source {self.name!r} has no syst-axis members")


_SIDE = re.compile(r"^(?P<base>.+?)(?:_(?P<s1>up|down)|(?P<s2>Up|Down))$")


def sources_from_axis(categories, groups: dict | None = None) -> list[Source]:
    """Sources guessed from ``syst`` axis names when no registry describes them.

    ``X_up``/``X_down`` and ``XUp``/``XDown`` pair into source ``X`` (``updown``); any other
    non-nominal name is a one-member source. ``groups``: ``{source: group}`` (default: the
    source name is its own group). Order: first appearance on the axis.
    """
    groups = groups or {}
    members: dict[str, list[str]] = {}
    for c in categories:
        c = str(c)
        if c == NOMINAL:
            continue
        m = _SIDE.match(c)
        base = m.group("base") if m else c
        members.setdefault(base, []).append(c)
    return [Source(b, groups.get(b, b), tuple(ms)) for b, ms in members.items()]


def source_shift(shifts) -> tuple[np.ndarray, np.ndarray]:
    """``(up, down)`` magnitudes (both >= 0) of one source from its members' shifts
    (result(member) - result(nominal)), stacked on the first axis."""
    s = np.asarray(shifts, dtype=float)
    if s.ndim == 0 or s.shape[0] == 0:
        raise ValueError("a source needs at least one member shift")
    s = np.nan_to_num(s, nan=0.0)
    up = np.maximum(0.0, s.max(axis=0))
    down = np.maximum(0.0, -s.min(axis=0))
    return up, down


def quadrature(parts) -> np.ndarray:
    parts = [np.asarray(p, dtype=float) for p in parts]
    if not parts:
        return np.asarray(0.0)
    return np.sqrt(np.sum([p * p for p in parts], axis=0))


@dataclasses.dataclass
class Breakdown:
    """Uncertainties of one derived quantity: per source, per group and in total (magnitudes)."""
    sources: dict      # source name -> (up, down)
    groups: dict       # group -> (up, down)   (the statistical components in group "statistic")
    up: np.ndarray
    down: np.ndarray

    def group_names(self) -> list[str]:
        return list(self.groups)


def combine(shifts_by_source: dict, sources: list[Source], stat: dict | None = None) -> Breakdown:
    """Per-source, per-group and total uncertainties.

    ``shifts_by_source``: ``{source name: [member shift arrays]}`` in the order of
    ``sources``; ``stat``: ``{component: symmetric sigma array}`` (e.g. ``{"data": ..., "mc":
    ...}``), combined into group ``statistic``. Groups appear in the order of their first
    source; ``statistic`` first.
    """
    per_source, per_group = {}, {}
    if stat:
        s = quadrature(list(stat.values()))
        per_group[STAT_GROUP] = (s, s)
    grouped: dict[str, list] = {}
    for src in sources:
        if src.name not in shifts_by_source:
            continue
        up, down = source_shift(shifts_by_source[src.name])
        per_source[src.name] = (up, down)
        if src.in_total:
            grouped.setdefault(src.group, []).append((up, down))
    for g, parts in grouped.items():
        per_group[g] = (quadrature([p[0] for p in parts]), quadrature([p[1] for p in parts]))
    up = quadrature([v[0] for v in per_group.values()])
    down = quadrature([v[1] for v in per_group.values()])
    return Breakdown(per_source, per_group, up, down)
