"""The figures' normalisations of systematic variations, with hand-computed numbers:

* the b-tag shape-SF normalisation per data set and jet multiplicity (Σ of MC weights before
  tagging unchanged; a per-multiplicity correction differs from an inclusive one);
* MC normalised to the data yield: the band is built from variations normalised the same way.

The run outputs here are made of real ``hist`` objects filled by the study's own fillers
(:mod:`jetdask.corrections.dy`) from a handful of events whose numbers the tests know; the last
test checks the same on a real run of the DY study over a synthetic sample.
"""
from __future__ import annotations

import json
import os

import hist
import numpy as np
import pytest

from conftest import REPO
from jetdask.corrections import dy
from jetdask.engine.outputs import RunOutput
from jetdask.plotting.bands import SystContext
from jetdask.plotting.hists import run_components
from jetdask.plotting.normalisation import normalisation
from jetdask.plotting.run import build_figures

SYST = ["nominal", "pileupUp", "pileupDown"]
# toy MC events: (selected jets, Σw before the b-tag SF, after), all in the mumu channel
EVENTS = [(1, 1.0, 0.8), (1, 2.0, 1.8), (2, 1.0, 1.5), (3, 1.0, 1.2)]
# by hand: before per multiplicity 1, 2, 3 = 3.0, 1.0, 1.0; after = 2.6, 1.5, 1.2
K_NJET = {1: 3.0 / 2.6, 2: 1.0 / 1.5, 3: 1.0 / 1.2}
K_INCLUSIVE = 5.0 / 5.3
K_PER_JET = (1 * 3.0 + 2 * 1.0 + 3 * 1.0) / (1 * 2.6 + 2 * 1.5 + 3 * 1.2)    # Σ n·before / Σ n·after
SCALE = 2.0                                   # xsec x lumi / sumw = 20 x 1 / 10


def _axis():
    return hist.axis.StrCategory(SYST, name="syst", overflow=False)


def _jet_hist(label="Jets"):
    return hist.Hist(_axis(), hist.axis.StrCategory(["mumu", "ee"], name="channel"),
                     hist.axis.StrCategory(["b", "c", "light", "data"], name="flavour"),
                     hist.axis.Regular(2, 0.0, 1.0, name="value"), storage=hist.storage.Weight(), label=label)


def _toy_output(shift=1.0) -> RunOutput:
    """MC: the EVENTS (each jet at value 0.25 if it is an event's first jet, else 0.75; pileupUp =
    ``shift`` x nominal, pileupDown = nominal); data: 4 events with the same jets, weight 1."""
    n = np.array([e[0] for e in EVENTS])
    before = np.array([e[1] for e in EVENTS])
    after = np.array([e[2] for e in EVENTS])
    sumw, njets = dy.btag_sumw_hist(_axis()), dy.njet_hist(_axis())
    jets, data_jets, data_njets = _jet_hist(), _jet_hist(), dy.njet_hist(_axis())
    ch = np.array(["mumu"] * len(n))
    for row, k in enumerate((1.0, shift, 1.0)):
        dy._fill_sumw(sumw, row, n, before * k, after * k)
    dy._fill_njet(njets, [0, 1, 2], ch, n, [after, after * shift, after])
    dy._fill_njet(data_njets, [0, 1, 2], ch, n, [np.ones(len(n))] * 3)
    values = np.concatenate([[0.25] + [0.75] * (k - 1) for k in n])
    w = np.repeat(after, n)
    for s, k in zip(SYST, (1.0, shift, 1.0)):
        jets.fill(syst=s, channel="mumu", flavour="light", value=values, weight=w * k)
        data_jets.fill(syst=s, channel="mumu", flavour="data", value=values)
    hists = {"mc": {"btag_sumw": sumw, "n_jets": njets, "DeepJet_BvsL": jets},
             "data": {"n_jets": data_njets, "DeepJet_BvsL": data_jets}}
    return RunOutput(hists=hists, counters={"mc": {"sumw": 10.0}, "data": {}}, array_files={},
                     completeness={}, counts={}, failed=[])


META = {"mc": {"is_data": False, "xsec": 20.0}, "data": {"is_data": True, "lumi": 1.0}}


