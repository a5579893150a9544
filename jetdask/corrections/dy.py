"""The DY+jets study with corrections and systematic variations (called by ``analyses/dy_jets.py``).

One chunk, MC:

1. jets calibrated once (:func:`jetdask.corrections.jets.calibrate`): nominal and every shape
   variation's pT/mass;
2. the selection runs once, on the nominal jets (leptons, triggers, Z window); for each shape
   variation only the jet selection (pT, ΔR to the leptons, IDs) is redone on the shifted jets;
3. taggers run once, on the union of the jets any variation selects;
4. event weights: genWeight x pile-up x theory x the product of b-tag shape SFs over the
   variation's selected jets (:mod:`jetdask.corrections.btag`); weight variations share the
   nominal jets, each shape variation has its own jets (with the JES-matched b-tag SF);
5. every histogram of the study gets a leading ``syst`` axis (registry order, nominal first) and
   every variation is filled in every chunk; discriminants also fill ``sf_<name>``
   (:mod:`jetdask.corrections.fill`); ``btag_sumw`` holds Σw (and Σ n_jet·w, what a per-jet
   histogram sums) before and after the b-tag SF per variation and jet multiplicity, and ``n_jets``
   the selected events per channel and jet multiplicity (the plots' normalisation correction,
   :mod:`jetdask.corrections.normalise`, applies per multiplicity there).

Data: the nominal selection, no corrections, the same content in every ``syst`` bin.
"""
from __future__ import annotations

import dataclasses

import awkward as ak
import hist
import numpy as np

from .. import Result
from . import jets as jetcorr
from . import weights as wmod
from .btag import ShapeSF, shape_systematic
from .fill import CHANNELS, SystBook

NJET_MAX = 8


STAGES = ("before", "after", "before_jets", "after_jets")   # Σw and Σ n_jet·w, before/after the b-tag SF


def njet_axis() -> hist.axis.Integer:
    """Selected jets per event, 0 .. NJET_MAX - 1 and an overflow bin (NJET_MAX or more)."""
    return hist.axis.Integer(0, NJET_MAX, name="njet", label="selected jets", underflow=False)


def btag_sumw_hist(syst_axis) -> hist.Hist:
    return hist.Hist(syst_axis, hist.axis.StrCategory(list(STAGES), name="stage", overflow=False), njet_axis(),
                     storage=hist.storage.Weight())


def njet_hist(syst_axis) -> hist.Hist:
    """Selected events per variation, channel and jet multiplicity (weighted as the jet histograms)."""
    return hist.Hist(syst_axis, hist.axis.StrCategory(list(CHANNELS), name="channel", overflow=False), njet_axis(),
                     storage=hist.storage.Weight(), label="Events")


def _fill_njet(h, rows, channel, n_jet, weights) -> None:
    """Add each event's weight (``weights[k]`` into syst row ``rows[k]``) at its (channel, multiplicity)."""
    view = h.view(flow=True)
    n = NJET_MAX + 1
    idx = np.where(np.asarray(channel) == CHANNELS[0], 0, 1) * n + np.minimum(np.asarray(n_jet), NJET_MAX)
    for r, w in zip(rows, weights):
        w = np.asarray(w, dtype=np.float64)
        view["value"][r] += np.bincount(idx, w, 2 * n).reshape(2, n)
        view["variance"][r] += np.bincount(idx, w * w, 2 * n).reshape(2, n)


def _flavour_index(hadron_flavour, is_data: bool, n: int) -> np.ndarray:
    if is_data or hadron_flavour is None:
        return np.full(n, 3, dtype=np.int64)
    f = np.abs(np.asarray(hadron_flavour))
    return np.where(f == 5, 0, np.where(f == 4, 1, 2))


