"""Light-jet SF derivation (jetdask.scalefactors): formula, uncertainties, sources, export.

The toy samples here are hist objects with the axes of the DY study's ``sf_*`` histograms,
filled from jets drawn in the test: MC with b, c and light jets; data whose light jets are
reweighted in the discriminant by a known function, so the true SF of a cut is an integral
computed here with scipy, independently of the code under test.
"""
from __future__ import annotations

import json

import hist
import numpy as np
import pytest
from scipy import integrate, stats

from jetdask.engine.outputs import RunOutput
from jetdask.plotting.normalisation import normalisation
from jetdask.scalefactors import (
    derive,
    derive_shape,
    derive_wp,
    export,
    ratio,
    sources,
    workingpoints,
)
from jetdask.scalefactors.inputs import build_region

PT_EDGES = [20.0, 40.0, 80.0, 1000.0]
ETA_EDGES = [0.0, 1.2, 2.5]
FRACTIONS = {"light": 0.85, "c": 0.09, "b": 0.06}
SHAPES = {"light": (1.0, 8.0), "c": (2.0, 4.0), "b": (5.0, 1.5)}   # Beta(a, b) of the discriminant
SLOPES = (0.6, 1.2, 2.0)   # per pT bin: data light density ~ (1 + slope * d) x MC's
XSEC = 100.0


def book(syst=("nominal",)):
    return (hist.Hist.new.StrCat(list(syst), name="syst").StrCat(["mumu", "ee"], name="channel")
            .StrCat(["b", "c", "light", "data"], name="flavour").Var(PT_EDGES, name="pt")
            .Var(ETA_EDGES, name="abseta").Reg(20, 0, 1, name="discriminant").Weight())


def draw_jets(rng, n, data: bool):
    """pt, abseta, flavour, discriminant of n jets; data light jets reweighted by (1 + slope d)."""
    flav = rng.choice(list(FRACTIONS), size=n, p=list(FRACTIONS.values()))
    pt = 20.0 + rng.exponential(30.0, n)
    eta = rng.uniform(0, 2.5, n)
    disc = np.empty(n)
    for f, (a, b) in SHAPES.items():
        m = flav == f
        disc[m] = rng.beta(a, b, m.sum())
    if data:
        light = np.flatnonzero(flav == "light")
        slope = np.asarray(SLOPES)[np.digitize(pt[light], PT_EDGES[1:-1])]
        # replace each light jet by one drawn from the reweighted density (accept-reject)
        for i, s in zip(light, slope):
            while True:
                d = rng.beta(*SHAPES["light"])
                if rng.uniform(0, 1 + s) < 1 + s * d:
                    disc[i] = d
                    break
    return pt, eta, flav, disc


def true_sf(cut: float, slope: float) -> float:
    """E[1 + s d | d > cut] / E[1 + s d] under the MC light density (Beta(1, 8))."""
    f = stats.beta(*SHAPES["light"]).pdf
    def w(d):
        return (1 + slope * d) * f(d)
    above = integrate.quad(w, cut, 1)[0] / integrate.quad(f, cut, 1)[0]
    return above / integrate.quad(w, 0, 1)[0]


