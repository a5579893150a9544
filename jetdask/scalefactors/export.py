"""Derived SFs as a correctionlib JSON in the structure of the CMS BTV POG files.

* ``<tagger>_incl`` (fixed working points): inputs ``(systematic, working_point, flavor,
  abseta, pt)``; defined for light jets (``flavor`` 0) only, as the official ``*_incl``;
* ``<tagger>_shape``: inputs ``(systematic, flavor, abseta, pt, discriminant)``; light jets
  carry the derived SF and every variation; b and c jets (not measured in this region) carry
  ``central`` = 1 only, so a variation evaluated on them raises, as in the official files;
* ``<tagger>_wp_values``: the cuts used (the bin edges the measurement cut at).

Systematics: ``central``; ``up``/``down`` (total); ``up_correlated``/``down_correlated``
(every systematic group) and ``up_uncorrelated``/``down_uncorrelated`` (statistical, data and
MC); ``up_<group>``/``down_<group>`` for each group; the shape correction also names the
systematic part ``up_lf``/``down_lf`` and the statistical part ``up_lfstats1``/``down_lfstats1``
(the official light-jet names: a b-tag shape-SF reader's ``btag_lf``/``btag_lfstats1`` sources
evaluate them, on light jets only). pT and |eta| beyond the edges and the
discriminant's ``-1`` defaults are clamped to the edge bins (as measured: the flows were
folded there). Numbers are written with 15 significant digits (read back exactly). A bin
without a measurement is written as 1 +- 1 (statistical) and named in the correction's
description. The tagger ``DeepJet`` (official NanoAOD scores) is written as ``deepJet`` (the POG
name); another discriminant than the tagger's b-tagging one (``B``, the official
``btagDeepFlavB``, else ``BvsAll``, else ``BvsL``) gets the discriminant in the name
(``deepJet_BvsL_shape``, ``nominal_CvsL_shape``).
"""
from __future__ import annotations

import json
import re

import numpy as np

from .measure import SFTable, exact
from .sources import STAT_GROUP

LIGHT, CHARM, BOTTOM = 0, 4, 5
B_DISCRIMINANTS = ("B", "BvsAll", "BvsL")
POG_NAMES = {"DeepJet": "deepJet"}


def group_key(group: str) -> str:
    """A group as it appears in a systematic name: ``pile-up`` -> ``pileup``, ``JES`` -> ``jes``."""
    return re.sub(r"[^0-9a-zA-Z]+", "", group).lower() or "other"


def correction_name(table: SFTable, kind: str, b_discriminant: str | None = None) -> str:
    tagger = POG_NAMES.get(table.tagger, table.tagger)
    if b_discriminant is None or table.discriminant == b_discriminant:
        return f"{tagger}_{kind}"
    return f"{tagger}_{table.discriminant}_{kind}"


def systematic_values(table: SFTable) -> dict[str, np.ndarray]:
    """``{systematic: array}`` in the export's order, undefined bins filled with 1 +- 1, every
    number rounded to 15 significant digits (:func:`exact`)."""
    return {k: exact(v) for k, v in _systematic_values(table).items()}


def _systematic_values(table: SFTable) -> dict[str, np.ndarray]:
    d = table.defined
    bd = table.breakdown
    syst_groups = [g for g in bd.groups if g != STAT_GROUP]
    zero = np.zeros_like(table.central)
    stat = bd.groups.get(STAT_GROUP, (zero, zero))

    def q(parts):
        return np.sqrt(np.sum([p * p for p in parts], axis=0)) if parts else zero

    corr_up, corr_down = q([bd.groups[g][0] for g in syst_groups]), q([bd.groups[g][1] for g in syst_groups])
    c = np.where(d, table.central, 1.0)

    def fix(x, fill):
        return np.where(d, np.nan_to_num(x, nan=0.0), fill)

    out = {"central": c,
           "up": c + fix(bd.up, 1.0), "down": c - fix(bd.down, 1.0),
           "up_correlated": c + fix(corr_up, 0.0), "down_correlated": c - fix(corr_down, 0.0),
           "up_uncorrelated": c + fix(stat[0], 1.0), "down_uncorrelated": c - fix(stat[1], 1.0)}
    for g in bd.groups:
        k = group_key(g)
        fill = 1.0 if g == STAT_GROUP else 0.0
        out[f"up_{k}"] = c + fix(bd.groups[g][0], fill)
        out[f"down_{k}"] = c - fix(bd.groups[g][1], fill)
    return out


def _floats(a) -> list[float]:
    return [float(x) for x in np.asarray(a, float).ravel()]


def _multibin(cs, inputs, edges, values):
    return cs.MultiBinning(nodetype="multibinning", inputs=list(inputs), edges=[_floats(e) for e in edges],
                           content=_floats(values), flow="clamp")


def _category(cs, name, items):
    return cs.Category(nodetype="category", input=name, content=[cs.CategoryItem(key=k, value=v) for k, v in items])


