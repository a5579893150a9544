"""Light-jet SFs of a :class:`~jetdask.scalefactors.inputs.Region`: fixed working points and shape.

Each systematic variation re-derives the SF from the MC of that variation (data stay
nominal); the members' shifts from the nominal SF combine per source, group and in total as
:mod:`jetdask.scalefactors.sources` says. A bin without data, or without MC light jets in the
measured subset, is undefined: its SF is NaN here, it is named in the notes, and the export
writes 1 with a 100 % uncertainty there (:mod:`jetdask.scalefactors.export`).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .inputs import Region
from .ratio import Pieces, one_bin, ratio, scale_factor, split
from .sources import NOMINAL, Breakdown, Source, combine
from .workingpoints import WorkingPoint


def exact(a) -> np.ndarray:
    """``a`` rounded to 15 significant digits: the numbers JSON readers (correctionlib's
    included, whose parser is exact only up to 15 digits) read back bit for bit. The central
    SFs of a table are stored so, and the export writes them unchanged."""
    a = np.asarray(a, float)
    return np.array([float(f"{x:.15g}") for x in a.ravel()]).reshape(a.shape)


@dataclasses.dataclass
class SFTable:
    """Derived light-jet SFs of one tagger discriminant.

    ``kind="wp"``: arrays ``(working point, abseta, pt)``; ``kind="shape"``: ``(abseta, pt,
    discriminant bin)``. ``stat``: ``{"data": sigma, "mc": sigma}``; ``breakdown``: per
    source/group/total up and down magnitudes (statistics included in the total).
    """
    tagger: str
    discriminant: str
    kind: str
    abseta_edges: np.ndarray
    pt_edges: np.ndarray
    central: np.ndarray
    stat: dict
    breakdown: Breakdown
    defined: np.ndarray
    wps: list = dataclasses.field(default_factory=list)       # WorkingPoint (kind "wp")
    disc_edges: np.ndarray | None = None                     # kind "shape"
    norm: str = "pretag"
    notes: list = dataclasses.field(default_factory=list)
    mc_efficiency: np.ndarray | None = None                  # kind "wp": light-jet MC efficiency
    expected_light: np.ndarray | None = None                 # MC light jets measured (normalised)
    no_data: np.ndarray | None = None                        # undefined: no data in the bin
    no_light: np.ndarray | None = None                       # undefined: no MC light jet measured

    def why_undefined(self, index) -> str | None:
        """Why bin ``index`` has no SF (``"no data"``, ``"no MC light"``), None when it has one."""
        if self.defined[index]:
            return None
        if self.no_data is not None and self.no_data[index]:
            return "no data"
        if self.no_light is not None and self.no_light[index]:
            return "no MC light"
        return "undefined"

    def undefined_note(self) -> str | None:
        """One line: how many bins of this table have no SF (each is listed in ``notes``)."""
        n = int((~self.defined).sum())
        if not n:
            return None
        parts = []
        if self.no_data is not None and (k := int((self.no_data & ~self.defined).sum())):
            parts.append(f"{k} without data")
        if self.no_light is not None and (k := int((self.no_light & ~self.defined & ~self.no_data).sum())):
            parts.append(f"{k} without MC light jets")
        what = "working-point" if self.kind == "wp" else "shape"
        return (f"{self.tagger} {self.discriminant} {what}: {n} of {self.defined.size} bins undefined "
                f"({', '.join(parts) or 'undefined'}), written as 1 +- 1")

    @property
    def up(self) -> np.ndarray:
        """Total upward uncertainty (statistics and every group in quadrature)."""
        return self.breakdown.up

    @property
    def down(self) -> np.ndarray:
        """Total downward uncertainty (magnitude)."""
        return self.breakdown.down

    def sigma_towards(self, value: float = 1.0) -> np.ndarray:
        """The uncertainty on the side of ``value`` (down when SF > value, else up)."""
        return np.where(self.central > value, self.down, self.up)

    def distance(self, value: float = 1.0) -> np.ndarray:
        """(SF - value) in units of the uncertainty on the side of ``value``."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return (self.central - value) / self.sigma_towards(value)


def _pieces(region: Region, syst: str, cut) -> Pieces:
    """Pieces of one syst variation; ``cut(values, variances) -> ((t, vt), (u, vu))``."""
    def two(c):
        (t, vt), (u, vu) = cut(c.values, c.variances)
        return (t, vt), (u, vu)
    zero = np.zeros_like(region.light[syst].values)
    data = region.data if region.data is not None else type(region.light[syst])(zero, zero.copy())
    (dt, vdt), (du, vdu) = two(data)
    (nt, vnt), (nu, vnu) = two(region.nonlight[syst])
    (lt, vlt), (lu, vlu) = two(region.light[syst])
    return Pieces({"dt": dt, "du": du, "nt": nt, "nu": nu, "lt": lt, "lu": lu},
                  {"dt": vdt, "du": vdu, "nt": vnt, "nu": vnu, "lt": vlt, "lu": vlu})