def toy_run(seed=1, n_mc=60_000, n_data=30_000, syst=("nominal",), variations=None, empty_pt_bin=None):
    """In-memory RunOutput with MC and data ``sf_toy_BvsL`` histograms and its metadata.

    ``variations``: {syst: (weight function of (pt, disc, flav))} for the MC."""
    rng = np.random.default_rng(seed)
    hists = {}
    for ds, n, is_data in (("MC", n_mc, False), ("Data", n_data, True)):
        h = book(syst if not is_data else ("nominal",))
        pt, eta, flav, disc = draw_jets(rng, n, is_data)
        if is_data and empty_pt_bin is not None:
            keep = np.digitize(pt, PT_EDGES[1:-1]) != empty_pt_bin
            pt, eta, flav, disc = pt[keep], eta[keep], flav[keep], disc[keep]
        ch = np.where(rng.uniform(size=len(pt)) < 0.5, "mumu", "ee")
        for s in (syst if not is_data else ("nominal",)):
            w = np.ones(len(pt)) if s == "nominal" or not variations else variations[s](pt, disc, flav)
            h.fill(syst=s, channel=ch, flavour="data" if is_data else flav, pt=pt, abseta=eta, discriminant=disc,
                   weight=w)
        hists[ds] = {"sf_toy_BvsL": h}
    out = RunOutput(hists, {"MC": {"sumw": float(n_mc)}, "Data": {}}, {},
                    {"MC": {"complete": True}, "Data": {"complete": True}}, {}, [], "")
    md = {"MC": {"is_data": False, "xsec": XSEC}, "Data": {"is_data": True, "lumi": n_data / XSEC}}
    return out, md


def _region(out, md, channel="all"):
    return build_region(out.hists, "sf_toy_BvsL", normalisation(out, md), channel)


# -- the formula ------------------------------------------------------------------------------

def _pieces(dt, du, nt, nu, lt, lu, var=None):
    v = {"dt": dt, "du": du, "nt": nt, "nu": nu, "lt": lt, "lu": lu}
    return ratio.Pieces({k: np.asarray([x], float) for k, x in v.items()},
                        {k: np.asarray([x if var is None else var[k]], float) for k, x in v.items()})


@pytest.mark.parametrize("norm, expected", [
    # data 30 tagged / 70 untagged; MC non-light 15 / 15, light 10 / 60: MC total 100 = data total
    ("pretag", (30 - 15) / 10),
    ("lumi", (30 - 15) / 10),
])
def test_sf_by_hand_equal_yields(norm, expected):
    r = ratio.ratio(_pieces(30, 70, 15, 15, 10, 60), norm)
    assert r.sf[0] == pytest.approx(expected)


def test_sf_by_hand_pretag_rescales_mc():
    # MC has twice the data yield: pretag halves it before subtracting; lumi does not
    p = _pieces(30, 70, 30, 30, 20, 120)
    assert ratio.ratio(p, "pretag").sf[0] == pytest.approx((30 - 0.5 * 30) / (0.5 * 20))
    assert ratio.ratio(p, "lumi").sf[0] == pytest.approx((30 - 30) / 20)


@pytest.mark.parametrize("norm", ["pretag", "lumi"])
def test_stat_uncertainty_matches_poisson_toys(norm):
    """The propagated data and MC uncertainties equal the spread of the SF over Poisson toys."""
    rng = np.random.default_rng(5)
    mean = {"dt": 400.0, "du": 3600.0, "nt": 150.0, "nu": 350.0, "lt": 200.0, "lu": 3300.0}
    r = ratio.ratio(_pieces(**mean), norm)
    n = 20_000
    for part, keys in (("data", ("dt", "du")), ("mc", ("nt", "nu", "lt", "lu"))):
        toy = {k: (rng.poisson(v, n).astype(float) if k in keys else np.full(n, v)) for k, v in mean.items()}
        spread = np.std(ratio.scale_factor(toy, norm))
        got = r.stat_data[0] if part == "data" else r.stat_mc[0]
        assert got == pytest.approx(spread, rel=0.05), part


def test_undefined_bins_are_flagged_not_raised():
    r = ratio.ratio(_pieces(0, 0, 1, 2, 3, 4), "pretag")
    assert not r.defined[0] and r.no_data[0] and np.isnan(r.sf[0])
    r = ratio.ratio(_pieces(5, 5, 1, 2, 0, 4), "pretag")
    assert not r.defined[0] and r.no_light[0]