def _record(ana, jets) -> dict:
    """``{name: (flat values, bins, lo, hi, label)}`` of every per-jet histogram of ``jets``, plus
    ``sf_DeepJet_B`` (the shape-SF discriminant): the study's ``fill_jets`` run once."""
    rec = {}

    def fill(name, values, bins=20, lo=0.0, hi=1.0, label=None):
        rec[name] = (np.asarray(values, dtype=np.float64), bins, lo, hi, label)
    ana.fill_jets(jets, fill)
    if "btagDeepFlavB" in jets.fields:
        rec["sf_DeepJet_B"] = (np.asarray(ak.flatten(ak.fill_none(jets.btagDeepFlavB, -1.0)), dtype=np.float64),
                               None, None, None, "DeepJet B")
    return rec


@dataclasses.dataclass
class JetSet:
    """One jet configuration (nominal, or a shape variation): its selected events and jets, and
    the event weights, before and after the b-tag SF, of every variation that uses them.

    Indices are into the chunk: ``events`` (selected events, ascending), ``jets`` (selected jets in
    the flat list of all the chunk's jets, ascending, so grouped by event)."""
    name: str
    events: np.ndarray
    jets: np.ndarray
    n_jet: np.ndarray                 # selected jets per selected event
    pt: np.ndarray                    # per selected jet, this configuration's pT and mass
    mass: np.ndarray
    weights: dict                     # variation -> (per-event weight before b-tag SF, after)


def _fill_sets(ana, book, jets_flat, sets, channel, is_data: bool) -> None:
    """Fill every histogram for every :class:`JetSet`; the study's per-jet values are computed
    once, on the sets' jets stacked (``jets_flat``: a flat record array over the chunk's jets)."""
    if not sets:
        return
    take = np.concatenate([js.jets for js in sets])
    stacked = jets_flat[take]
    stacked = ak.with_field(stacked, np.concatenate([js.pt for js in sets]).astype(np.float32), "pt")
    stacked = ak.with_field(stacked, np.concatenate([js.mass for js in sets]).astype(np.float32), "mass")
    rec = _record(ana, ak.unflatten(stacked, np.concatenate([js.n_jet for js in sets])))
    flav = _flavour_index(np.asarray(stacked.hadronFlavour) if "hadronFlavour" in stacked.fields else None,
                          is_data, len(take))
    abseta = np.abs(np.asarray(stacked.eta, dtype=np.float64))
    index = {n: i for i, n in enumerate(book.names)}
    start = 0
    for js in sets:
        sl = slice(start, start + len(js.jets))
        start += len(js.jets)
        ev_of_jet = np.repeat(js.events, js.n_jet)
        ch = np.where(channel[ev_of_jet] == CHANNELS[0], 0, 1)
        rows = range(len(book.names)) if is_data else [index[m] for m in js.weights]
        ws = [np.repeat(after, js.n_jet) for _, after in js.weights.values()]
        fill = book.filler(rows, ch, flav[sl], ws, js.pt.astype(np.float64), abseta[sl], same_rows=is_data)
        for name, (values, bins, lo, hi, label) in rec.items():
            if name == "sf_DeepJet_B":
                fill.sf(name, values[sl], label)
            else:
                fill(name, values[sl], bins, lo, hi, label)


def _flat_ok(mask) -> np.ndarray:
    return np.asarray(ak.flatten(mask), dtype=bool)


