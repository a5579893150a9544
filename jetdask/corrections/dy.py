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
   (:mod:`jetdask.corrections.fill`); ``btag_sumw`` holds Σw before and after the b-tag SF per
   variation and jet multiplicity (the plots' normalisation correction).

Data: the nominal selection, no corrections, the same content in every ``syst`` bin.
"""
from __future__ import annotations

import awkward as ak
import hist
import numpy as np

from .. import Result
from . import jets as jetcorr
from . import weights as wmod
from .btag import ShapeSF, shape_systematic
from .fill import CHANNELS, SystBook

NJET_MAX = 8


def btag_sumw_hist(syst_axis) -> hist.Hist:
    return hist.Hist(syst_axis, hist.axis.StrCategory(["before", "after"], name="stage", overflow=False),
                     hist.axis.Integer(0, NJET_MAX, name="njet", label="selected jets", underflow=False),
                     storage=hist.storage.Weight())


def _flavour_index(jets, is_data: bool) -> np.ndarray:
    if is_data or "hadronFlavour" not in jets.fields:
        return np.full(int(ak.sum(ak.num(jets))), 3, dtype=np.int64)
    f = np.abs(np.asarray(ak.flatten(jets.hadronFlavour)))
    return np.where(f == 5, 0, np.where(f == 4, 1, 2))


def _per_jet(event_values, jets) -> np.ndarray:
    return np.repeat(np.asarray(event_values), np.asarray(ak.num(jets)))


def _fill_set(ana, book, rows, jets, channel, event_weights, is_data: bool, same_rows=False):
    """Fill every histogram of the study for one set of jets and its weight rows."""
    ch = _per_jet(np.where(np.asarray(channel) == CHANNELS[0], 0, 1), jets)
    fl = _flavour_index(jets, is_data)
    pt = np.asarray(ak.flatten(jets.pt), dtype=np.float64)
    abseta = np.abs(np.asarray(ak.flatten(jets.eta), dtype=np.float64))
    fill = book.filler(rows, ch, fl, [_per_jet(w, jets) for w in event_weights], pt, abseta, same_rows)
    ana.fill_jets(jets, fill)
    if "btagDeepFlavB" in jets.fields:
        fill.sf("sf_DeepJet_B", np.asarray(ak.flatten(ak.fill_none(jets.btagDeepFlavB, -1.0)), dtype=np.float64),
                "DeepJet B")


def process_data(ana, events, chunk, select, cutflow_hist, golden, pd) -> Result:
    s = select(events, golden, ana.cuts, pd)
    out = {"cutflow": cutflow_hist(s.cut, s.all_channels)}
    sel, jets = s.events, s.jets
    if ana.taggers and len(sel):
        from ..inference import tagger_pass
        sel = tagger_pass(sel, ana.taggers, s.jet_mask, is_data=True)
        jets = sel.Jet[s.jet_mask]
    book = SystBook(ana.corrections_config.syst_names, ana._hist)
    rows = range(len(book.names))
    _fill_set(ana, book, rows, jets, s.channel, [np.ones(len(sel))], True, same_rows=True)
    out.update(book.hists())
    return Result(hists=out, counters={"selected_events": int(len(sel)), "selected_jets": int(ak.sum(ak.num(jets))),
                                       "sumw_selected": float(len(sel))})


def process_mc(ana, events, chunk, select, select_jets, cutflow_hist, pd) -> Result:
    cfg = ana.corrections_config
    names = cfg.syst_names
    counters: dict = {}
    cal = jetcorr.calibrate(events, cfg, counters)
    counts = cal["counts"]
    ev_nom = jetcorr.with_jets(events, *cal["nominal"])
    s = select(ev_nom, None, ana.cuts, pd)
    out = {"cutflow": cutflow_hist(s.cut, s.all_channels)}
    z = s.cut["Z window"]
    jet_ok = {"nominal": s.all_jet_ok}
    shapes = [n for n in names[1:] if n in cal]
    for n in shapes:   # only the jet-dependent part of the selection, on the shifted jets
        jet_ok[n] = select_jets(jetcorr.with_jets(events, *cal[n]).Jet, s.all_leptons, ana.cuts)
    has = {n: z & np.asarray(ak.any(ok, axis=1)) for n, ok in jet_ok.items()}
    union = np.logical_or.reduce(list(has.values()))
    jet_in_union = np.repeat(union, counts)

    # event weights (all events), then restricted to the union
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

    u_events = ev_nom[union]
    u_jet_ok = {n: ok[union] for n, ok in jet_ok.items()}
    any_jet = u_jet_ok["nominal"]
    for ok in u_jet_ok.values():
        any_jet = any_jet | ok
    if ana.taggers and len(u_events):
        from ..inference import tagger_pass
        u_events = tagger_pass(u_events, ana.taggers, any_jet, is_data=False)
    u_counts = counts[union]
    channel_u = s.all_channels[union]
    sf = ShapeSF(cfg) if cfg.has("btag") else None
    book = SystBook(names, ana._hist)
    sumw = btag_sumw_hist(book.axis)
    index = {n: i for i, n in enumerate(names)}
    groups = {"nominal": [n for n in names if n not in cal or n == "nominal"]}
    groups.update({n: [n] for n in shapes})
    for jet_set, members in groups.items():
        ev_mask = has[jet_set][union]
        jets = u_events.Jet
        if jet_set != "nominal":
            pt, mass = (ak.unflatten(a[jet_in_union].astype(np.float32), u_counts) for a in cal[jet_set])
            jets = ak.with_field(ak.with_field(jets, pt, "pt"), mass, "mass")
        jets = jets[ev_mask][u_jet_ok[jet_set][ev_mask]]
        n_jet = np.asarray(ak.num(jets))
        rows, ws = [], []
        for m in members:
            w_before = base.get(m, base["nominal"])[union][ev_mask]
            w = w_before
            if sf is not None:
                disc = ak.flatten(ak.fill_none(jets[sf.discriminant], -1.0))
                w = w_before * sf.event_sf(shape_systematic(m), n_jet, np.abs(ak.flatten(jets.hadronFlavour)),
                                           np.abs(ak.flatten(jets.eta)), ak.flatten(jets.pt), disc,
                                           counters if m == "nominal" else None)
            _fill_sumw(sumw, index[m], n_jet, w_before, w)
            rows.append(index[m])
            ws.append(w)
        _fill_set(ana, book, rows, jets, channel_u[ev_mask], ws, False)
    out.update(book.hists())
    out["btag_sumw"] = sumw
    nominal_sel = has["nominal"]
    counters.update({"selected_events": int(nominal_sel.sum()),
                     "selected_jets": int(ak.sum(ak.num(s.jets))),
                     "sumw_selected": float(base["nominal"][nominal_sel].sum())})
    return Result(hists=out, counters=counters)


def _fill_sumw(h, row: int, n_jet, before, after) -> None:
    view = h.view(flow=True)
    idx = np.minimum(np.asarray(n_jet), NJET_MAX)      # NJET_MAX is the overflow bin
    for stage, w in ((0, np.asarray(before)), (1, np.asarray(after))):
        view["value"][row, stage] += np.bincount(idx, w, NJET_MAX + 1)
        view["variance"][row, stage] += np.bincount(idx, w * w, NJET_MAX + 1)
