"""The figure rules as pure functions, table by table (no figure, no run)."""
from __future__ import annotations

import hist
import numpy as np
import pytest

from jetdask.errors import ConfigError
from jetdask.plotting.cutflow import cutflow_numbers, dataset_channels
from jetdask.plotting.hists import fold, prepare, with_flow
from jetdask.plotting.labels import label_text, p_text, tagger_label, xlabel_for
from jetdask.plotting.layout import needed_top, y_limits
from jetdask.plotting.ratio import RATIO_CLAMP, ratio_range
from jetdask.plotting.run import default_pairs, paired_names


@pytest.mark.parametrize("mode, has_data, synthetic, text", [
    ("auto", True, False, "Private work"),
    (None, True, True, "Simulation Private work"),
    ("private", False, False, "Simulation Private work"),
    ("preliminary", True, False, "Preliminary"),
    ("preliminary", False, False, "Simulation Preliminary"),
    ("simulation", False, True, "Simulation"),
    ("wip", True, False, "Work in progress"),
])
def test_label_modes(mode, has_data, synthetic, text):
    assert label_text(mode, has_data, synthetic) == text


@pytest.mark.parametrize("mode, has_data, synthetic", [
    ("preliminary", True, True), ("preliminary", False, True), ("simulation", True, False), ("final", True, False)])
def test_label_modes_refused(mode, has_data, synthetic):
    with pytest.raises(ConfigError):
        label_text(mode, has_data, synthetic)


@pytest.mark.parametrize("p, text", [(0.4321, "p = 0.43"), (3.2e-4, "p = 3.2e-04"), (2e-10, "p = 2.0e-10"),
                                     (9e-11, "p < 1e-10"), (0.0, "p < 1e-10"), (None, "p = n/a")])
def test_p_values_never_zero(p, text):
    assert p_text(p) == text


@pytest.mark.parametrize("points, expected", [
    ([1.0, 1.02, 0.97], (0.9, 1.1)),            # within 3 %: the narrowest range
    ([1.42, 1.48, 0.9], (0.4, 1.6)),             # 0.48 x 1.1 = 0.53 -> 0.6: no point on the frame
    ([0.5, 0.66, 1.1], (0.4, 1.6)),              # low points visible, not on the bottom edge
    ([1.0, 3.5], RATIO_CLAMP),                   # clamped: 3.5 is drawn off-scale with its value
    ([np.nan, 1.05], (0.9, 1.1)),                # NaN (no MC) ignored
    ([], (0.9, 1.1)),
])
def test_ratio_range(points, expected):
    assert ratio_range(np.array(points, float)) == pytest.approx(expected)


def test_fold_flow_into_edge_bins():
    h = hist.Hist.new.Reg(4, 0, 4).Weight()
    h.fill([-1, -2, 0.5, 1.5, 2.5, 3.5, 7, 9, 9])
    t = with_flow(h)
    (v, e, w), flow = fold(t, mode="both")
    np.testing.assert_array_equal(v, [3, 1, 1, 4])
    assert (flow.under, flow.over) == (2, 3) and flow.axis_note() == "edge bins: + under/overflow"
    (v, _, _), flow = fold(t, mode="over")      # discriminants: the -1 of undefined scores is dropped
    np.testing.assert_array_equal(v, [1, 1, 1, 4])
    assert flow.axis_note() == "last bin: + overflow"
    (v, e, _), _ = fold(t, slice(1, 3), mode="both")   # cut to bins 1-2: the rest goes to the edges
    np.testing.assert_array_equal(v, [4, 5]) and np.testing.assert_array_equal(e, [1, 2, 3])
    assert v.sum() == h.values(flow=True).sum()


def test_inputs_cut_to_their_entries():
    h = hist.Hist.new.Reg(40, -10, 30).Weight()
    h.fill(np.r_[np.full(5, -3.5), np.full(20, 1.5), np.full(3, 12.5), [45.0]])
    data, mc, flow = prepare(with_flow(h), {"light": with_flow(h)}, crop=True)
    assert mc["light"][1][0] == -5 and mc["light"][1][-1] == 14       # one empty bin kept each side
    assert mc["light"][0].sum() == 29 and mc["light"][0][-1] == 1         # the overflow in the last bin
    assert flow.axis_note() == "last bin: + overflow"


@pytest.mark.parametrize("name, md, is_data, channels", [
    ("DoubleMuon", {}, True, ["mumu"]),
    ("SingleMuon", {}, True, ["mumu"]),
    ("EGamma", {}, True, ["ee"]),
    ("DoubleEG", {}, True, ["ee"]),
    ("MuonEG", {"channels": ["mumu", "ee"]}, True, ["ee", "mumu"]),
    ("Run2018A", {"channel": "ee"}, True, ["ee"]),
    ("Run2018A", {}, True, ["ee", "mumu"]),
    ("DYJetsToLL_M-50", {}, False, ["ee", "mumu"]),
])
def test_dataset_channels(name, md, is_data, channels):
    assert dataset_channels(name, md, is_data, ["ee", "mumu"]) == channels