def _mc_total(ctx, name):
    _, mc, _ = run_components(ctx.out.hists, name, ctx.norm_for(name), "all")
    return sum(t[0] for t in mc.values())


def test_btag_normalisation_per_jet_multiplicity_by_hand():
    out = _toy_output()
    ctx = SystContext(out, META, normalisation(out, META), btag_norm=True)
    # the jet-multiplicity histogram: k(n) bin by bin, so each bin gets back its Σw before tagging
    got = _mc_total(ctx, "n_jets")                       # underflow pad, bins 0..7, overflow
    want = np.zeros(10)
    want[2:5] = np.array([3.0, 1.0, 1.0]) * SCALE
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert got.sum() == pytest.approx(5.0 * SCALE, rel=1e-12)   # Σ of MC weights before tagging unchanged
    inclusive = np.zeros(10)
    inclusive[2:5] = np.array([2.6, 1.5, 1.2]) * SCALE * K_INCLUSIVE
    assert inclusive.sum() == pytest.approx(got.sum(), rel=1e-12)  # same total as the inclusive correction ...
    assert not np.allclose(got, inclusive, rtol=1e-3)              # ... but not the same per multiplicity
    # the per-jet histogram: every jet of an event with n jets gets k(n), summed over the histogram
    jets = _mc_total(ctx, "DeepJet_BvsL")
    assert jets.sum() == pytest.approx((1 * 3.0 + 2 * 1.0 + 3 * 1.0) * SCALE, rel=1e-12)
    assert jets.sum() / (9.2 * SCALE) == pytest.approx(K_PER_JET, rel=1e-12)
    assert K_PER_JET != pytest.approx(K_INCLUSIVE, rel=1e-2)
    # a per-event histogram without multiplicity information gets the inclusive factor
    out.hists["mc"]["other"] = out.hists["mc"]["DeepJet_BvsL"].copy()
    out.hists["mc"]["other"].label = "Events"
    assert _mc_total(ctx, "other").sum() == pytest.approx(9.2 * SCALE * K_INCLUSIVE, rel=1e-12)
    # switched off: the SF-weighted sums as filled
    off = SystContext(out, META, normalisation(out, META), btag_norm=False)
    assert _mc_total(off, "n_jets").sum() == pytest.approx(5.3 * SCALE, rel=1e-12)


def test_btag_normalisation_on_the_figures_and_stated():
    out = _toy_output()
    figs = {stem: (fig, e) for stem, fig, e in build_figures(out, metadata=META, channel="sum")}
    fig, entry = figs["n_jets_all"]
    panel = fig.panels[0]
    assert entry["mc_events"] == pytest.approx(5.0 * SCALE, rel=1e-12)
    assert panel.mc_total[1:4] == pytest.approx(np.array([3.0, 1.0, 1.0]) * SCALE, rel=1e-12)
    texts = [t.get_text() for t in fig.findobj(lambda o: hasattr(o, "get_text"))]
    assert any("b-tag SF norm." in t and "n_{jet}" in t for t in texts)
    assert figs["DeepJet_BvsL_all"][1]["mc_events"] == pytest.approx(8.0 * SCALE, rel=1e-12)
    off = {stem: e for stem, _, e in build_figures(out, metadata=META, channel="sum", btag_norm=False)}
    assert off["n_jets_all"]["mc_events"] == pytest.approx(5.3 * SCALE, rel=1e-12)


