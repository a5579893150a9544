"""The synthetic correction files: official structure, validation, and numbers recomputed by hand.

Every expected number here is recomputed from the JSON bin contents or from the formulas of
:mod:`jetdask.synthetic.calibration`/:mod:`jetdask.synthetic.truth` with numpy, never copied.
"""
from __future__ import annotations

import gzip
import json

import correctionlib
import numpy as np
import pytest
from correctionlib import schemav2

from jetdask.synthetic import calibration as cal
from jetdask.synthetic import truth
from jetdask.synthetic.pog import write_corrections


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("pog")
    write_corrections(str(d), mismodel=1.0, sf_mismodel=1.0)
    return d


def _doc(path):
    with gzip.open(path, "rt") as f:
        return json.load(f)


def _cset(path):
    return correctionlib.CorrectionSet.from_file(str(path))


def test_every_file_validates_against_schema_v2(files):
    for name in ("btagging.json.gz", "puWeights.json.gz", "jet_jerc.json.gz"):
        schemav2.CorrectionSet.model_validate(_doc(files / name))


def test_btag_file_has_the_official_names_and_inputs(files):
    c = _cset(files / "btagging.json.gz")
    assert {"deepJet_shape", "deepJet_comb", "deepJet_incl", "deepJet_wp_values"} <= set(c)
    assert [v.name for v in c["deepJet_shape"].inputs] == ["systematic", "flavor", "abseta", "pt", "discriminant"]
    assert [v.name for v in c["deepJet_comb"].inputs] == ["systematic", "working_point", "flavor", "abseta", "pt"]
    doc = _doc(files / "btagging.json.gz")
    shape = next(x for x in doc["corrections"] if x["name"] == "deepJet_shape")
    keys = {item["key"] for item in shape["data"]["content"]}
    for s in ("hf", "lf", "hfstats1", "hfstats2", "lfstats1", "lfstats2", "cferr1", "cferr2", "jes",
              "jesAbsolute", "jesFlavorQCD", "jesRelativeBal", "jesBBEC1"):
        assert {f"up_{s}", f"down_{s}"} <= keys
    wp = next(x for x in doc["corrections"] if x["name"] == "deepJet_comb")
    assert {i["key"] for i in wp["data"]["content"]} == {"central", "up", "down", "up_correlated", "down_correlated",
                                                         "up_uncorrelated", "down_uncorrelated"}


@pytest.mark.parametrize("syst,flavour,defined", [
    ("up_cferr1", 4, True), ("up_cferr1", 5, False), ("up_cferr2", 0, False),
    ("up_hf", 5, True), ("up_hf", 0, True), ("up_hf", 4, False),
    ("down_lfstats2", 4, False), ("up_jesAbsolute", 5, True), ("up_jesAbsolute", 4, False),
    ("central", 4, True),
])
def test_shape_variation_per_flavour_availability(files, syst, flavour, defined):
    corr = _cset(files / "btagging.json.gz")["deepJet_shape"]
    if defined:
        assert corr.evaluate(syst, flavour, 0.5, 50.0, 0.5) > 0
    else:
        with pytest.raises(Exception):  # noqa: B017 - correctionlib raises a plain error: the category is missing
            corr.evaluate(syst, flavour, 0.5, 50.0, 0.5)


def test_shape_central_is_the_injected_truth(files):
    corr = _cset(files / "btagging.json.gz")["deepJet_shape"]
    rng = np.random.default_rng(3)
    pt = rng.uniform(20, 900, 500)
    eta = rng.uniform(0, 2.49, 500)
    d = rng.uniform(0, 0.999, 500)
    for fl in (0, 4, 5):
        got = corr.evaluate("central", np.full(500, fl), eta, pt, d)
        want = truth.injected_sf(np.full(500, fl if fl else 0), pt, eta, d, 1.0)
        np.testing.assert_allclose(got, want, rtol=1e-12)
    # by hand, one light jet above L: 1 + LIGHT_SHIFT[pt bin 3 (70-100)][eta bin 1 (0.8-1.6)]
    assert corr.evaluate("central", 0, 1.0, 80.0, 0.5) == pytest.approx(1 + (0.06 + 0.015 * 3 + 0.03 * 1))
    f = truth.LIGHT_FRACTION_ABOVE_L[3, 1]
    s = 1 + (0.06 + 0.015 * 3 + 0.03)
    assert corr.evaluate("central", 0, 1.0, 80.0, 0.01) == pytest.approx((1 - s * f) / (1 - f))


