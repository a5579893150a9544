"""MC tagging efficiencies per dataset, the other input of the fixed-WP event weights ("1a").

From any histogram of a jetdask pass with the axes ``flavour`` (b, c, light), ``pt``,
``abseta`` and ``discriminant`` (optionally ``syst`` and ``channel``: nominal and every
channel are used), e.g. the DY study's ``sf_DeepJet_B``:

    eps(wp, flavour, pT, |eta|) = MC jets above the cut / MC jets   (event weights included)

written per MC dataset as a correctionlib correction made by
:func:`correctionlib.convert.from_histogram` with inputs ``(working_point, flavor, abseta,
pt)`` (flavour 0/4/5 as ``hadronFlavour``), named ``<tagger>_eff_<dataset>``. pT and |eta|
beyond the edges are clamped; a bin without MC jets of a flavour takes that flavour's
efficiency summed over pT and |eta| (named in the notes); efficiencies are kept inside
[1e-6, 1 - 1e-6] so that ``1 - eps`` never divides by zero.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .inputs import AXES, Counts, counts_of
from .ratio import split
from .sources import NOMINAL

FLAVOUR_CODES = {"light": 0, "c": 4, "b": 5}
EPS_CLIP = 1e-6


@dataclasses.dataclass
class Efficiencies:
    dataset: str
    hist: object        # hist.Hist: working_point x flavor x abseta x pt, values = efficiency
    notes: list


def _edges_index(edges, cut) -> int:
    return int(np.argmin(np.abs(np.asarray(edges, float) - cut)))


def efficiency_hist(h, wps: dict, channel: str = "all", dataset: str = "") -> Efficiencies:
    """Efficiencies of one dataset's histogram ``h`` at ``wps`` (``{name: cut}``; cuts at the
    nearest discriminant bin edge)."""
    import hist as hist_mod
    disc_edges = np.asarray(h.axes["discriminant"].edges, float)
    eta_edges = np.asarray(h.axes["abseta"].edges, float)
    pt_edges = np.asarray(h.axes["pt"].edges, float)
    syst = NOMINAL if "syst" in h.axes.name else None
    out = hist_mod.Hist(hist_mod.axis.StrCategory(list(wps), name="working_point"),
                        hist_mod.axis.IntCategory(list(FLAVOUR_CODES.values()), name="flavor"),
                        hist_mod.axis.Variable(eta_edges, name="abseta", label="|eta|"),
                        hist_mod.axis.Variable(pt_edges, name="pt", label="pT [GeV]"))
    notes = []
    for fl in FLAVOUR_CODES:
        c: Counts = counts_of(h, channel, [fl], syst)
        for iw, (wp, cut) in enumerate(wps.items()):
            i = _edges_index(disc_edges, cut)
            (t, _), (u, _) = split(c.values, c.variances, i)
            total = t + u
            with np.errstate(divide="ignore", invalid="ignore"):
                eff = t / total
                inclusive = t.sum() / total.sum()
            empty = ~(total > 0)
            if empty.any():
                fill = inclusive if np.isfinite(inclusive) else 0.0
                notes.append(f"{dataset} {fl} WP {wp}: {int(empty.sum())} pT/|eta| bin(s) without MC jets take the "
                             f"inclusive efficiency {fill:.4g}")
                eff = np.where(empty, fill, eff)
            out.view()[iw, list(FLAVOUR_CODES).index(fl)] = np.clip(eff, EPS_CLIP, 1 - EPS_CLIP)
    return Efficiencies(dataset, out, notes)


def efficiencies(run, name: str, wps: dict, channel: str = "all", metadata: dict | None = None) -> list[Efficiencies]:
    """:class:`Efficiencies` of every MC dataset of ``run`` from histogram ``name``."""
    from ..plotting.run import load_run
    out, md, _ = load_run(run, metadata)
    res = []
    for ds, hs in out.hists.items():
        if md.get(ds, {}).get("is_data") or name not in hs:
            continue
        missing = [a for a in (*AXES, "flavour") if a not in hs[name].axes.name]
        if missing:
            raise ValueError(f"histogram {name!r} of {ds} lacks axes {missing}")
        res.append(efficiency_hist(hs[name], wps, channel, ds))
    return res


def correction(eff: Efficiencies, tagger: str):
    """The correctionlib correction of one dataset's efficiencies (``from_histogram``)."""
    import correctionlib.convert
    h = eff.hist.copy()
    h.name, h.label = f"{tagger}_eff_{eff.dataset}", "efficiency"
    c = correctionlib.convert.from_histogram(h, flow="clamp")
    c.description = (f"MC tagging efficiency of {tagger} per working point, hadron flavour, |eta| and pT in "
                     f"{eff.dataset} (jetdask)")
    return c


def write(effs: list[Efficiencies], tagger: str, path: str) -> str:
    """Every dataset's efficiencies as one correctionlib JSON."""
    import correctionlib.schemav2 as cs
    cset = cs.CorrectionSet(schema_version=2, description=f"jetdask MC tagging efficiencies of {tagger}",
                            corrections=[correction(e, tagger) for e in effs])
    with open(path, "w") as f:
        f.write(cset.model_dump_json(exclude_unset=True, indent=1) + "\n")
    return path
