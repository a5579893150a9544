"""What the SF derivation reads from a run: data and MC (light, non-light) per systematic.

A run's ``sf_<tagger>_<discriminant>`` histograms (axes ``syst``, ``channel``, ``flavour``,
``pt``, ``abseta``, ``discriminant``; one per dataset) become a :class:`Region`: numpy arrays
with axes ``(abseta, pt, discriminant)``, the discriminant axis with its flow bins
(underflow: undefined scores, overflow), the pT and |eta| flow folded into the edge bins (as
correctionlib's ``clamp`` reads them back). MC datasets are scaled by the run's normalisation
(``xsec * lumi / sumw``, per variation where the corrections layer gives one) and summed;
data are summed over every flavour category, nominal (data are never varied).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .sources import NOMINAL

PREFIX = "sf_"
AXES = ("abseta", "pt", "discriminant")
LIGHT = "light"
DATA = "data"


@dataclasses.dataclass
class Counts:
    values: np.ndarray      # (abseta, pt, discriminant with flow)
    variances: np.ndarray

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.values + other.values, self.variances + other.variances)

    def scaled(self, k: float) -> Counts:
        return Counts(self.values * k, self.variances * k * k)

    def summed_eta(self) -> Counts:
        return Counts(self.values.sum(0, keepdims=True), self.variances.sum(0, keepdims=True))


@dataclasses.dataclass
class Region:
    """One tagger's discriminant in the light-enriched region, ready for the SF derivation."""
    name: str
    tagger: str
    discriminant: str
    abseta_edges: np.ndarray
    pt_edges: np.ndarray
    disc_edges: np.ndarray
    data: Counts | None
    light: dict             # syst -> Counts
    nonlight: dict          # syst -> Counts
    syst: list              # syst categories, nominal first
    notes: list = dataclasses.field(default_factory=list)

    def eta_inclusive(self) -> Region:
        """The same region with |eta| summed into one bin."""
        one = np.array([self.abseta_edges[0], self.abseta_edges[-1]])
        return dataclasses.replace(
            self, abseta_edges=one, data=self.data.summed_eta() if self.data is not None else None,
            light={s: c.summed_eta() for s, c in self.light.items()},
            nonlight={s: c.summed_eta() for s, c in self.nonlight.items()}, notes=list(self.notes))


def split_name(name: str) -> tuple[str, str]:
    """``sf_DeepJet_BvsAll`` -> ``("DeepJet", "BvsAll")``;
    ``sf_nominal@fgsm0.05_BvsL`` -> ``("nominal@fgsm0.05", "BvsL")``."""
    body = name.removeprefix(PREFIX)
    tagger, sep, disc = body.rpartition("_")
    if not sep or not tagger:
        raise ValueError(f"histogram {name!r} is not named sf_<tagger>_<discriminant>")
    return tagger, disc


def _with_flow(h) -> tuple[np.ndarray, np.ndarray]:
    """Values and variances of a 3D (abseta, pt, discriminant) hist: every axis with its flow
    slots (zero-padded where the axis has none), then the abseta/pt flow folded into their edge bins."""
    vals = np.asarray(h.values(flow=True), float)
    var = h.variances(flow=True)
    var = vals.copy() if var is None else np.asarray(var, float)
    pad = [(0 if ax.traits.underflow else 1, 0 if ax.traits.overflow else 1) for ax in h.axes]
    vals, var = np.pad(vals, pad), np.pad(var, pad)
    for axis in (0, 1):
        vals, var = _fold(vals, axis), _fold(var, axis)
    return vals, var


def _fold(a: np.ndarray, axis: int) -> np.ndarray:
    a = np.moveaxis(a, axis, 0)
    inner = a[1:-1].copy()
    inner[0] += a[0]
    inner[-1] += a[-1]
    return np.moveaxis(inner, 0, axis)


