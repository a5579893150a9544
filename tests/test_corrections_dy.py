"""The DY+jets study with corrections: weights, flavour masks, JEC, normalisation, by hand.

Expected numbers are recomputed here from the JSON bin contents (numpy lookups) and from the
branches, independently of :mod:`jetdask.corrections`.
"""
from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
import uproot

from conftest import REPO
from dy_jets import DYJets, select, select_jets
from jetdask.corrections import dy
from jetdask.nanoaod.columns import resolve_columns
from jetdask.nanoaod.events import events_from_arrays


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    from jetdask.synthetic import generate_sample
    out = tmp_path_factory.mktemp("dycorr")
    return generate_sample(str(out), events=2500, files=1, seed=21, mismodel=1.0, basket_events=500, workers=1)


def _events(path, ana):
    t = uproot.open(path)["Events"]
    return events_from_arrays(t.arrays(resolve_columns(t.keys(), ana.columns, path=path), how=dict))


def _doc(path):
    with gzip.open(path, "rt") as f:
        return json.load(f)


def _lookup_multibinning(node, *values):
    """Bin content of a clamped MultiBinning at ``values`` (numpy, by hand)."""
    idx = []
    for edges, v in zip(node["edges"], values):
        e = np.asarray(edges)
        idx.append(np.clip(np.searchsorted(e, np.asarray(v, dtype=float), side="right") - 1, 0, len(e) - 2))
    shape = [len(e) - 1 for e in node["edges"]]
    return np.asarray(node["content"])[np.ravel_multi_index(idx, shape)]


def _shape_sf(doc, systematic, flavour, abseta, pt, disc):
    shape = next(c for c in doc["corrections"] if c["name"] == "deepJet_shape")
    by_syst = {i["key"]: i["value"] for i in shape["data"]["content"]}
    by_flav = {i["key"]: i["value"] for i in by_syst[systematic]["content"]}
    if flavour not in by_flav:
        return None
    return float(_lookup_multibinning(by_flav[flavour], abseta, pt, disc))


@pytest.fixture(scope="module")
def variations(sample):
    import os
    d = os.path.dirname(sample)
    ana = DYJets(corrections=os.path.join(d, "corrections.yaml"))
    events = _events(os.path.join(d, "mc_0.root"), ana)
    counters: dict = {}
    _, jets_flat, sets = dy.mc_variations(ana, events, select, select_jets, None, counters)
    return {"dir": d, "ana": ana, "events": events, "sets": {js.name: js for js in sets}, "jets": jets_flat,
            "counters": counters, "btag": _doc(os.path.join(d, "btagging.json.gz")),
            "pu": _doc(os.path.join(d, "puWeights.json.gz"))}


def _pu_weight(doc, which, n_true):
    node = next(i["value"] for i in doc["corrections"][0]["data"]["content"] if i["key"] == which)
    e = np.asarray(node["edges"])
    return np.asarray(node["content"])[np.clip(np.searchsorted(e, n_true, side="right") - 1, 0, len(e) - 2)]