def default_sources(region: Region) -> list[Source]:
    from .registry import sources_for
    return sources_for(region.syst)


def _measure(region: Region, cuts: list, sources: list[Source] | None, norm: str, axis: int):
    """SF, stat, breakdown over a list of subsets ``cuts`` stacked on ``axis``."""
    if not region.light:
        raise ValueError(f"{region.name}: no MC to derive a scale factor from")
    sources = default_sources(region) if sources is None else sources
    nom = [ratio(_pieces(region, NOMINAL if NOMINAL in region.light else region.syst[0], c), norm) for c in cuts]
    sf = exact(np.stack([r.sf for r in nom], axis=axis))
    stat = {"data": np.stack([r.stat_data for r in nom], axis=axis),
            "mc": np.stack([r.stat_mc for r in nom], axis=axis)}
    defined = np.stack([r.defined for r in nom], axis=axis)
    shifts = {}
    for src in sources:
        members = [m for m in src.members if m in region.light]
        if not members:
            continue
        shifts[src.name] = [np.stack([scale_factor(_pieces(region, m, c).values, norm) for c in cuts], axis=axis) - sf
                            for m in members]
    bd = combine(shifts, sources, stat)
    notes = list(region.notes)
    no_data = np.stack([r.no_data for r in nom], axis=axis)
    no_light = np.stack([r.no_light for r in nom], axis=axis)
    expected = np.stack([r.expected_light for r in nom], axis=axis)
    return sf, stat, bd, defined, no_data, no_light, notes, expected


def _bin_notes(table: SFTable, no_data, no_light, labels) -> list[str]:
    """One line per undefined bin: which bin and why."""
    notes = []
    for idx in zip(*np.nonzero(~table.defined)):
        why = "no data" if no_data[idx] else ("no MC light jets" if no_light[idx] else "undefined")
        notes.append(f"{table.tagger} {table.discriminant} {labels(idx)}: {why}; SF set to 1 +- 1 in the export")
    return notes


def _range(edges, i) -> str:
    return f"{edges[i]:g}-{edges[i + 1]:g}"


def derive_wp(region: Region, wps: list[WorkingPoint], sources: list[Source] | None = None,
              norm: str = "pretag") -> SFTable:
    """Fixed working-point SFs ``(wp, abseta, pt)``: SF = (data - MC non-light) / MC light above the cut."""
    cuts = [lambda v, w, i=wp.index: split(v, w, i) for wp in wps]
    sf, stat, bd, defined, no_data, no_light, notes, expected = _measure(region, cuts, sources, norm, axis=0)
    lv = region.light[NOMINAL if NOMINAL in region.light else region.syst[0]].values
    with np.errstate(divide="ignore", invalid="ignore"):
        eff = np.stack([split(lv, lv, wp.index)[0][0] / lv.sum(-1) for wp in wps])
    t = SFTable(region.tagger, region.discriminant, "wp", region.abseta_edges, region.pt_edges, sf, stat, bd,
                defined, wps=list(wps), norm=norm, notes=notes + [w.note for w in wps if w.note], mc_efficiency=eff,
                expected_light=expected, no_data=no_data, no_light=no_light)
    t.notes += _bin_notes(t, no_data, no_light,
                          lambda i: f"WP {wps[i[0]].name}, |eta| {_range(t.abseta_edges, i[1])}, "
                                    f"pT {_range(t.pt_edges, i[2])} GeV")
    return t


def derive_shape(region: Region, sources: list[Source] | None = None, norm: str = "pretag") -> SFTable:
    """Shape SFs ``(abseta, pt, discriminant bin)``: SF = (data - MC non-light) / MC light in each
    discriminant bin (flows with the edge bins). With ``norm="pretag"`` they keep the light-jet
    yield of each (pT, |eta|) bin: sum_i L_i SF_i = L."""
    n = len(region.disc_edges) - 1
    cuts = [lambda v, w, i=i: one_bin(v, w, i) for i in range(n)]
    sf, stat, bd, defined, no_data, no_light, notes, expected = _measure(region, cuts, sources, norm, axis=-1)
    t = SFTable(region.tagger, region.discriminant, "shape", region.abseta_edges, region.pt_edges, sf, stat, bd,
                defined, disc_edges=region.disc_edges, norm=norm, notes=notes, expected_light=expected,
                no_data=no_data, no_light=no_light)
    for ie, ip in zip(*np.nonzero((~defined).any(-1))):   # one line per (|eta|, pT) bin
        bad = ~defined[ie, ip]
        where = f"{t.tagger} {t.discriminant} shape, |eta| {_range(t.abseta_edges, ie)}, pT {_range(t.pt_edges, ip)} GeV"
        if no_data[ie, ip].all():
            t.notes.append(f"{where}: no data; SF set to 1 +- 1 in the export")
        else:
            t.notes.append(f"{where}: {int(bad.sum())} of {n} discriminant bins without data or MC light jets; "
                           "SF set to 1 +- 1 there in the export")
    return t