def test_split_and_one_bin_place_the_flows():
    v = np.array([1.0, 2, 3, 4, 5, 6])   # underflow, 4 bins, overflow
    (t, _), (u, _) = ratio.split(v, v, 2)   # cut at edge 2: bins 2, 3 and overflow
    assert (t, u) == (4 + 5 + 6, 1 + 2 + 3)
    assert ratio.one_bin(v, v, 0)[0][0] == 1 + 2        # underflow with the first bin
    assert ratio.one_bin(v, v, 3)[0][0] == 5 + 6        # overflow with the last
    assert ratio.one_bin(v, v, 1)[0][0] == 3 and ratio.one_bin(v, v, 1)[1][0] == 21 - 3


# -- sources ----------------------------------------------------------------------------------

@pytest.mark.parametrize("members, up, down", [
    ([+0.1, -0.2], 0.1, 0.2),          # opposite sides
    ([+0.1, +0.3], 0.3, 0.0),          # both up: one-sided
    ([-0.1], 0.0, 0.1),                # a single member
    ([0.05, -0.02, 0.2, -0.3, 0.0, 0.1], 0.2, 0.3),   # envelope
])
def test_source_shift(members, up, down):
    u, d = sources.source_shift([np.array(m) for m in members])
    assert (float(u), float(d)) == pytest.approx((up, down))


def test_groups_add_in_quadrature_and_stat_is_a_group():
    src = [sources.Source("a", "g1", ("a_up", "a_down")), sources.Source("b", "g1", ("b_up", "b_down")),
           sources.Source("mu", "theory", tuple(f"mu{i}" for i in range(6)), "envelope")]
    shifts = {"a": [np.array(0.3), np.array(-0.3)], "b": [np.array(0.4), np.array(-0.1)],
              "mu": [np.array(x) for x in (0.1, -0.05, 0.2, 0, 0, -0.12)]}
    bd = sources.combine(shifts, src, {"data": np.array(0.6), "mc": np.array(0.8)})
    assert list(bd.groups) == ["statistic", "g1", "theory"]
    assert float(bd.groups["g1"][0]) == pytest.approx(0.5)                 # 0.3 (+) 0.4
    assert float(bd.groups["g1"][1]) == pytest.approx(np.hypot(0.3, 0.1))
    assert float(bd.groups["statistic"][0]) == pytest.approx(1.0)
    assert float(bd.up) == pytest.approx(np.sqrt(1 + 0.25 + 0.04))
    assert float(bd.down) == pytest.approx(np.sqrt(1 + 0.1 + 0.0144))


@pytest.mark.parametrize("axis, expected", [
    (["nominal", "pu_up", "pu_down"], [("pu", ("pu_up", "pu_down"))]),
    (["nominal", "jesUp", "jesDown", "x"], [("jes", ("jesUp", "jesDown")), ("x", ("x",))]),
    (["nominal", "jes_Abs_up", "jes_Abs_down"], [("jes_Abs", ("jes_Abs_up", "jes_Abs_down"))]),
])
def test_sources_from_axis(axis, expected):
    assert [(s.name, s.members) for s in sources.sources_from_axis(axis)] == expected


def test_registry_sources_envelope_and_components():
    from jetdask.scalefactors.registry import sources_for
    axis = ["nominal", "pileupUp", "pileupDown", "muRUp", "muRDown", "muFUp", "muFDown", "muRmuFUp", "muRmuFDown",
            "jesTotalUp", "jesTotalDown", "jesAbsoluteUp", "jesAbsoluteDown", "private_up", "private_down"]
    got = {s.name: s for s in sources_for(axis)}
    assert list(got) == ["pileup", "scale", "jesTotal", "jesAbsolute", "private"]
    assert got["scale"].combine == "envelope" and len(got["scale"].members) == 6 and got["scale"].group == "theory"
    assert got["jesTotal"].in_total and not got["jesAbsolute"].in_total and got["jesAbsolute"].group == "jes"
    assert got["private"].members == ("private_up", "private_down") and got["private"].group == "private"
    # a component is reported per source, not added to its group or the total
    shifts = {"jesTotal": [np.array(0.3), np.array(-0.3)], "jesAbsolute": [np.array(0.4), np.array(-0.4)]}
    bd = sources.combine(shifts, list(got.values()))
    assert float(bd.up) == pytest.approx(0.3) and float(bd.sources["jesAbsolute"][0]) == pytest.approx(0.4)


