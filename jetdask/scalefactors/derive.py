"""Python API: every light-jet SF of a finished DY+jets run.

::

    from jetdask.scalefactors import derive
    res = derive("runs/dy", wp_file="sample/btagging.json.gz")
    res.write("sf.json")            # correctionlib, POG structure
    print(res.format())             # SF per tagger, WP and pT bin with uncertainties

Working points per tagger discriminant, first found: ``wps={"nominal": {"L": 0.1, ...}}``
(also ``"nominal_BvsL"``), ``<tagger>_wp_values`` of ``wp_file`` (the official DeepJet
``btagDeepFlavB``, histogram ``sf_DeepJet_B``), else for b-tagging discriminants (``BvsL``)
the MC light-jet mistag rates 10 %, 1 %, 0.1 %
(:mod:`jetdask.scalefactors.workingpoints`). Charm discriminants get shape SFs only.
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np

from . import workingpoints as wpmod
from .export import B_DISCRIMINANTS, POG_NAMES
from .export import write as write_json
from .inputs import Region, build_region, region_names
from .measure import SFTable, derive_shape, derive_wp
from .sources import NOMINAL

OFFICIAL_WP_DISCRIMINANTS = ("B", "BvsAll")   # what <tagger>_wp_values cut on (btagDeepFlavB)
MIN_LIGHT_FOR_RATES = 1000.0                  # fewer MC light jets: the mistag-rate cuts are noted as unreliable


@dataclasses.dataclass
class SFResult:
    """Every derived table of a run: ``wp`` (abs(eta), pT binned), ``wp_inclusive`` (abs(eta) summed:
    the comparison table), ``shape``; ``notes`` for bins without data and snapped cuts."""
    wp: list
    wp_inclusive: list
    shape: list
    notes: list
    run_dir: str | None = None
    channel: str = "all"
    facts: dict = dataclasses.field(default_factory=dict)   # label, energy, lumi_fb for figures

    @property
    def tables(self) -> list[SFTable]:
        """The tables the correction file holds: working points (abs(eta) binned) and shapes."""
        return self.wp + self.shape

    def table(self, tagger: str, discriminant: str | None = None, kind: str = "wp") -> SFTable:
        """The ``kind`` table (``wp``, ``wp_inclusive``, ``shape``) of a tagger key and discriminant."""
        pool = {"wp": self.wp, "wp_inclusive": self.wp_inclusive, "shape": self.shape}[kind]
        for t in pool:
            if t.tagger == tagger and (discriminant is None or t.discriminant == discriminant):
                return t
        raise KeyError(f"no {kind} table for {tagger} {discriminant or ''}".strip())

    def write(self, path: str) -> str:
        """Write the correctionlib JSON (``.json`` or ``.json.gz``); return its path."""
        desc = f"jetdask light-jet SFs from DY+jets run {self.run_dir or '(in memory)'}, channel {self.channel}"
        return write_json(self.tables, path, desc)

    def short_notes(self) -> list[str]:
        """The notes without the one line per undefined bin: one count per table instead."""
        out = [n for n in self.notes if "SF set to 1" not in n]
        return out + [n for t in self.tables if (n := t.undefined_note())]

    def format(self) -> str:
        """The tagger comparison table (per WP and pT bin, abs(eta) summed)."""
        from .compare import format_table
        return format_table(self.wp_inclusive)


def _wp_for(region: Region, wps: dict | None, wp_file: str | None, light_nominal) -> tuple[dict, str] | None:
    wps = wps or {}
    for key in (f"{region.tagger}_{region.discriminant}", region.tagger):
        if key in wps:
            given = wps[key]
            return (wpmod.parse(given) if isinstance(given, str) else dict(given)), "given"
    if region.discriminant not in B_DISCRIMINANTS:
        return None
    if wp_file and region.tagger in POG_NAMES and region.discriminant in OFFICIAL_WP_DISCRIMINANTS:
        cuts = wpmod.from_correction_file(wp_file, POG_NAMES[region.tagger])
        if cuts:
            return cuts, f"{POG_NAMES[region.tagger]}_wp_values"
    flat = light_nominal.values.sum(axis=(0, 1))
    cuts = wpmod.from_mistag_rates(flat, region.disc_edges)
    return (cuts, "MC light mistag rate") if cuts else None


def _variation_scales(out, md) -> dict | None:
    """``{dataset: {syst: scale}}`` as the figures normalise each variation (the corrections
    layer's own sums of weights); None when the corrections layer is not there."""
    try:
        from ..corrections.normalise import variation_scales
    except ImportError:
        return None
    return variation_scales(out, md, True)     # third argument: the b-tag normalisation correction on


def _facts(norm_info, md) -> dict:
    from ..plotting.labels import label_text
    from ..plotting.normalisation import run_facts
    f = run_facts(norm_info, md)
    return {"label": label_text("auto", f.has_data, f.synthetic), "energy": f.energy,
            "lumi_fb": f.lumi_pb / 1000.0 if f.lumi_pb else None, "synthetic": f.synthetic}


def _corrections_yaml(kwargs: dict) -> tuple[dict, str] | None:
    cfg = kwargs.get("corrections")
    if not isinstance(cfg, str) or not os.path.exists(cfg):
        return None
    import yaml
    with open(cfg) as f:
        return yaml.safe_load(f) or {}, cfg


def btag_applied(kwargs: dict) -> str | None:
    """``"<shape> of <file>"`` when the run's analysis applied a b-tag shape SF to MC, else None."""
    found = _corrections_yaml(kwargs)
    if not found or "btag" in (kwargs.get("disable") or ()):
        return None
    block = found[0].get("btag")
    if not isinstance(block, dict):
        return None
    return f"{block.get('shape', '?')} of {block.get('file', '?')}"


def wp_file_of_run(run_dir: str) -> str | None:
    """The b-tagging correction file of the run's corrections config (analysis argument
    ``corrections``), when it names one that exists: the official working points."""
    from ..plotting.normalisation import run_metadata
    _, kwargs = run_metadata(run_dir)
    given = _corrections_yaml(kwargs)
    if not given:
        return None
    doc, cfg = given
    found = [doc["btag"]["file"]] if isinstance(doc.get("btag"), dict) and doc["btag"].get("file") else []

    def walk(x):
        if isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
        elif isinstance(x, str) and os.path.basename(x).startswith("btagging") and ".json" in x:
            found.append(x)
    walk(doc)
    for p in found:
        p = p if os.path.isabs(p) else os.path.join(os.path.dirname(os.path.abspath(cfg)), p)
        if os.path.exists(p):
            return p
    return None


def derive_region(region: Region, *, wps: dict | None = None, wp_file: str | None = None, sources=None,
                  norm: str = "pretag") -> tuple[SFTable | None, SFTable | None, SFTable]:
    """``(wp table, abs(eta)-inclusive wp table, shape table)`` of one region (wp None: no WPs)."""
    nominal = region.light[NOMINAL if NOMINAL in region.light else region.syst[0]]
    found = _wp_for(region, wps, wp_file, nominal)
    wp_t = inc_t = None
    if found:
        cuts, origin = found
        points, _ = wpmod.resolve(cuts, region.disc_edges, origin)
        wp_t = derive_wp(region, points, sources, norm)
        inc_t = derive_wp(region.eta_inclusive(), points, sources, norm)
        var = float(nominal.variances.sum())
        n_light = float(nominal.values.sum()) ** 2 / var if var > 0 else 0.0     # effective entries
        if origin == "MC light mistag rate" and n_light < MIN_LIGHT_FOR_RATES:
            wp_t.notes.insert(0, f"{region.tagger} {region.discriminant}: working points from the MC mistag rate "
                                 f"of only {n_light:.3g} light jets (effective entries); give cuts with --wp")
    shape_t = derive_shape(region, sources, norm)
    if region.data is None or not region.data.values.sum() > 0:
        shape_t.notes.insert(0, f"{region.tagger} {region.discriminant}: no data jet in {region.name}; every SF "
                                "is undefined (1 +- 1 in the export)")
    return wp_t, inc_t, shape_t


def derive(run, *, wp_file: str | None = None, wps: dict | None = None, channel: str = "all",
           norm: str = "pretag", taggers=None, sources=None, metadata: dict | None = None,
           lumi_pb: float | None = None) -> SFResult:
    """Light-jet SFs of every ``sf_*`` histogram of ``run`` (a run directory or a RunOutput).

    ``taggers``: keep only these tagger keys (``DeepJet``, ``nominal`` ...). ``norm``:
    ``"pretag"`` (MC scaled to the data jet yield of each pT/abs(eta) bin; the SF is a ratio of
    efficiencies) or ``"lumi"`` (xsec x lumi). ``sources``: override the registry's sources.
    """
    from ..errors import ConfigError
    from ..plotting.normalisation import normalisation
    from ..plotting.run import load_run

    out, md, kwargs = load_run(run, metadata)
    names = region_names(out.hists)
    if not names:
        raise ConfigError(f"{out.run_dir or 'the run'} has no sf_* histograms: run the DY+jets study with "
                          "scale-factor histograms (see docs/tutorials/scale-factors.md)", "run_dir")
    norm_info = normalisation(out, md, lumi_pb)
    scales = _variation_scales(out, md)
    res = SFResult([], [], [], list(norm_info.notes), out.run_dir or None, channel, _facts(norm_info, md))
    applied = btag_applied(kwargs)
    if applied:
        res.notes.append(f"the run's MC carries the b-tag shape SF {applied}: the derived SFs are residual "
                         "corrections on top of it (run with the btag block disabled for absolute SFs)")
    for name in names:
        region = build_region(out.hists, name, norm_info, channel, scales)
        if region is None or (taggers and region.tagger not in taggers):
            continue
        if not region.light:
            res.notes += region.notes
            continue
        wp_t, inc_t, shape_t = derive_region(region, wps=wps, wp_file=wp_file, sources=sources, norm=norm)
        for t, pool in ((wp_t, res.wp), (inc_t, res.wp_inclusive), (shape_t, res.shape)):
            if t is not None:
                pool.append(t)
        res.notes += [n for t in (wp_t, shape_t) if t is not None for n in t.notes if n not in res.notes]
    if not res.tables:
        raise ConfigError("no scale factor could be derived (no MC in the sf_* histograms)", "run_dir")
    order = ["DeepJet"] + [t.get("name") if isinstance(t, dict) else getattr(t, "name", "")
                           for t in kwargs.get("taggers", [])]
    for pool in (res.wp, res.wp_inclusive, res.shape):   # the official score first, then the run's order
        pool.sort(key=lambda t: (order.index(t.tagger) if t.tagger in order else len(order), t.tagger))
    return res


def summary(res: SFResult) -> dict:
    """JSON-able numbers of every table (what ``jetdask sf`` writes beside the correction file)."""
    def arr(a):
        return [None if not np.isfinite(x) else float(x) for x in np.asarray(a, float).ravel()]

    def one(t: SFTable):
        d = {"tagger": t.tagger, "discriminant": t.discriminant, "kind": t.kind, "norm": t.norm,
             "abseta_edges": arr(t.abseta_edges), "pt_edges": arr(t.pt_edges), "shape": list(t.central.shape),
             "central": arr(t.central), "up": arr(t.up), "down": arr(t.down),
             "stat_data": arr(t.stat["data"]), "stat_mc": arr(t.stat["mc"]),
             "expected_light": arr(t.expected_light) if t.expected_light is not None else None,
             "groups": {g: {"up": arr(u), "down": arr(dn)} for g, (u, dn) in t.breakdown.groups.items()}}
        if t.kind == "wp":
            d["working_points"] = [dataclasses.asdict(w) for w in t.wps]
        else:
            d["disc_edges"] = arr(t.disc_edges)
        return d

    return {"run_dir": os.path.abspath(res.run_dir) if res.run_dir else None, "channel": res.channel,
            "notes": res.notes, "wp": [one(t) for t in res.wp], "wp_inclusive": [one(t) for t in res.wp_inclusive],
            "shape": [one(t) for t in res.shape]}
