"""Method 1a fixed-WP event weights and the MC efficiencies they need, against hand computations.

The efficiency and SF files of the hand computations are written here with
correctionlib.schemav2 (numbers chosen in the test), not by the code under test.
"""
from __future__ import annotations

import correctionlib
import correctionlib.schemav2 as cs
import numpy as np
import pytest

from jetdask.scalefactors import efficiency
from jetdask.scalefactors.weights import Method1a
from test_scalefactors import toy_run

EFF = {("L", 0): 0.10, ("M", 0): 0.02, ("L", 4): 0.40, ("M", 4): 0.15, ("L", 5): 0.90, ("M", 5): 0.70}
SF = {("central", "L", 0): 1.10, ("central", "M", 0): 1.30, ("up", "M", 0): 1.40, ("up", "L", 0): 1.15,
      ("central", "L", 4): 0.97, ("central", "M", 4): 0.90, ("central", "L", 5): 0.98, ("central", "M", 5): 0.95,
      ("up", "L", 4): 1.0, ("up", "M", 4): 1.0, ("up", "L", 5): 1.0, ("up", "M", 5): 1.0}


def _cat(name, items):
    return cs.Category(nodetype="category", input=name, content=[cs.CategoryItem(key=k, value=v) for k, v in items])


def _flat(value):   # one (abseta, pt) bin: a constant everywhere (clamped)
    return cs.MultiBinning(nodetype="multibinning", inputs=["abseta", "pt"], edges=[[0.0, 2.5], [20.0, 1000.0]],
                           content=[value], flow="clamp")


def _files(tmp_path):
    eff = cs.Correction(name="eff", version=1, output=cs.Variable(name="efficiency", type="real"),
                        inputs=[cs.Variable(name=n, type=t) for n, t in
                                (("working_point", "string"), ("flavor", "int"), ("abseta", "real"), ("pt", "real"))],
                        data=_cat("working_point", [(wp, _cat("flavor", [(f, _flat(EFF[(wp, f)])) for f in (0, 4, 5)]))
                                                    for wp in ("L", "M")]))
    sf_inputs = [cs.Variable(name=n, type=t) for n, t in (("systematic", "string"), ("working_point", "string"),
                                                          ("flavor", "int"), ("abseta", "real"), ("pt", "real"))]

    def sf(name, flavours):
        return cs.Correction(name=name, version=1, output=cs.Variable(name="weight", type="real"), inputs=sf_inputs,
                             data=_cat("systematic", [(s, _cat("working_point", [
                                 (wp, _cat("flavor", [(f, _flat(SF[(s, wp, f)])) for f in flavours]))
                                 for wp in ("L", "M")])) for s in ("central", "up")]))
    path = tmp_path / "sf.json"
    path.write_text(cs.CorrectionSet(schema_version=2, corrections=[eff, sf("light_incl", (0,)),
                                                                   sf("comb", (4, 5))]).model_dump_json(
        exclude_unset=True))
    c = correctionlib.CorrectionSet.from_file(str(path))
    return c["eff"], c["light_incl"], c["comb"]


# three events: [light 0.6, b 0.2], [], [light 0.0, c 0.8, light 0.3]
COUNTS = [2, 0, 3]
FLAV = [0, 5, 0, 4, 0]
DISC = [0.6, 0.2, 0.0, 0.8, 0.3]
PT = [45.0, 80.0, 25.0, 33.0, 120.0]
ETA = [0.4, 1.9, 2.2, 0.1, 1.0]


def test_one_wp_by_hand(tmp_path):
    eff, light, heavy = _files(tmp_path)
    w = Method1a({"M": 0.5}, eff, light, heavy).event_weights(COUNTS, FLAV, PT, ETA, DISC, systematics=("up",))
    # event 0: light tagged -> SF; b untagged -> (1 - SF eps) / (1 - eps)
    e0 = 1.30 * (1 - 0.95 * 0.70) / (1 - 0.70)
    # event 2: light untagged, c tagged, light untagged
    e2 = (1 - 1.30 * 0.02) / (1 - 0.02) * 0.90 * (1 - 1.30 * 0.02) / (1 - 0.02)
    np.testing.assert_allclose(w["nominal"], [e0, 1.0, e2], rtol=1e-12)
    # light variation: light jets take the up SF, b and c keep their central one
    e0_up = 1.40 * (1 - 0.95 * 0.70) / (1 - 0.70)
    e2_up = (1 - 1.40 * 0.02) / (1 - 0.02) * 0.90 * (1 - 1.40 * 0.02) / (1 - 0.02)
    np.testing.assert_allclose(w["light_up"], [e0_up, 1.0, e2_up], rtol=1e-12)
    # heavy variation: SF 1 for b and c, light central
    np.testing.assert_allclose(w["bc_up"], [1.30 * 1.0, 1.0, (1 - 1.30 * 0.02) ** 2 / 0.98 ** 2 * 1.0], rtol=1e-12)