@pytest.mark.parametrize("expected, ids", [
    ([20, 12, 5, 3, 1, 1], [0, 1, 2, 2, 2, 2]),        # the open top (1 + 1) joins the last group (5 + 3)
    ([20, 12, 5, 6, 1, 9], [0, 1, 2, 2, 4, 4]),
    ([3, 3, 3, 3], [0, 0, 0, 0]),                      # never 10: one group
    ([0, 0, 0], [0, 0, 0]),
    ([50, 50, 50], [0, 1, 2]),                         # nothing merged
])
def test_shape_bins_grow_upwards_until_ten_expected(expected, ids):
    from jetdask.scalefactors import shapebins
    assert list(shapebins.groups_1d(expected, 10)) == ids


def test_merged_shape_bins_share_one_sf():
    out, md = toy_run(seed=33, n_mc=6000, n_data=3000)
    reg = _region(out, md)
    t = derive_shape(reg)
    assert t.merged.any() and not t.merged[..., 0].any()             # the populated low bins stand alone
    for ie, ip in np.ndindex(t.central.shape[:2]):
        m = t.merged[ie, ip]
        if m.any():       # the merged bins of a (pT, |eta|) bin form groups at the top, each with one value
            values = t.central[ie, ip][m]
            assert len(set(values[np.isfinite(values)].tolist())) < m.sum()
    assert not derive_shape(reg, min_expected=0).merged.any()


# -- working points ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [("L:0.1,M:0.5,T:0.9", {"L": 0.1, "M": 0.5, "T": 0.9}),
                                            (" M:0.3 ", {"M": 0.3})])
def test_parse_wps(text, expected):
    assert workingpoints.parse(text) == expected


@pytest.mark.parametrize("text", ["L=0.1", "L:x", "", ":0.3"])
def test_parse_wps_refuses(text):
    from jetdask.errors import ConfigError
    with pytest.raises(ConfigError):
        workingpoints.parse(text)


@pytest.mark.parametrize("cut, used, noted", [(0.5, 0.5, False), (0.2783, 0.3, True), (0.0494, 0.05, True)])
def test_snap_to_edges(cut, used, noted):
    wp = workingpoints.snap("M", cut, np.linspace(0, 1, 21), "given")
    assert wp.used == pytest.approx(used) and (wp.note is not None) == noted


def test_wps_from_mistag_rates():
    # light counts with flow: 0 underflow; 100 jets in 10 bins: 90, 5, 3, 1, 1, 0...; no overflow
    v = np.array([0, 90, 5, 3, 1, 1, 0, 0, 0, 0, 0, 0], float)
    cuts = workingpoints.from_mistag_rates(v, np.linspace(0, 1, 11), {"L": 0.1, "M": 0.02, "T": 0.001})
    assert cuts == pytest.approx({"L": 0.1, "M": 0.3, "T": 0.5})


# -- derivation on toys -----------------------------------------------------------------------

def test_region_sums_channels_and_scales_mc():
    out, md = toy_run(n_mc=4000, n_data=2000)
    r = _region(out, md)
    assert r.data.values.sum() == 2000                                 # every data jet, both channels
    scale = XSEC * (2000 / XSEC) / 4000
    assert (r.light["nominal"].values.sum() + r.nonlight["nominal"].values.sum()) == pytest.approx(4000 * scale)
    mm = _region(out, md, "mumu")
    assert 0 < mm.data.values.sum() < 2000