def _description(table: SFTable, what: str) -> str:
    lines = [(f"jetdask light-jet {what} SF of {table.tagger} {table.discriminant} from DY+jets "
              f"(SF = (data - MC non-light) / MC light; MC normalisation: {table.norm})")]
    undefined = [n for n in table.notes if "SF set to 1" in n]
    if undefined:
        lines.append(f"{len(undefined)} bin(s) without a measurement (1 +- 1): " + "; ".join(undefined[:20])
                     + (" ..." if len(undefined) > 20 else ""))
    return "\n".join(lines)


def incl_correction(table: SFTable, name: str):
    import correctionlib.schemav2 as cs
    if table.kind != "wp":
        raise ValueError("incl_correction needs a working-point table")
    systs = systematic_values(table)
    edges = (table.abseta_edges, table.pt_edges)
    data = _category(cs, "systematic", [
        (s, _category(cs, "working_point", [
            (wp.name, _category(cs, "flavor", [(LIGHT, _multibin(cs, ("abseta", "pt"), edges, arr[i]))]))
            for i, wp in enumerate(table.wps)]))
        for s, arr in systs.items()])
    return cs.Correction(
        name=name, version=1, description=_description(table, "fixed working-point"),
        inputs=[cs.Variable(name="systematic", type="string", description="central, up, down, up_correlated, ..."),
                cs.Variable(name="working_point", type="string", description="L/M/T"),
                cs.Variable(name="flavor", type="int", description="hadron flavour: 0 (light) only"),
                cs.Variable(name="abseta", type="real", description="|eta| of the jet"),
                cs.Variable(name="pt", type="real", description="pT of the jet [GeV]")],
        output=cs.Variable(name="weight", type="real", description="light-jet mistag scale factor"), data=data)


def shape_correction(table: SFTable, name: str):
    import correctionlib.schemav2 as cs
    if table.kind != "shape":
        raise ValueError("shape_correction needs a shape table")
    systs = systematic_values(table)
    for side in ("up", "down"):     # the official light-jet variation names, for b-tag shape-SF readers
        systs[f"{side}_lf"] = systs[f"{side}_correlated"]
        systs[f"{side}_lfstats1"] = systs[f"{side}_uncorrelated"]
    inputs = ("abseta", "pt", "discriminant")
    edges = (table.abseta_edges, table.pt_edges, table.disc_edges)
    ones = np.ones_like(table.central)
    items = []
    for s, arr in systs.items():
        flav = [(LIGHT, _multibin(cs, inputs, edges, arr))]
        if s == "central":
            flav = [(BOTTOM, _multibin(cs, inputs, edges, ones)), (CHARM, _multibin(cs, inputs, edges, ones))] + flav
        items.append((s, _category(cs, "flavor", flav)))
    return cs.Correction(
        name=name, version=1, description=_description(table, "shape") + "; b and c jets: 1 (central only)",
        inputs=[cs.Variable(name="systematic", type="string", description="central, up, down, up_<group>, ..."),
                cs.Variable(name="flavor", type="int", description="hadron flavour 0, 4, 5"),
                cs.Variable(name="abseta", type="real", description="|eta| of the jet"),
                cs.Variable(name="pt", type="real", description="pT of the jet [GeV]"),
                cs.Variable(name="discriminant", type="real", description=f"{table.tagger} {table.discriminant}")],
        output=cs.Variable(name="weight", type="real", description="light-jet shape scale factor"),
        data=_category(cs, "systematic", items))


def wp_values_correction(table: SFTable, name: str):
    import correctionlib.schemav2 as cs
    return cs.Correction(
        name=name, version=1,
        description=f"cuts on {table.tagger} {table.discriminant} used by the jetdask SF measurement",
        inputs=[cs.Variable(name="working_point", type="string", description="L/M/T")],
        output=cs.Variable(name="wp", type="real", description="discriminant cut"),
        data=_category(cs, "working_point", [(wp.name, float(exact(wp.used))) for wp in table.wps]))


def b_discriminant(discs) -> str | None:
    for d in B_DISCRIMINANTS:
        if d in discs:
            return d
    return None


def correction_set(tables: list[SFTable], description: str = ""):
    """A :class:`correctionlib.schemav2.CorrectionSet` of every table (names as above)."""
    import correctionlib.schemav2 as cs
    discs: dict[str, list] = {}
    for t in tables:
        discs.setdefault(t.tagger, []).append(t.discriminant)
    corrs = []
    for t in tables:
        bd = b_discriminant(discs[t.tagger])
        if t.kind == "wp":
            corrs.append(incl_correction(t, correction_name(t, "incl", bd)))
            corrs.append(wp_values_correction(t, correction_name(t, "wp_values", bd)))
        else:
            corrs.append(shape_correction(t, correction_name(t, "shape", bd)))
    names = [c.name for c in corrs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"two tables give the same correction name(s) {dup}")
    return cs.CorrectionSet(schema_version=2, description=description or "jetdask light-jet scale factors",
                            corrections=corrs)


def write(tables: list[SFTable], path: str, description: str = "") -> str:
    """Write the correction set (``.json`` or ``.json.gz``); return the path."""
    cset = correction_set(tables, description)
    text = cset.model_dump_json(exclude_unset=True, indent=1)
    json.loads(text)  # a valid JSON document (no NaN)
    if str(path).endswith(".gz"):
        import gzip
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        with open(path, "w") as f:
            f.write(text + "\n")
    return str(path)