def test_cutflow_drops_steps():
    h = hist.Hist.new.StrCat(["all", "lumi", "jets"], name="step").StrCat(["all", "mumu"], name="channel").Double()
    h.fill(step=["all"] * 4 + ["lumi"] * 4, channel="all")
    h.fill(step=["jets"] * 2, channel="mumu")
    nums = cutflow_numbers({"D": h}, drop_steps=("lumi",))["D"]
    assert nums == {"steps": ["all", "jets"], "total": [4.0, 2.0], "by_channel": {"mumu": [0.0, 2.0]}}


def test_headroom_rule_and_corner():
    edges = np.linspace(0, 1, 11)
    tops = np.array([1e4, 3e3, 1e3, 300, 100, 30, 10, 10, 10, 10])       # falling: the right corner is free
    right = needed_top(tops, edges, "upper right", 0.4, 0.4, lo=1.0, log=True)
    left = needed_top(tops, edges, "upper left", 0.4, 0.4, lo=1.0, log=True)
    assert right < left
    lo, hi, corners = y_limits([tops], 1e4, 1.0, True, [(0.4, 0.4)], [edges])
    assert corners == ["upper right"] and 1e4 < hi <= 1e5
    # a box that cannot fit within one decade goes outside; the top stays at most one decade up
    lo, hi, corners = y_limits([np.full(10, 1e4)], 1e4, 1.0, True, [(0.5, 0.5)], [edges])
    assert corners == ["outside"] and hi <= 1e5
    lo, hi, corners = y_limits([tops], 1e4, 0.0, False, [(0.4, 0.3)], [edges])
    assert corners == ["upper right"] and hi >= 1e4 * 1.05


def test_display_names_and_pairs():
    assert tagger_label("DeepJet") == "DeepJet (NanoAOD)"
    assert tagger_label("DeepJet_nominal@fgsm0.05") == r"DeepJet nominal (FGSM, $\epsilon$ = 0.05 inputs)"
    assert tagger_label("DeepJet_nominal@noise0.1", {"DeepJet_nominal": "nominal training"}) == \
        r"nominal training (noise, $\sigma$ = 0.1 inputs)"
    assert xlabel_for("DeepJet_nominal@fgsm0.05_BvsL") == "BvsL discriminant"
    assert default_pairs({"taggers": [{"name": "A", "source": "a"}, {"name": "B", "source": "b"}]}) == [("A", "B")]
    assert default_pairs({"taggers": [{"name": "A", "source": "a"}]}) == []
    names = ["A_BvsL", "B_BvsL", "A@fgsm0.1_BvsL", "B@fgsm0.1_BvsL", "A_CvsL", "AB_BvsL"]
    assert paired_names(names, [("A", "B")]) == [("A@fgsm0.1_BvsL", "B@fgsm0.1_BvsL", "A@fgsm0.1", "B@fgsm0.1"),
                                                 ("A_BvsL", "B_BvsL", "A", "B")]


def test_cli_pair_and_name_options():
    from jetdask.cli.plot import parse_names, parse_pairs

    assert parse_pairs(None) is None and parse_pairs(["none"]) == []
    assert parse_pairs(["A,B", "C, D"]) == [("A", "B"), ("C", "D")]
    assert parse_names(["DeepJet_nominal=DeepJet, nominal training"]) == \
        {"DeepJet_nominal": "DeepJet, nominal training"}
    for bad in (["A"], ["A,B,C"], ["A,"]):
        with pytest.raises(ConfigError):
            parse_pairs(bad)
    with pytest.raises(ConfigError):
        parse_names(["novalue"])


@pytest.mark.parametrize("channel, categories, text", [
    ("all", ["mumu", "ee"], r"$\mu\mu$ + ee"),
    ("all", ["ee"], "ee"),
    ("all", [], ""),                          # no channel axis: nothing about channels
    ("sum", ["emu", "all"], r"e$\mu$"),       # a booked "all" category is not a channel
    ("mumu", ["mumu", "ee"], r"$\mu\mu$"),
    ("4mu", ["4mu"], "4mu"),                  # unknown names as they are
])
def test_channel_text(channel, categories, text):
    from jetdask.plotting.labels import channel_text
    assert channel_text(channel, categories) == text


@pytest.mark.parametrize("name, kind", [("DeepJet_BvsL", "discriminant"), ("nominal@fgsm0.1_CvsL", "discriminant"),
                                        ("input_Jet_pt", "input"), ("mass", "variable"), ("Jet_pt", "variable"),
                                        ("cutflow", "cutflow")])
def test_kind_of(name, kind):
    from jetdask.plotting.hists import kind_of
    h = hist.Hist.new.Reg(3, 0, 1, name="value").Double() if kind != "cutflow" else \
        hist.Hist.new.StrCat(["all"], name="step").Double()
    assert kind_of(name, h) == kind