def test_wp_sf_recovers_the_injected_one():
    out, md = toy_run(seed=3, n_mc=200_000, n_data=100_000)
    reg = _region(out, md)
    wps, _ = workingpoints.resolve({"L": 0.1, "M": 0.3}, reg.disc_edges, "given")
    t = derive_wp(reg.eta_inclusive(), wps)
    for iw, wp in enumerate(wps):
        for ip, slope in enumerate(SLOPES):
            truth = true_sf(wp.used, slope)
            pull = (t.central[iw, 0, ip] - truth) / np.hypot(t.stat["data"][iw, 0, ip], t.stat["mc"][iw, 0, ip])
            assert abs(pull) < 4, (wp.name, ip, t.central[iw, 0, ip], truth)
            assert truth > 1.04   # the test has power: the injected SF is far from 1


def test_pulls_over_seeds_are_standard_normal():
    """Hist-level pull test: 8 seeds x 3 pT bins x 2 WPs; mean within 0.3, width within 0.7-1.3."""
    pulls = []
    for seed in range(8):
        out, md = toy_run(seed=100 + seed, n_mc=40_000, n_data=20_000)
        reg = _region(out, md).eta_inclusive()
        wps, _ = workingpoints.resolve({"L": 0.1, "M": 0.3}, reg.disc_edges, "given")
        t = derive_wp(reg, wps)
        for iw, wp in enumerate(wps):
            for ip, slope in enumerate(SLOPES):
                sigma = np.hypot(t.stat["data"][iw, 0, ip], t.stat["mc"][iw, 0, ip])
                pulls.append((t.central[iw, 0, ip] - true_sf(wp.used, slope)) / sigma)
    pulls = np.array(pulls)
    assert abs(pulls.mean()) < 0.3 and 0.7 < pulls.std() < 1.3, pulls


def test_shape_sf_keeps_the_light_yield_and_matches_truth():
    out, md = toy_run(seed=4, n_mc=100_000, n_data=50_000)
    reg = _region(out, md)
    t = derive_shape(reg)
    lt = reg.light["nominal"]
    per_bin = np.stack([ratio.one_bin(lt.values, lt.variances, i)[0][0] for i in range(20)], axis=-1)
    ok = t.defined.all(-1)
    total = np.where(ok, (per_bin * np.nan_to_num(t.central)).sum(-1), 0)
    np.testing.assert_allclose(total[ok], lt.values.sum(-1)[ok], rtol=1e-9)
    # in the low pT bin the truth of bin [0, 0.05) is (1 + s <d>_bin) / (1 + s <d>)
    f = stats.beta(*SHAPES["light"])
    s = SLOPES[0]
    mean_bin = integrate.quad(lambda d: d * f.pdf(d), 0, 0.05)[0] / (f.cdf(0.05))
    truth = (1 + s * mean_bin) / (1 + s * f.mean())
    sig = np.hypot(t.stat["data"][:, 0, 0], t.stat["mc"][:, 0, 0])
    assert np.all(np.abs(t.central[:, 0, 0] - truth) < 4 * sig)