def test_light_truth_keeps_each_bins_yield_and_wp_sf_is_exact():
    ipt, ieta = np.meshgrid(np.arange(8), np.arange(3), indexing="ij")
    pt = truth.PT_EDGES[ipt] + 1
    eta = truth.ABSETA_EDGES[ieta] + 0.1
    f = truth.LIGHT_FRACTION_ABOVE_L[ipt, ieta]
    mean = f * truth.light_mistag_sf(pt, eta, 0.5, 0.7) + (1 - f) * truth.light_mistag_sf(pt, eta, 0.0, 0.7)
    np.testing.assert_allclose(mean, 1.0, rtol=1e-12)
    for wp in ("L", "M", "T"):
        np.testing.assert_allclose(truth.light_mistag_sf_wp(wp, pt, eta, 0.7),
                                   truth.light_mistag_sf(pt, eta, truth.WP_VALUES[wp], 0.7))


def test_wp_values_and_light_incl_sf(files):
    c = _cset(files / "btagging.json.gz")
    for wp, cut in truth.WP_VALUES.items():
        assert c["deepJet_wp_values"].evaluate(wp) == cut
        assert c["deepJet_incl"].evaluate("central", wp, 0, 2.0, 250.0) == pytest.approx(
            float(truth.light_mistag_sf_wp(wp, 250.0, 2.0, 1.0)))
    up = c["deepJet_incl"].evaluate("up", "M", 0, 2.0, 250.0)
    down = c["deepJet_incl"].evaluate("down", "M", 0, 2.0, 250.0)
    assert up > c["deepJet_incl"].evaluate("central", "M", 0, 2.0, 250.0) > down
    with pytest.raises(Exception):  # noqa: B017 - correctionlib's missing-category error
        c["deepJet_incl"].evaluate("central", "M", 5, 2.0, 250.0)   # b jets are in deepJet_comb


def test_pileup_weights_are_the_profile_ratio_of_the_bin(files):
    doc = _doc(files / "puWeights.json.gz")
    (corr,) = doc["corrections"]
    assert corr["name"] == "Collisions18_UltraLegacy_goldenJSON"
    assert [i["name"] for i in corr["inputs"]] == ["NumTrueInteractions", "weights"]
    ev = _cset(files / "puWeights.json.gz")[corr["name"]]
    nominal = next(i["value"] for i in corr["data"]["content"] if i["key"] == "nominal")
    n = np.array([0.3, 17.5, 32.0, 64.9, 150.0])
    idx = np.clip(np.searchsorted(nominal["edges"], n, side="right") - 1, 0, len(nominal["content"]) - 1)
    np.testing.assert_allclose(ev.evaluate(n, "nominal"), np.asarray(nominal["content"])[idx])
    from scipy.stats import gamma
    lo, hi = 32.0, 33.0
    want = (gamma.cdf(hi, 10, scale=3.2 * 1.05) - gamma.cdf(lo, 10, scale=3.2 * 1.05)) / \
        (gamma.cdf(hi, 10, scale=3.2) - gamma.cdf(lo, 10, scale=3.2))
    assert ev.evaluate(32.5, "nominal") == pytest.approx(want, rel=1e-9)
    assert ev.evaluate(45.0, "up") > ev.evaluate(45.0, "nominal") > ev.evaluate(45.0, "down")