def test_two_wps_exclusive_bins_by_hand(tmp_path):
    eff, light, heavy = _files(tmp_path)
    m = Method1a({"M": 0.5, "L": 0.1}, eff, light, heavy)
    assert m.wps == ["L", "M"] and list(m.category(DISC)) == [2, 1, 0, 2, 1]
    w = m.event_weights(COUNTS, FLAV, PT, ETA, DISC, variations=False)["nominal"]
    light_t = 1.30                                                 # above M
    b_lm = (0.98 * 0.90 - 0.95 * 0.70) / (0.90 - 0.70)            # between L and M
    light_0 = (1 - 1.10 * 0.10) / (1 - 0.10)                       # below L
    c_t = 0.90
    light_lm = (1.10 * 0.10 - 1.30 * 0.02) / (0.10 - 0.02)
    np.testing.assert_allclose(w, [light_t * b_lm, 1.0, light_0 * c_t * light_lm], rtol=1e-12)


def test_without_heavy_sf_b_and_c_are_one(tmp_path):
    eff, light, _ = _files(tmp_path)
    w = Method1a({"M": 0.5}, eff, light).event_weights(COUNTS, FLAV, PT, ETA, DISC, systematics=("up",))
    assert "bc_up" not in w
    np.testing.assert_allclose(w["nominal"], [1.30, 1.0, ((1 - 1.30 * 0.02) / 0.98) ** 2], rtol=1e-12)


def test_efficiencies_from_a_pass_read_back(tmp_path):
    """eps written with from_histogram equals tagged / all of the pass's MC light, c, b jets."""
    out, md = toy_run(seed=21, n_mc=20_000, n_data=5_000)
    effs = efficiency.efficiencies(out, "sf_toy_BvsL", {"L": 0.1, "M": 0.3}, metadata=md)
    assert [e.dataset for e in effs] == ["MC"]
    path = efficiency.write(effs, "toy", str(tmp_path / "eff.json"))
    c = correctionlib.CorrectionSet.from_file(path)["toy_eff_MC"]
    assert [v.name for v in c.inputs] == ["working_point", "flavor", "abseta", "pt"]
    h = out.hists["MC"]["sf_toy_BvsL"][{"syst": "nominal", "channel": sum}]
    for fl, code in (("light", 0), ("c", 4), ("b", 5)):
        hf = h[{"flavour": fl}]
        for wp, cut in (("L", 0.1), ("M", 0.3)):
            # pT bin 0 (20-40 GeV), |eta| bin 1 (1.2-2.5); discriminant bin edges 0.05 wide
            cell = hf[{"pt": 0, "abseta": 1}]
            above = cell.values(flow=True)[1 + round(cut / 0.05):].sum()
            expected = min(above / cell.values(flow=True).sum(), 1 - 1e-6)   # kept below 1: 1 - eps > 0
            assert c.evaluate(wp, code, 2.0, 30.0) == pytest.approx(expected, rel=1e-12)
    # a 1a weight with SF = 1 everywhere is exactly 1
    sf_one = cs.Correction(name="one", version=1, output=cs.Variable(name="weight", type="real"),
                           inputs=[cs.Variable(name=n, type=t) for n, t in (
                               ("systematic", "string"), ("working_point", "string"), ("flavor", "int"),
                               ("abseta", "real"), ("pt", "real"))], data=1.0)
    one = correctionlib.CorrectionSet.from_string(cs.CorrectionSet(schema_version=2, corrections=[sf_one])
                                                  .model_dump_json(exclude_unset=True))["one"]
    w = Method1a({"L": 0.1, "M": 0.3}, c, one, one).event_weights(COUNTS, FLAV, PT, ETA, DISC, systematics=("up",))
    for v in w.values():
        np.testing.assert_allclose(v, 1.0, rtol=1e-12)