def test_variations_rederive_the_sf():
    """A variation scaling MC light jets above 0.3 by 1.1 moves the SF of that cut down by 1/1.1."""
    var = {"lf_up": lambda pt, d, f: np.where((f == "light") & (d >= 0.3), 1.1, 1.0),
           "lf_down": lambda pt, d, f: np.where((f == "light") & (d >= 0.3), 1 / 1.1, 1.0),
           "flat_up": lambda pt, d, f: np.full(len(pt), 1.2)}
    out, md = toy_run(seed=6, n_mc=20_000, n_data=10_000, syst=("nominal", "lf_up", "lf_down", "flat_up"),
                      variations=var)
    reg = _region(out, md).eta_inclusive()
    wps, _ = workingpoints.resolve({"M": 0.3}, reg.disc_edges, "given")
    srcs = [sources.Source("lf", "b-tag", ("lf_up", "lf_down")), sources.Source("flat", "norm", ("flat_up",))]
    t = derive_wp(reg, wps, srcs, norm="lumi")
    up, down = t.breakdown.sources["lf"]
    reg_n = reg.nonlight["nominal"]
    (nt, _), _ = ratio.split(reg_n.values, reg_n.variances, wps[0].index)
    (dt, _), _ = ratio.split(reg.data.values, reg.data.variances, wps[0].index)
    (lt, _), _ = ratio.split(reg.light["nominal"].values, reg.light["nominal"].values, wps[0].index)
    sf = (dt - nt) / lt
    np.testing.assert_allclose(t.central[0], sf)
    np.testing.assert_allclose(down[0], sf - (dt - nt) / (1.1 * lt))
    np.testing.assert_allclose(up[0], (dt - nt) / (lt / 1.1) - sf)
    # a flat MC weight changes the lumi-normalised SF but cancels with the pre-tag normalisation
    assert np.all(t.breakdown.sources["flat"][1][0] > 0)
    t2 = derive_wp(reg, wps, srcs, norm="pretag")
    np.testing.assert_allclose(t2.breakdown.sources["flat"][0], 0, atol=1e-12)
    np.testing.assert_allclose(t2.breakdown.sources["flat"][1], 0, atol=1e-12)


# -- the run API and the export ---------------------------------------------------------------

def test_empty_bin_is_noted_and_exported_as_one_plus_minus_one(tmp_path):
    import correctionlib
    out, md = toy_run(seed=2, n_mc=20_000, n_data=10_000, empty_pt_bin=2)
    res = derive(out, metadata=md, wps={"toy": "L:0.1,M:0.3"})
    t = res.table("toy")
    assert not t.defined[:, :, 2].any() and t.defined[:, :, :2].all()
    assert any("pT 80-1000 GeV: no data" in n for n in res.notes)
    path = res.write(str(tmp_path / "sf.json"))
    c = correctionlib.CorrectionSet.from_file(path)["toy_incl"]
    assert c.evaluate("central", "M", 0, 0.5, 500.0) == 1.0
    assert c.evaluate("up", "M", 0, 0.5, 500.0) == 2.0 and c.evaluate("down", "M", 0, 0.5, 500.0) == 0.0


def _centres(edges):
    e = np.asarray(edges, float)
    return 0.5 * (e[:-1] + e[1:])