def process_data(ana, events, chunk, select, cutflow_hist, golden, pd) -> Result:
    s = select(events, golden, ana.cuts, pd)
    out = {"cutflow": cutflow_hist(s.cut, s.all_channels)}
    ev = events
    if ana.taggers and len(s.events):
        from ..inference import tagger_pass
        ev = tagger_pass(events, ana.taggers, s.all_jet_ok & s.cut["jets"], is_data=True)
    final = s.cut["jets"]
    counts = np.asarray(ak.num(events.Jet))
    ok = _flat_ok(s.all_jet_ok) & np.repeat(final, counts)
    jets_idx = np.flatnonzero(ok)
    sel_events = np.flatnonzero(final)
    n_jet = np.bincount(np.repeat(np.arange(len(counts)), counts)[jets_idx], minlength=len(counts))[sel_events]
    jets_flat = ak.flatten(ev.Jet)
    js = JetSet("nominal", sel_events, jets_idx, n_jet, np.asarray(jets_flat.pt[jets_idx], dtype=np.float64),
                np.asarray(jets_flat.mass[jets_idx], dtype=np.float64), {"nominal": (None, np.ones(len(sel_events)))})
    book = SystBook(ana.corrections_config.syst_names, ana._hist)
    _fill_sets(ana, book, jets_flat, [js], s.all_channels, True)
    out.update(book.hists())
    out["n_jets"] = njet_hist(book.axis)
    ones = np.ones(len(sel_events))
    _fill_njet(out["n_jets"], range(len(book.names)), s.all_channels[sel_events], n_jet, [ones] * len(book.names))
    return Result(hists=out, counters={"selected_events": len(sel_events), "selected_jets": len(jets_idx),
                                       "sumw_selected": float(len(sel_events))})


def mc_variations(ana, events, select, select_jets, pd, counters: dict):
    """(nominal Selection, flat record of the chunk's jets (after the tagger pass), [JetSet])."""
    cfg = ana.corrections_config
    names = cfg.syst_names
    cal = jetcorr.calibrate(events, cfg, counters)
    counts = cal["counts"]
    ev_nom = jetcorr.with_jets(events, *cal["nominal"])
    s = select(ev_nom, None, ana.cuts, pd)
    z = s.cut["Z window"]
    shapes = [n for n in names[1:] if n in cal]
    ev_of_jet = np.repeat(np.arange(len(counts)), counts)
    ok = {"nominal": _flat_ok(s.all_jet_ok) & z[ev_of_jet]}
    for n, mask in _shifted_jet_selection(events, cal, shapes, z, s.all_leptons, select_jets, ana.cuts).items():
        ok[n] = mask
    any_jet = np.logical_or.reduce(list(ok.values()))
    if ana.taggers and any_jet.any():
        from ..inference import tagger_pass
        ev_nom = tagger_pass(ev_nom, ana.taggers, ak.unflatten(any_jet, counts), is_data=False)
    jets_flat = ak.flatten(ev_nom.Jet)
    base = event_weights(cfg, events, names, counters)
    sf = ShapeSF(cfg) if cfg.has("btag") else None
    if sf is not None:
        flav = np.abs(np.asarray(jets_flat.hadronFlavour)).astype(np.int64)
        disc = np.asarray(ak.fill_none(jets_flat[sf.discriminant], -1.0), dtype=np.float64)
        abseta = np.abs(np.asarray(jets_flat.eta, dtype=np.float64))
    groups = {"nominal": [n for n in names if n not in cal or n == "nominal"]}
    groups.update({n: [n] for n in shapes})
    sets = []
    for jet_set, members in groups.items():
        jets_idx = np.flatnonzero(ok[jet_set])
        n_all = np.bincount(ev_of_jet[jets_idx], minlength=len(counts))
        sel_events = np.flatnonzero(n_all > 0)
        n_jet = n_all[sel_events]
        # float32 as the jets the selection saw (NanoAOD precision)
        pt, mass = (cal[jet_set][k][jets_idx].astype(np.float32).astype(np.float64) for k in (0, 1))
        weights = {}
        for m in members:
            before = base.get(m, base["nominal"])[sel_events]
            after = before
            if sf is not None:
                after = before * sf.event_sf(shape_systematic(m), n_jet, flav[jets_idx], abseta[jets_idx],
                                             pt, disc[jets_idx],
                                             counters if m == "nominal" else None)
            weights[m] = (before, after)
        sets.append(JetSet(jet_set, sel_events, jets_idx, n_jet, pt, mass, weights))
    return s, jets_flat, sets