def test_band_follows_the_mc_normalised_to_data_fallback():
    """No cross section: MC is normalised to the data yield per figure. A variation that only
    changes the normalisation (pileupUp = 1.3 x nominal) then gives no band; the band is built
    from each variation normalised to the data yield, as the nominal is."""
    out = _toy_output(shift=1.3)
    meta = {"mc": {"is_data": False}, "data": {"is_data": True, "lumi": 1.0}}
    norm = normalisation(out, meta)
    assert norm.to_data
    ctx = SystContext(out, meta, norm, btag_norm=False)
    band = ctx.band("DeepJet_BvsL", "all", "discriminant")
    np.testing.assert_allclose(band.up, 0.0, atol=1e-12)
    np.testing.assert_allclose(band.down, 0.0, atol=1e-12)
    # a shape change: pileupDown moves 10 % of the first bin's MC into the second (by hand)
    h = out.hists["mc"]["DeepJet_BvsL"]
    v = h.view(flow=True)
    i_down = SYST.index("pileupDown")
    # value bins with flow: [under, 0-0.5, 0.5-1, over]; mumu = 0, light = 2
    first, second = v["value"][i_down, 0, 2, 1], v["value"][i_down, 0, 2, 2]
    v["value"][i_down, 0, 2, 1], v["value"][i_down, 0, 2, 2] = 0.9 * first, second + 0.1 * first
    band = ctx.band("DeepJet_BvsL", "all", "discriminant")
    data_total = 4 + 3.0                                  # jets: 4 first jets, 3 others
    nom = np.array([first, second]) * data_total / (first + second)
    down = np.array([0.9 * first, second + 0.1 * first]) * data_total / (first + second)
    np.testing.assert_allclose(band.down, [nom[0] - down[0], 0.0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(band.up, [0.0, down[1] - nom[1]], rtol=1e-12, atol=1e-12)
    figs = {stem: (fig, e) for stem, fig, e in build_figures(out, metadata=meta, channel="sum", btag_norm=False)}
    fig, entry = figs["DeepJet_BvsL_all"]
    assert entry["mc_events"] == pytest.approx(data_total, rel=1e-12)
    assert entry["syst_impact_pct"]["pileup"]["up"] == pytest.approx(0.0, abs=1e-9)
    assert "shapes only" in entry["caption"]["band_normalisation"]
    texts = [t.get_text() for t in fig.findobj(lambda o: hasattr(o, "get_text"))]
    assert any("shapes only" in t for t in texts)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from jetdask.engine.runner import Runner
    from jetdask.plugin import load_analysis
    from jetdask.synthetic import generate_sample
    base = tmp_path_factory.mktemp("norm")
    fileset = generate_sample(str(base / "s"), events=1500, files=1, seed=5, mismodel=1.0, workers=1)
    ana = load_analysis(str(REPO / "analyses" / "dy_jets.py") + ":DYJets",
                        corrections=os.path.join(os.path.dirname(fileset), "corrections.yaml"),
                        systematics=["btag_hf", "jesTotal"])
    with Runner(ana, fileset, str(base / "run"), serial=True, chunk_size=700, progress=False) as r:
        out = r.run()
    with open(fileset) as f:
        md = {k: v["metadata"] for k, v in json.load(f).items()}
    return out, md


def test_real_run_keeps_each_multiplicitys_weights_before_tagging(run_dir):
    """The DY study on a synthetic sample: its n_jets figure has, per multiplicity and per
    variation, the MC weights before the b-tag SF (as the run stored them), x xsec x lumi / sumw."""
    out, md = run_dir
    mc = "DYJetsToLL_M-50"
    norm = normalisation(out, md)
    ctx = SystContext(out, md, norm, btag_norm=True)
    sumw = out.hists[mc]["btag_sumw"]
    names = [str(c) for c in sumw.axes["syst"]]
    scale = norm.datasets[mc]["scale"]
    for syst in names:
        before = sumw.values(flow=True)[names.index(syst), 0]
        after = sumw.values(flow=True)[names.index(syst), 1]
        h = out.hists[mc]["n_jets"][{"syst": syst, "channel": sum}]
        np.testing.assert_allclose(h.values(flow=True), after, rtol=1e-9)    # what n_jets was filled with
        got = ctx._variation_total("n_jets", syst, "all")[0]
        np.testing.assert_allclose(got[1:], before * scale, rtol=1e-9)
        assert not np.allclose(after, before, rtol=1e-3)
    nominal = _mc_total(ctx, "n_jets")
    np.testing.assert_allclose(nominal[1:], sumw.values(flow=True)[0, 0] * scale, rtol=1e-9)
    # per-jet histograms: their total is Σ n·w before tagging
    jets = _mc_total(ctx, "DeepJet_BvsL")
    assert jets.sum() == pytest.approx(sumw.values(flow=True)[0, 2].sum() * scale, rel=1e-9)
    # the data's n_jets counts each selected event once
    d = out.hists["DoubleMuon"]["n_jets"][{"syst": "nominal", "channel": sum}].values(flow=True).sum()
    assert d == out.counters["DoubleMuon"]["selected_events"]