def test_export_reads_back_exactly(tmp_path):
    """Every bin and systematic of the JSON, evaluated by correctionlib, equals the derived number."""
    import correctionlib
    var = {"jes_up": lambda pt, d, f: 1 + 0.001 * pt, "jes_down": lambda pt, d, f: 1 - 0.001 * pt}
    out, md = toy_run(seed=8, n_mc=20_000, n_data=10_000, syst=("nominal", "jes_up", "jes_down"), variations=var)
    res = derive(out, metadata=md, wps={"toy": {"L": 0.1, "M": 0.3, "T": 0.7}})
    path = res.write(str(tmp_path / "sf.json.gz"))
    cset = correctionlib.CorrectionSet.from_file(path)
    assert sorted(cset) == ["toy_incl", "toy_shape", "toy_wp_values"]
    wp_t, shape_t = res.table("toy"), res.table("toy", kind="shape")
    incl, shape = cset["toy_incl"], cset["toy_shape"]
    assert [v.name for v in incl.inputs] == ["systematic", "working_point", "flavor", "abseta", "pt"]
    assert [v.name for v in shape.inputs] == ["systematic", "flavor", "abseta", "pt", "discriminant"]
    vals = export.systematic_values(wp_t)
    assert {"central", "up", "down", "up_correlated", "down_uncorrelated", "up_statistic", "down_jes"} <= set(vals)
    eta, pt = np.meshgrid(_centres(ETA_EDGES), _centres(PT_EDGES), indexing="ij")
    for s, arr in vals.items():
        for iw, wp in enumerate(wp_t.wps):
            got = incl.evaluate(s, wp.name, np.zeros(eta.size, dtype=int), eta.ravel(), pt.ravel())
            assert np.array_equal(got, arr[iw].ravel()), (s, wp.name)
    # the file holds the derived numbers to 15 significant digits
    d = wp_t.defined
    assert np.array_equal(vals["central"][d], wp_t.central[d])
    np.testing.assert_allclose(vals["up"][d], wp_t.central[d] + wp_t.up[d], rtol=1e-14, atol=0)
    assert all(len(repr(float(x)).replace("-", "").replace(".", "").lstrip("0")) <= 15 for x in vals["up"].ravel())
    for wp in wp_t.wps:
        assert cset["toy_wp_values"].evaluate(wp.name) == wp.used
    svals = export.systematic_values(shape_t)
    e3, p3, d3 = np.meshgrid(_centres(ETA_EDGES), _centres(PT_EDGES), _centres(np.linspace(0, 1, 21)), indexing="ij")
    for s, arr in svals.items():
        got = shape.evaluate(s, np.zeros(e3.size, dtype=int), e3.ravel(), p3.ravel(), d3.ravel())
        assert np.array_equal(got, arr.ravel()), s
    # the official light-jet names: lf = the systematic part, lfstats1 = the statistical part
    for alias, part in (("lf", "correlated"), ("lfstats1", "uncorrelated")):
        for side in ("up", "down"):
            got = shape.evaluate(f"{side}_{alias}", np.zeros(e3.size, dtype=int), e3.ravel(), p3.ravel(), d3.ravel())
            assert np.array_equal(got, svals[f"{side}_{part}"].ravel())
    # the -1 default of an undefined score reads the first discriminant bin (clamp)
    assert shape.evaluate("central", 0, 0.5, 30.0, -1.0) == svals["central"][0, 0, 0]
    # b and c jets: central 1 only; a variation on them raises, as in the official files
    assert shape.evaluate("central", 5, 0.5, 30.0, 0.9) == 1.0
    with pytest.raises(IndexError):
        shape.evaluate("up", 4, 0.5, 30.0, 0.9)
    with pytest.raises(IndexError):
        incl.evaluate("central", "M", 5, 0.5, 30.0)


def test_summary_is_json(tmp_path):
    from jetdask.scalefactors import summary
    out, md = toy_run(seed=9, n_mc=5000, n_data=2500)
    res = derive(out, metadata=md)
    d = json.loads(json.dumps(summary(res)))
    assert d["wp"] and d["shape"] and d["wp"][0]["working_points"][0]["origin"] == "MC light mistag rate"


def test_bins_measured_worse_than_100_percent_are_not_exported():
    """A tight cut on a small sample: bins whose statistical uncertainty exceeds 1 keep their numbers in
    the table but are written as 1 +- 1, with the reason."""
    out, md = toy_run(seed=31, n_mc=3000, n_data=1500)
    res = derive(out, metadata=md, wps={"toy": "M:0.3,T:0.6"})
    t = res.table("toy")
    sigma = np.hypot(t.stat["data"], t.stat["mc"])
    bad = np.isfinite(sigma) & (sigma > 1)
    assert bad.any() and not t.defined[bad].any() and np.isfinite(t.central[bad]).all()
    assert (t.defined == (np.isfinite(sigma) & (sigma <= 1))).all()
    i = tuple(np.argwhere(bad)[0])
    assert t.why_undefined(i) == "stat > 100%"
    vals = export.systematic_values(t)
    assert vals["central"][i] == 1.0 and vals["up"][i] == 2.0 and vals["down"][i] == 0.0
    assert "with a statistical uncertainty above 100%" in t.undefined_note()
    assert any("statistical uncertainty above 100%; SF set to 1 +- 1" in n for n in t.notes)