def _shifted_jet_selection(events, cal, shapes, z, leptons, select_jets, cuts) -> dict:
    """``{shape variation: flat selected-jet mask over the chunk's jets}``: only the jet-dependent
    part of the selection, run once on the Z-window events' jets of all variations stacked."""
    if not shapes:
        return {}
    counts = cal["counts"]
    jet_in_z = np.repeat(z, counts)
    z_jets = events.Jet[z]
    z_counts = counts[z]
    n = len(shapes)
    pt = np.concatenate([cal[v][0][jet_in_z] for v in shapes]).astype(np.float32)
    mass = np.concatenate([cal[v][1][jet_in_z] for v in shapes]).astype(np.float32)
    stacked = ak.concatenate([z_jets] * n)
    tiled = np.tile(z_counts, n)
    stacked = ak.with_field(ak.with_field(stacked, ak.unflatten(pt, tiled), "pt"), ak.unflatten(mass, tiled), "mass")
    ok = _flat_ok(select_jets(stacked, ak.concatenate([leptons[z]] * n), cuts))
    per = int(z_counts.sum())
    out = {}
    for k, v in enumerate(shapes):
        flat = np.zeros(len(jet_in_z), dtype=bool)
        flat[jet_in_z] = ok[k * per:(k + 1) * per]
        out[v] = flat
    return out


def event_weights(cfg, events, names, counters: dict) -> dict:
    """Per-event weight before the b-tag SF of each weight variation (``nominal``: genWeight x
    pile-up); theory sums go into ``counters``."""
    gw = np.asarray(events.genWeight, dtype=np.float64) if "genWeight" in events.fields else np.ones(len(events))
    base = {"nominal": gw.copy()}
    pu = wmod.pileup(cfg, events, counters) if cfg.has("pileup") else None
    if pu is not None:
        base["nominal"] = gw * pu["nominal"]
    theory = wmod.theory(cfg, events, [n for n in names if n in wmod.THEORY]) if cfg.has("theory") else {}
    counters.update(wmod.theory_sums(gw, theory))
    for n in names[1:]:
        if n in ("pileupUp", "pileupDown"):
            base[n] = gw * pu["up" if n.endswith("Up") else "down"]
        elif n in theory:
            base[n] = base["nominal"] * theory[n]
    return base


def process_mc(ana, events, chunk, select, select_jets, cutflow_hist, pd) -> Result:
    counters: dict = {}
    s, jets_flat, sets = mc_variations(ana, events, select, select_jets, pd, counters)
    out = {"cutflow": cutflow_hist(s.cut, s.all_channels)}
    book = SystBook(ana.corrections_config.syst_names, ana._hist)
    sumw = btag_sumw_hist(book.axis)
    njets = njet_hist(book.axis)
    index = {n: i for i, n in enumerate(book.names)}
    for js in sets:
        for m, (before, after) in js.weights.items():
            _fill_sumw(sumw, index[m], js.n_jet, before, after)
        _fill_njet(njets, [index[m] for m in js.weights], s.all_channels[js.events], js.n_jet,
                   [after for _, after in js.weights.values()])
    _fill_sets(ana, book, jets_flat, sets, s.all_channels, False)
    out.update(book.hists())
    out["btag_sumw"] = sumw
    out["n_jets"] = njets
    nominal = sets[0]
    counters.update({"selected_events": len(nominal.events), "selected_jets": len(nominal.jets),
                     "sumw_selected": float(nominal.weights["nominal"][1].sum())})
    return Result(hists=out, counters=counters)


def _fill_sumw(h, row: int, n_jet, before, after) -> None:
    view = h.view(flow=True)
    n_jet = np.asarray(n_jet)
    idx = np.minimum(n_jet, NJET_MAX)      # NJET_MAX is the overflow bin
    before, after = np.asarray(before), np.asarray(after)
    for stage, w in enumerate((before, after, n_jet * before, n_jet * after)):
        view["value"][row, stage] += np.bincount(idx, w, NJET_MAX + 1)
        view["variance"][row, stage] += np.bincount(idx, w * w, NJET_MAX + 1)