def test_jec_compound_equals_the_independent_formula(files):
    c = _cset(files / "jet_jerc.json.gz")
    comp = c.compound["Synth18_V1_MC_L1L2L3Res_AK4PFchs"]
    assert [v.name for v in comp.inputs] == ["JetA", "JetEta", "JetPt", "Rho"]
    rng = np.random.default_rng(5)
    raw = rng.uniform(15, 500, 300)
    eta = rng.uniform(-4.9, 4.9, 300)
    area = rng.uniform(0.4, 0.6, 300)
    rho = rng.uniform(2, 40, 300)
    got = comp.evaluate(area, eta, raw, rho)
    # by hand: L1 = 1 - area rho K / raw; L2 = a(eta bin centre) + B / (raw L1), a = 1.10 + 0.04 |centre|
    l1 = np.maximum(1e-4, 1 - area * rho * 0.85 / raw)
    edges = np.linspace(-5.2, 5.2, 27)
    centre = 0.5 * (edges[1:] + edges[:-1])[np.clip(np.searchsorted(edges, eta, side="right") - 1, 0, 25)]
    l2 = 1.10 + 0.04 * np.abs(centre) + 3.0 / (raw * l1)
    np.testing.assert_allclose(got, l1 * l2, rtol=1e-10)
    # and the generator's rawFactor inverts it
    pt = rng.uniform(16, 400, 300)
    rf = cal.raw_factor(pt, eta, area, rho)
    np.testing.assert_allclose(pt * (1 - rf) * comp.evaluate(area, eta, pt * (1 - rf), rho), pt, rtol=1e-9)


def test_jes_total_is_the_quadrature_sum_of_sources_and_other(files):
    c = _cset(files / "jet_jerc.json.gz")
    eta, pt = 1.1, 55.0
    src = [c[f"Synth18_V1_MC_Regrouped_{s}_AK4PFchs"].evaluate(eta, pt) for s in cal.JES_SOURCES]
    total = c["Synth18_V1_MC_Total_AK4PFchs"].evaluate(eta, pt)
    assert total == pytest.approx(np.sqrt(np.sum(np.square(src)) + cal.JES_OTHER ** 2), rel=1e-12)


def test_jer_smear_is_reproducible_and_follows_the_hybrid_formula(files):
    c = _cset(files / "jet_jerc.json.gz")
    smear = c["JERSmear"]
    doc = _doc(files / "jet_jerc.json.gz")
    node = next(x for x in doc["corrections"] if x["name"] == "JERSmear")["data"]
    assert node["content"][0]["rule"]["nodetype"] == "hashprng"
    args = {"JetPt": 50.0, "JetEta": 0.3, "Rho": 20.0, "Run": 1, "LumiBlock": 3, "EventID": 2001, "JetIndex": 2,
            "JER": 0.18, "JERSF": 1.1}
    order = [v.name for v in smear.inputs]

    def ev(**kw):
        a = {**args, **kw}
        return smear.evaluate(*[a[n] for n in order])
    matched = ev(GenPt=45.0)
    assert matched == pytest.approx(1 + (1.1 - 1) * (50 - 45) / 50)
    u1, u2 = ev(GenPt=-1.0), ev(GenPt=-1.0)
    assert u1 == u2 != 1.0                                 # same keys, same bits
    assert ev(GenPt=-1.0, JetIndex=3) != u1                # another jet, another number
    assert ev(GenPt=-1.0, JetPt=80.0) == pytest.approx(u1)  # pT is not a key: JES-shifted passes reuse it
    z = (u1 - 1) / (0.18 * np.sqrt(1.1 ** 2 - 1))           # the standard normal behind it
    assert ev(GenPt=-1.0, JERSF=1.2) == pytest.approx(1 + z * 0.18 * np.sqrt(1.2 ** 2 - 1))
    zs = np.array([(smear.evaluate(*[{**args, "GenPt": -1.0, "EventID": i}[n] for n in order]) - 1)
                   / (0.18 * np.sqrt(0.21)) for i in range(4000)])
    assert abs(zs.mean()) < 0.06 and abs(zs.std() - 1) < 0.05


def test_correction_files_are_reproducible(tmp_path, files):
    write_corrections(str(tmp_path), mismodel=1.0, sf_mismodel=1.0)
    for name in ("btagging.json.gz", "puWeights.json.gz", "jet_jerc.json.gz"):
        assert (tmp_path / name).read_bytes() == (files / name).read_bytes()