def counts_of(h, channel: str, flavours: list[str] | None, syst: str | None) -> Counts:
    """:class:`Counts` of one ``sf_*``-like histogram: one syst category (None: no syst axis),
    one channel or all, the sum of ``flavours`` (None: every category)."""
    sel = {}
    if "syst" in h.axes.name and syst is not None:
        sel["syst"] = syst
    if "channel" in h.axes.name and channel not in ("all", "sum", None):
        sel["channel"] = channel
    h = h[sel] if sel else h
    if flavours is not None and "flavour" in h.axes.name:
        cats = [str(c) for c in h.axes["flavour"]]
        keep = [c for c in flavours if c in cats]
        if not keep:
            shape = tuple(len(h.axes[a]) for a in AXES)
            z = np.zeros((shape[0], shape[1], shape[2] + 2))
            return Counts(z, z.copy())
        parts = [Counts(*_with_flow(h[{"flavour": c}].project(*AXES))) for c in keep]
        total = parts[0]
        for p in parts[1:]:
            total = total + p
        return total
    vals, var = _with_flow(h.project(*AXES))
    return Counts(vals, var)


def syst_categories(h) -> list[str]:
    if "syst" not in h.axes.name:
        return [NOMINAL]
    cats = [str(c) for c in h.axes["syst"]]
    return cats


def build_region(hists: dict, name: str, norm, channel: str = "all", scales: dict | None = None) -> Region | None:
    """The :class:`Region` of histogram ``name`` over every dataset of ``norm`` (a
    :class:`~jetdask.plotting.normalisation.Normalisation`); None when no dataset has it.

    ``scales``: ``{dataset: {syst: scale}}`` per variation (each theory variation normalised
    with its own sum of weights); a dataset or variation missing there takes ``norm``'s scale."""
    tagger, disc = split_name(name)
    data, light, nonlight, syst, ref, notes = None, {}, {}, None, None, []
    for ds, info in norm.datasets.items():
        h = hists.get(ds, {}).get(name)
        if h is None:
            continue
        missing = [a for a in AXES if a not in h.axes.name]
        if missing:
            raise ValueError(f"histogram {name!r} of {ds} lacks axes {missing} (has {list(h.axes.name)})")
        if "channel" in h.axes.name and channel not in ("all", "sum", None) and \
                channel not in [str(c) for c in h.axes["channel"]]:
            raise ValueError(f"histogram {name!r} has no channel {channel!r}")
        ref = ref or h
        cats = syst_categories(h)
        if info["is_data"]:
            part = counts_of(h, channel, None, NOMINAL if NOMINAL in cats else cats[0])
            data = part if data is None else data + part
            continue
        if syst is None:
            syst = cats
        elif cats != syst:
            raise ValueError(f"histogram {name!r}: syst axis of {ds} {cats} differs from {syst}")
        fl = [str(c) for c in h.axes["flavour"]] if "flavour" in h.axes.name else []
        heavy = [c for c in fl if c not in (LIGHT, DATA)]
        k0 = float(info.get("scale") or 1.0)
        for s in syst:
            k = float((scales or {}).get(ds, {}).get(s, k0))
            lt = counts_of(h, channel, [LIGHT], s if "syst" in h.axes.name else None).scaled(k)
            nl = counts_of(h, channel, heavy, s if "syst" in h.axes.name else None).scaled(k)
            light[s] = lt if s not in light else light[s] + lt
            nonlight[s] = nl if s not in nonlight else nonlight[s] + nl
    if ref is None:
        return None
    if not light:
        notes.append(f"{name}: no MC dataset has this histogram")
    if data is None:
        notes.append(f"{name}: no data dataset has this histogram")
    edges = {a: np.asarray(ref.axes[a].edges, float) for a in AXES}
    return Region(name, tagger, disc, edges["abseta"], edges["pt"], edges["discriminant"], data, light, nonlight,
                  syst or [NOMINAL], notes)


def region_names(hists: dict) -> list[str]:
    """Every ``sf_*`` histogram name of a run, official DeepJet first, then by name."""
    names = {n for hs in hists.values() for n in hs if n.startswith(PREFIX)}
    return sorted(names, key=lambda n: (not n.startswith(PREFIX + "DeepJet_"), n))