def test_event_weights_by_hand(variations):
    v = variations
    js = v["sets"]["nominal"]
    ev = v["events"]
    jets = v["jets"]
    checked = 0
    for k in range(0, len(js.events), max(1, len(js.events) // 12)):
        e = js.events[k]
        first = int(np.sum(js.n_jet[:k]))
        idx = js.jets[first:first + js.n_jet[k]]
        gw = float(ev.genWeight[e])
        pu = float(_pu_weight(v["pu"], "nominal", float(ev.Pileup.nTrueInt[e])))
        sfs = [_shape_sf(v["btag"], "central", int(abs(jets.hadronFlavour[i])), abs(float(jets.eta[i])),
                         float(js.pt[first + j]), float(jets.btagDeepFlavB[i])) for j, i in enumerate(idx)]
        before, after = js.weights["nominal"]
        assert before[k] == pytest.approx(gw * pu, rel=1e-12)
        assert after[k] == pytest.approx(gw * pu * np.prod(sfs), rel=1e-12)
        # pile-up up: only the pile-up weight changes
        assert js.weights["pileupUp"][0][k] == pytest.approx(
            gw * float(_pu_weight(v["pu"], "up", float(ev.Pileup.nTrueInt[e]))), rel=1e-12)
        # muR up: LHEScaleWeight[7] (muR=2, muF=1) of the 9 stored
        assert js.weights["muRUp"][0][k] == pytest.approx(gw * pu * float(ev.LHEScaleWeight[e][7]), rel=1e-12)
        checked += 1
    assert checked >= 8


@pytest.mark.parametrize("variation,systematic,flavours", [
    ("btag_cferr1Up", "up_cferr1", {4}), ("btag_hfDown", "down_hf", {0, 5}), ("btag_lfstats2Up", "up_lfstats2", {0, 5}),
])
def test_flavour_masks_other_jets_keep_central(variations, variation, systematic, flavours):
    v = variations
    js = v["sets"]["nominal"]
    jets = v["jets"]
    flav = np.abs(np.asarray(jets.hadronFlavour))[js.jets]
    assert {0, 4, 5} <= set(flav.tolist())        # the sample has jets of every flavour
    start = np.concatenate([[0], np.cumsum(js.n_jet)])
    mixed = [k for k in range(len(js.events)) if len(set(flav[start[k]:start[k + 1]].tolist())) > 1][:10]
    assert mixed
    for k in mixed:
        prod = 1.0
        for j in range(start[k], start[k + 1]):
            i = js.jets[j]
            args = (abs(float(jets.eta[i])), float(js.pt[j]), float(jets.btagDeepFlavB[i]))
            own = _shape_sf(v["btag"], systematic, int(flav[j]), *args)
            assert (own is not None) == (int(flav[j]) in flavours)     # the file lacks it for the others
            prod *= own if own is not None else _shape_sf(v["btag"], "central", int(flav[j]), *args)
        assert js.weights[variation][1][k] == pytest.approx(js.weights[variation][0][k] * prod, rel=1e-12)


def test_jes_pass_uses_the_matched_sf_at_the_shifted_pt(variations):
    v = variations
    js = v["sets"]["jesAbsoluteUp"]
    nom = v["sets"]["nominal"]
    jets = v["jets"]
    common = np.intersect1d(js.jets, nom.jets)
    j_shift = np.searchsorted(js.jets, common)
    j_nom = np.searchsorted(nom.jets, common)
    assert np.all(js.pt[j_shift] > nom.pt[j_nom])                  # shifted up
    start = np.concatenate([[0], np.cumsum(js.n_jet)])
    for k in range(min(10, len(js.events))):
        prod = 1.0
        for j in range(start[k], start[k + 1]):
            i = js.jets[j]
            fl = int(abs(jets.hadronFlavour[i]))
            args = (abs(float(jets.eta[i])), float(js.pt[j]), float(jets.btagDeepFlavB[i]))
            prod *= _shape_sf(v["btag"], "up_jesAbsolute" if fl != 4 else "central", fl, *args)
        assert js.weights["jesAbsoluteUp"][1][k] == pytest.approx(js.weights["jesAbsoluteUp"][0][k] * prod, rel=1e-12)


def test_jec_and_jer_from_raw_pt_by_hand(variations):
    """Nominal pT = raw x (L1 x L2, the formula written out here) x the hybrid JER factor of
    matched jets (1 + (SF - 1)(pT - GenPt)/pT, SF from the file's bin content)."""
    v = variations
    ev, jets = v["events"], v["jets"]
    js = v["sets"]["nominal"]
    jerc = _doc(v["dir"] + "/jet_jerc.json.gz")
    sf_node = next(c for c in jerc["corrections"] if c["name"].endswith("ScaleFactor_AK4PFchs"))["data"]
    nom_node = next(i["value"] for i in sf_node["content"] if i["key"] == "nom")
    import awkward as ak
    counts = np.asarray(ak.num(ev.Jet))
    ev_of = np.repeat(np.arange(len(counts)), counts)
    gen_pt = ev.GenJet.pt
    stored = np.asarray(ak.flatten(ev.Jet.pt), dtype=float)      # the file's pT (jets_flat holds the corrected one)
    n_matched = 0
    for j, i in enumerate(js.jets[:400]):
        raw = stored[i] * (1 - float(jets.rawFactor[i]))
        eta, area, rho = float(jets.eta[i]), float(jets.area[i]), float(ev.fixedGridRhoFastjetAll[ev_of[i]])
        l1 = max(1e-4, 1 - area * rho * 0.85 / raw)
        edges = np.linspace(-5.2, 5.2, 27)
        c = 0.5 * (edges[1:] + edges[:-1])[min(max(np.searchsorted(edges, eta, side="right") - 1, 0), 25)]
        pt_jec = raw * l1 * (1.10 + 0.04 * abs(c) + 3.0 / (raw * l1))
        assert abs(pt_jec / stored[i] - 1) < 0.01                      # reproduces the stored pT
        g = int(jets.genJetIdx[i])
        if g < 0:
            continue
        gpt = float(gen_pt[ev_of[i]][g])
        res = 0.05 + 0.9 / np.sqrt(pt_jec)
        if abs(pt_jec - gpt) >= 3 * res * pt_jec:
            continue
        e = np.asarray(nom_node["edges"])
        sf = nom_node["content"][min(max(np.searchsorted(e, eta, side="right") - 1, 0), len(e) - 2)]
        want = pt_jec * max(0.0, 1 + (sf - 1) * (pt_jec - gpt) / pt_jec)
        assert js.pt[j] == pytest.approx(want, rel=2e-6)               # float32 storage
        n_matched += 1
    assert n_matched > 50


def test_theory_sums_are_counted_over_all_events(variations):
    ev = variations["events"]
    gw = np.asarray(ev.genWeight, dtype=float)
    lhe = np.asarray(ev.LHEScaleWeight, dtype=float)
    ps = np.asarray(ev.PSWeight, dtype=float)
    c = variations["counters"]
    assert c["sumw_muFDown"] == pytest.approx(float(np.sum(gw * lhe[:, 3])), rel=1e-12)
    assert c["sumw_fsrUp"] == pytest.approx(float(np.sum(gw * ps[:, 1])), rel=1e-12)


def test_normalisation_keeps_the_sum_of_weights_before_tagging(sample, tmp_path):
    """Σw before the b-tag SF (recomputed here from the branches and the pile-up JSON) is what the
    normalisation-corrected SF-weighted sum gives back, per variation."""
    import os

    from jetdask.corrections.normalise import btag_norm, variation_scales
    from jetdask.engine.runner import Runner
    from jetdask.plugin import load_analysis
    d = os.path.dirname(sample)
    ana = load_analysis(str(REPO / "analyses" / "dy_jets.py") + ":DYJets",
                        corrections=os.path.join(d, "corrections.yaml"))
    with Runner(ana, sample, str(tmp_path / "run"), serial=True, chunk_size=1000, progress=False) as r:
        out = r.run()
    mc = "DYJetsToLL_M-50"
    h = out.hists[mc]["btag_sumw"]
    # by hand: genWeight x pile-up over the nominally selected events
    ana_plain = DYJets(corrections=os.path.join(d, "corrections.yaml"))
    events = _events(os.path.join(d, "mc_0.root"), ana_plain)
    counters: dict = {}
    _, _, sets = dy.mc_variations(ana_plain, events, select, select_jets, None, counters)
    pu_doc = _doc(os.path.join(d, "puWeights.json.gz"))
    nom = sets[0]
    hand = float(np.sum(np.asarray(events.genWeight, dtype=float)[nom.events]
                        * _pu_weight(pu_doc, "nominal", np.asarray(events.Pileup.nTrueInt, dtype=float)[nom.events])))
    i = list(h.axes["syst"]).index("nominal")
    before, after = h.values(flow=True)[i, 0].sum(), h.values(flow=True)[i, 1].sum()
    assert before == pytest.approx(hand, rel=1e-9)
    assert after != pytest.approx(before, rel=1e-6)                 # the shape SFs do change the yield
    for syst in ("nominal", "btag_lfUp", "jesTotalDown"):
        j = list(h.axes["syst"]).index(syst)
        b, a = h.values(flow=True)[j, 0].sum(), h.values(flow=True)[j, 1].sum()
        assert a * btag_norm(h, syst) == pytest.approx(b, rel=1e-12)
    with open(sample) as f:
        md = {k: v["metadata"] for k, v in json.load(f).items()}
    sc = variation_scales(out, md)
    off = variation_scales(out, md, btag_norm_on=False)
    assert sc[mc]["nominal"] == pytest.approx(off[mc]["nominal"] * before / after, rel=1e-12)
    assert sc["DoubleMuon"]["nominal"] == 1.0


def test_real_nano_dy_file_evaluates(variations, nano_dy_path):
    """The synthetic correction files on the real NanoAOD file: every variation evaluates."""
    import os
    ana = DYJets(corrections=os.path.join(variations["dir"], "corrections.yaml"))
    events = _events(nano_dy_path, ana)

    class Chunk:
        metadata = {"is_data": False}  # noqa: RUF012 - a stand-in for jetdask.Chunk
    res = ana.process(events, Chunk)
    names = [str(s) for s in res.hists["DeepJet_BvsL"].axes["syst"]]
    assert names[0] == "nominal" and len(names) == 41
    assert any(k.startswith("clamp:") for k in res.counters)
    assert res.hists["sf_DeepJet_BvsL"].axes.name == ("syst", "channel", "flavour", "pt", "abseta", "discriminant")
