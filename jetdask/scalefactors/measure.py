"""Light-jet SFs of a :class:`~jetdask.scalefactors.inputs.Region`: fixed working points and shape.

Each systematic variation re-derives the SF from the MC of that variation (data stay
nominal); the members' shifts from the nominal SF combine per source, group and in total as
:mod:`jetdask.scalefactors.sources` says. A bin without data, or without MC light jets in the
measured subset, or whose statistical uncertainty exceeds 1 (:data:`MAX_STAT`: no better than
no measurement, and an up variation of SF + 10 would weigh its MC jets by 11), is undefined: it
is named in the notes, and the export writes 1 with a 100 % uncertainty there
(:mod:`jetdask.scalefactors.export`). The table keeps the measured numbers of imprecise bins.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from . import shapebins
from .inputs import Region
from .ratio import Pieces, one_bin, ratio, scale_factor, split
from .sources import NOMINAL, Breakdown, Source, combine
from .workingpoints import WorkingPoint

MAX_STAT = 1.0     # a bin whose statistical uncertainty exceeds this is not a measurement (written 1 +- 1)


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
    imprecise: np.ndarray | None = None                      # undefined: statistical uncertainty > MAX_STAT
    merged: np.ndarray | None = None                         # kind "shape": measured with neighbouring bins

    def why_undefined(self, index) -> str | None:
        """Why bin ``index`` has no SF (``"no data"``, ``"no MC light"``), None when it has one."""
        if self.defined[index]:
            return None
        if self.no_data is not None and self.no_data[index]:
            return "no data"
        if self.no_light is not None and self.no_light[index]:
            return "no MC light"
        if self.imprecise is not None and self.imprecise[index]:
            return "stat > 100%"
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
        if self.imprecise is not None and (k := int(self.imprecise.sum())):
            parts.append(f"{k} with a statistical uncertainty above 100%")
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
    with np.errstate(invalid="ignore"):
        imprecise = defined & ~(np.hypot(stat["data"], stat["mc"]) <= MAX_STAT)
    return _Measured(sf, stat, bd, defined & ~imprecise, no_data, no_light, imprecise, notes, expected)


@dataclasses.dataclass
class _Measured:
    sf: np.ndarray
    stat: dict
    breakdown: Breakdown
    defined: np.ndarray
    no_data: np.ndarray
    no_light: np.ndarray
    imprecise: np.ndarray
    notes: list
    expected: np.ndarray

    def table(self, region: Region, kind: str, norm: str, **kw) -> SFTable:
        return SFTable(region.tagger, region.discriminant, kind, region.abseta_edges, region.pt_edges, self.sf,
                       self.stat, self.breakdown, self.defined, norm=norm, notes=list(self.notes),
                       expected_light=self.expected, no_data=self.no_data, no_light=self.no_light,
                       imprecise=self.imprecise, **kw)


def _bin_notes(table: SFTable, labels) -> list[str]:
    """One line per undefined bin: which bin and why."""
    why = {"no MC light": "no MC light jets", "stat > 100%": "statistical uncertainty above 100%"}
    return [f"{table.tagger} {table.discriminant} {labels(idx)}: {why.get(w := table.why_undefined(idx), w)}; "
            "SF set to 1 +- 1 in the export" for idx in zip(*np.nonzero(~table.defined))]


def _range(edges, i) -> str:
    return f"{edges[i]:g}-{edges[i + 1]:g}"


def derive_wp(region: Region, wps: list[WorkingPoint], sources: list[Source] | None = None,
              norm: str = "pretag") -> SFTable:
    """Fixed working-point SFs ``(wp, abseta, pt)``: SF = (data - MC non-light) / MC light above the cut."""
    cuts = [lambda v, w, i=wp.index: split(v, w, i) for wp in wps]
    m = _measure(region, cuts, sources, norm, axis=0)
    lv = region.light[NOMINAL if NOMINAL in region.light else region.syst[0]].values
    with np.errstate(divide="ignore", invalid="ignore"):
        eff = np.stack([split(lv, lv, wp.index)[0][0] / lv.sum(-1) for wp in wps])
    t = m.table(region, "wp", norm, wps=list(wps), mc_efficiency=eff)
    t.notes += [w.note for w in wps if w.note]
    t.notes += _bin_notes(t, lambda i: f"WP {wps[i[0]].name}, |eta| {_range(t.abseta_edges, i[1])}, "
                                       f"pT {_range(t.pt_edges, i[2])} GeV")
    return t


def _expected_per_bin(region: Region, norm: str) -> np.ndarray:
    """Normalised MC light jets of each visible discriminant bin (flows with the edge bins)."""
    light = region.light[NOMINAL if NOMINAL in region.light else region.syst[0]]
    n = len(region.disc_edges) - 1
    per = np.stack([one_bin(light.values, light.variances, i)[0][0] for i in range(n)], axis=-1)
    if norm != "pretag" or region.data is None:
        return per
    nonlight = region.nonlight[NOMINAL if NOMINAL in region.nonlight else region.syst[0]]
    total = light.values.sum(-1) + nonlight.values.sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.where(total > 0, region.data.values.sum(-1) / total, 1.0)
    return per * k[..., None]


def derive_shape(region: Region, sources: list[Source] | None = None, norm: str = "pretag",
                 min_expected: float = shapebins.MIN_EXPECTED) -> SFTable:
    """Shape SFs ``(abseta, pt, discriminant bin)``: SF = (data - MC non-light) / MC light in each
    discriminant bin (flows with the edge bins); bins with fewer than ``min_expected`` MC light
    jets are measured together with their neighbours (:mod:`jetdask.scalefactors.shapebins`;
    0: never). With ``norm="pretag"`` they keep the light-jet yield of each (pT, abs(eta)) bin:
    sum_i L_i SF_i = L."""
    n = len(region.disc_edges) - 1
    ids = shapebins.group_ids(_expected_per_bin(region, norm), min_expected)
    masks = shapebins.slot_masks(ids)
    cuts = [lambda v, w, m=masks[i]: shapebins.in_mask(v, w, m) for i in range(n)]
    m = _measure(region, cuts, sources, norm, axis=-1)
    t = m.table(region, "shape", norm, disc_edges=region.disc_edges, merged=shapebins.merged(ids))
    if t.merged.any():
        t.notes.append(f"{t.tagger} {t.discriminant} shape: {int(t.merged.sum())} of {t.merged.size} discriminant "
                       f"bins measured together with neighbouring bins (fewer than {min_expected:g} expected MC "
                       "light jets each; the group's SF is written in each)")
    for ie, ip in zip(*np.nonzero((~m.defined).any(-1))):   # one line per (|eta|, pT) bin
        bad = ~m.defined[ie, ip]
        where = (f"{t.tagger} {t.discriminant} shape, |eta| {_range(t.abseta_edges, ie)}, "
                 f"pT {_range(t.pt_edges, ip)} GeV")
        if m.no_data[ie, ip].all():
            t.notes.append(f"{where}: no data; SF set to 1 +- 1 in the export")
        else:
            t.notes.append(f"{where}: {int(bad.sum())} of {n} discriminant bins without data or MC light jets or "
                           "with a statistical uncertainty above 100%; SF set to 1 +- 1 there in the export")
    return t
