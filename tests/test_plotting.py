"""Data/MC plots and the agreement summary on small hand-made run outputs (fast, no engine run)."""
from __future__ import annotations

import math
import os

import hist
import numpy as np
import pytest

from jetdask.engine.ledger import Ledger
from jetdask.engine.outputs import RunOutput, write
from jetdask.plotting import agreement, build_figures, chi2_sf, plot_datamc, plot_datamc_pair, plot_run
from readfiles import read_json

XSEC, LUMI, SUMW = 100.0, 2.0, 400.0          # pb, pb^-1, sum of genWeight -> MC scale 0.5
SCALE = XSEC * LUMI / SUMW
STEPS = ["all", "trigger", "two leptons", "jets"]


# -- helpers ---------------------------------------------------------------------------
def _h(bins=5, lo=0.0, hi=1.0, name="value", label="x", data_cat="data"):
    return (hist.Hist.new.StrCat(["mumu", "ee"], name="channel")
            .StrCat(["b", "c", "light", data_cat] if data_cat not in ("b", "c", "light") else ["b", "c", "light"],
                    name="flavour")
            .Reg(bins, lo, hi, name=name, label=label).Weight())


def _fill_mc(h, rng):
    for fl, n, a in (("b", 300, 4.0), ("c", 400, 1.5), ("light", 1500, 0.6)):
        x = rng.beta(a, 2.0, n)
        h.fill(channel=rng.choice(["mumu", "ee"], n), flavour=fl, value=x, weight=rng.uniform(0.5, 1.5, n))
    return h


def _fill_data(h, rng, cat="data", n=1100):
    x = np.concatenate([rng.beta(4.0, 2.0, n // 10), rng.beta(1.5, 2.0, n // 5),
                        rng.beta(0.6, 2.0, n - n // 10 - n // 5)])
    h.fill(channel=rng.choice(["mumu", "ee"], len(x)), flavour=cat, value=x)
    return h


def _cutflow(n0):
    h = hist.Hist.new.StrCat(STEPS, name="step").StrCat(["all", "mumu", "ee"], name="channel").Double()
    n = n0
    for i, s in enumerate(STEPS):
        if i < 2:
            h.fill(step=[s] * n, channel=["all"] * n)
        else:
            h.fill(step=[s] * n, channel=["mumu"] * (n // 2) + ["ee"] * (n - n // 2))
        n = n * 6 // 10
    return h


def make_output(run_dir="", *, mc_done=100, data_cat="data", with_data=True, seed=1):
    rng = np.random.default_rng(seed)
    names = ["DeepJet_BvsL", "nominal_BvsL", "adversarial_BvsL"]
    mc = {n: _fill_mc(_h(), rng) for n in names}
    mc["input_Jet_pt"] = _fill_mc(_h(6, 0, 1, label="jet $p_T$ [GeV]"), rng)
    mc["cutflow"] = _cutflow(5000)
    hists = {"DY": mc}
    counters = {"DY": {"sumw": SUMW, "events": 5000}}
    completeness = {"DY": {"complete": mc_done == 100, "events_planned": 100, "events_processed": mc_done,
                           "files_unreadable": 0}}
    if with_data:
        data = {n: _fill_data(_h(data_cat=data_cat), rng, data_cat) for n in names}
        data["input_Jet_pt"] = _fill_data(_h(6, 0, 1, label="jet $p_T$ [GeV]", data_cat=data_cat), rng, data_cat)
        data["cutflow"] = _cutflow(2000)
        hists["SingleMuon"] = data
        counters["SingleMuon"] = {"events": 2000}
        completeness["SingleMuon"] = {"complete": True, "events_planned": 50, "events_processed": 50,
                                      "files_unreadable": 0}
    return RunOutput(hists, counters, {}, completeness, {"done": 2}, [], run_dir)


FILESET = {"DY": {"files": {"mc.root": "Events"}, "metadata": {"is_data": False, "xsec": XSEC}},
           "SingleMuon": {"files": {"data.root": "Events"}, "metadata": {"is_data": True, "lumi": LUMI}}}


def make_run(tmp_path, **kw):
    run = str(tmp_path / "run")
    write(run, make_output(run, **kw))
    led = Ledger(os.path.join(run, "ledger.sqlite"))
    led.set_meta("fileset", FILESET)
    led.set_meta("analysis_kwargs", {"taggers": [{"name": "nominal", "source": "n.pt"},
                                                 {"name": "adversarial", "source": "a.pt"}]})
    led.close()
    return run


def gid(fig, name):
    return [a for a in fig.findobj(lambda a: hasattr(a, "get_gid") and a.get_gid() == name)]


def texts(fig):
    return [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text") and hasattr(a, "get_position"))]


def proj(h, channel=None, flavour=None):
    """Independent projection with plain numpy over the storage view."""
    v = h.view()
    ax = list(h.axes.name)
    vals, var = v["value"], v["variance"]
    for name, sel in (("channel", channel), ("flavour", flavour)):
        i = ax.index(name)
        if sel is None:
            idx = slice(None)
        else:
            idx = list(h.axes[name]).index(sel)
        vals = vals.sum(axis=i) if sel is None else np.take(vals, idx, axis=i)
        var = var.sum(axis=i) if sel is None else np.take(var, idx, axis=i)
        ax.pop(i)
    return vals, var


# -- agreement ---------------------------------------------------------------------------
def test_agreement_matches_hand_computation():
    d = np.array([10.0, 0.0, 5.0, 0.0, 3.0])
    m = np.array([8.0, 0.0, 7.0, 2.0, 3.0])
    vm = np.array([1.0, 0.0, 0.5, 0.2, 0.0])
    # bin 1: zero observed and expected, skipped; data variance = observed counts
    chi2 = (10 - 8) ** 2 / (10 + 1.0) + (5 - 7) ** 2 / (5 + 0.5) + (0 - 2) ** 2 / (0 + 0.2) + 0.0
    a = agreement(d, m, mc_var=vm)
    assert a["ndf"] == 4
    assert a["chi2"] == pytest.approx(chi2, rel=1e-12)
    assert a["chi2_ndf"] == pytest.approx(chi2 / 4)
    # ndf 4: survival function exp(-x/2) (1 + x/2)
    assert a["p_value"] == pytest.approx(math.exp(-chi2 / 2) * (1 + chi2 / 2), rel=1e-10)

    # the same from Weight-storage histograms
    hd = hist.Hist.new.Reg(5, 0, 1).Weight()
    hm = hist.Hist.new.Reg(5, 0, 1).Weight()
    hd.view()["value"], hd.view()["variance"] = d, d
    hm.view()["value"], hm.view()["variance"] = m, vm
    b = agreement(hd, hm)
    assert b["chi2"] == pytest.approx(chi2) and b["ndf"] == 4


def test_agreement_empty_and_chi2_sf():
    a = agreement(np.zeros(3), np.zeros(3))
    assert a["ndf"] == 0 and a["chi2"] == 0 and a["p_value"] is None
    for x in (0.3, 2.0, 7.5, 40.0, 300.0):
        assert chi2_sf(x, 2) == pytest.approx(math.exp(-x / 2), rel=1e-9)
        assert chi2_sf(x, 6) == pytest.approx(math.exp(-x / 2) * (1 + x / 2 + x * x / 8), rel=1e-9)
    assert chi2_sf(3.841458820694124, 1) == pytest.approx(0.05, rel=1e-8)
    assert chi2_sf(18.307038053275146, 10) == pytest.approx(0.05, rel=1e-8)


# -- one figure ----------------------------------------------------------------------------
def _simple():
    edges = np.linspace(0, 1, 5)
    mc = {"light": (np.array([50.0, 20, 10, 5]), edges, np.array([4.0, 2, 1, 1])),
          "c": (np.array([5.0, 8, 6, 4]), edges, np.array([1.0, 1, 1, 1])),
          "b": (np.array([1.0, 2, 6, 12]), edges, np.array([0.5, 0.5, 1, 2]))}
    data = (np.array([60.0, 28, 25, 19]), edges)
    return data, mc, edges


def test_plot_datamc_artists_match_numbers():
    data, mc, edges = _simple()
    fig = plot_datamc(data, mc, lumi_fb=0.002, xlabel="BvsL", log=False)
    assert len(fig.axes) == 2                                  # main + ratio
    ratio = fig.axes[1]
    total = mc["light"][0] + mc["c"][0] + mc["b"][0]
    # the stacked layers: the top of the stack is the MC total; each layer's height is its component
    (tot,) = gid(fig, "mc:total")
    np.testing.assert_allclose(tot.get_data().values, total)
    for fl in ("light", "c", "b"):
        (layer,) = gid(fig, f"mc:{fl}")
        sd = layer.get_data()
        np.testing.assert_allclose(sd.values - sd.baseline, mc[fl][0])
    (top,) = gid(fig, "mc:light")                # the largest component is stacked last (smallest at the bottom)
    np.testing.assert_allclose(top.get_data().values, total)
    (bottom,) = gid(fig, "mc:b")
    np.testing.assert_allclose(bottom.get_data().baseline, 0)
    (pts,) = gid(fig, "data")
    np.testing.assert_allclose(pts.get_ydata(), data[0])
    (rat,) = gid(fig, "ratio")
    np.testing.assert_allclose(rat.get_ydata(), data[0] / total)
    np.testing.assert_allclose(rat.get_xdata(), 0.5 * (edges[1:] + edges[:-1]))
    # range adapted to the points: max |r - 1| = 0.136 (x 1.1 margin) -> half-width 0.2
    assert max(abs(data[0] / total - 1)) == pytest.approx(0.1364, abs=1e-3)
    assert ratio.get_ylim() == pytest.approx((0.8, 1.2))
    # hatched stat band around 1 in the ratio panel
    (band,) = gid(fig, "ratio:band")
    var = mc["light"][2] + mc["c"][2] + mc["b"][2]
    np.testing.assert_allclose(band.get_data().values, 1 + np.sqrt(var) / total)
    assert band.get_hatch()
    t = texts(fig)
    assert any("CMS" in x for x in t) and any("pb$^{-1}$" in x and "13 TeV" in x for x in t)
    assert "Private work" in t and not any("Preliminary" in x for x in t)
    assert not gid(fig, "note:incomplete")
    panel = fig.panels[0]
    assert panel.agreement == agreement(data[0], total, mc_var=var)


def test_incomplete_note_and_side_by_side():
    data, mc, _ = _simple()
    fig = plot_datamc(data, mc, incomplete_note="incomplete: 93% of MC events processed")
    (note,) = gid(fig, "note:incomplete")
    assert "93%" in note.get_text() and note.get_visible()
    pair = plot_datamc_pair((data, mc), (data, mc), titles=("nominal", "adversarial"), xlabel="BvsL")
    assert len(pair.axes) == 4 and len(pair.panels) == 2
    assert pair.axes[0].get_ylim() == pair.axes[2].get_ylim()


# -- a run directory --------------------------------------------------------------------------
def test_plot_run_directory(tmp_path, capsys):
    run = make_run(tmp_path)
    out_dir = str(tmp_path / "plots")
    paths = plot_run(run, out_dir, formats=("png", "pdf"), channel="sum")
    names = sorted(os.path.basename(p) for p in paths)
    for stem in ("DeepJet_BvsL_all", "nominal_BvsL_all", "adversarial_BvsL_all",
                 "nominal_vs_adversarial_BvsL_all", "input_Jet_pt_all", "cutflow"):
        assert f"{stem}.png" in names and f"{stem}.pdf" in names
    for p in paths:
        assert os.path.getsize(p) > 1000
    assert open(paths[0], "rb").read(4) == b"\x89PNG"
    summ = read_json(os.path.join(out_dir, "summary.json"))
    assert summ["lumi_pb"] == LUMI and summ["notes"] == []
    assert summ["normalisation"]["DY"]["scale"] == pytest.approx(SCALE)
    # chi2 in the summary equals an independent computation from the stored histograms
    out = make_output()
    d, dv = proj(out.hists["SingleMuon"]["DeepJet_BvsL"])
    m, mv = proj(out.hists["DY"]["DeepJet_BvsL"])
    ref = agreement(d, m * SCALE, data_var=dv, mc_var=mv * SCALE ** 2)
    e = summ["plots"]["DeepJet_BvsL_all"]
    assert e["chi2"] == pytest.approx(ref["chi2"]) and e["ndf"] == ref["ndf"]
    assert e["incomplete"] is None
    assert summ["plots"]["cutflow"]["cutflow"]["DY"]["total"][0] == 5000
    table = capsys.readouterr().out
    assert "DeepJet_BvsL" in table and "chi2 / ndf" in table


def test_figures_normalised_and_ratio(tmp_path):
    run = make_run(tmp_path)
    out = make_output()
    figs = {stem: fig for stem, fig, _ in build_figures(run, channel="all", only=["DeepJet_*", "*_BvsL"])}
    assert set(figs) == {f"{n}_{ch}" for n in ("DeepJet_BvsL", "nominal_BvsL", "adversarial_BvsL",
                                                "nominal_vs_adversarial_BvsL") for ch in ("all", "mumu", "ee")}
    for ch, sel in (("all", None), ("mumu", "mumu"), ("ee", "ee")):
        fig = figs[f"DeepJet_BvsL_{ch}"]
        assert len(fig.axes) == 2
        d, _ = proj(out.hists["SingleMuon"]["DeepJet_BvsL"], channel=sel)
        mc_fl = {fl: proj(out.hists["DY"]["DeepJet_BvsL"], channel=sel, flavour=fl)[0] * SCALE
                 for fl in ("b", "c", "light")}
        total = sum(mc_fl.values())
        (tot,) = gid(fig, "mc:total")
        np.testing.assert_allclose(tot.get_data().values, total, rtol=1e-12)
        for fl, v in mc_fl.items():
            (layer,) = gid(fig, f"mc:{fl}")
            np.testing.assert_allclose(layer.get_data().values - layer.get_data().baseline, v, rtol=1e-12)
        (rat,) = gid(fig, "ratio")
        ok = (total > 0) & (d > 0)
        np.testing.assert_allclose(rat.get_ydata(), d[ok] / total[ok], rtol=1e-12)
        assert not gid(fig, "note:incomplete")
    pair = figs["nominal_vs_adversarial_BvsL_all"]
    assert len(pair.axes) == 4
    titles = [ax.get_legend().get_title().get_text().split("\n")[0] for ax in pair.axes if ax.get_legend()]
    assert titles == ["nominal", "adversarial"]        # the run's first two taggers, side by side


def test_incomplete_run_is_flagged(tmp_path):
    run = make_run(tmp_path, mc_done=93)
    figs = list(build_figures(run, channel="sum"))
    assert figs
    for stem, fig, entry in figs:
        notes = gid(fig, "note:incomplete")
        assert notes, stem
        assert all("incomplete: 93% of MC events processed" in n.get_text().replace("\n", " ") for n in notes)
        assert entry["incomplete"] == "incomplete: 93% of MC events processed"


def test_runoutput_with_metadata_and_data_in_light_category(tmp_path):
    """A RunOutput without run directory, fileset metadata given directly; data filled as 'light'."""
    out = make_output(data_cat="light")
    ref = make_output()
    md = {ds: v["metadata"] for ds, v in FILESET.items()}
    figs = {s: (f, e) for s, f, e in build_figures(out, metadata=md, channel="sum", only="DeepJet_BvsL")}
    figs_ref = {s: (f, e) for s, f, e in build_figures(ref, metadata=FILESET, channel="sum", only="DeepJet_BvsL")}
    e, e_ref = figs["DeepJet_BvsL_all"][1], figs_ref["DeepJet_BvsL_all"][1]
    assert e["chi2"] == pytest.approx(e_ref["chi2"]) and e["data_events"] == e_ref["data_events"]
    assert e["mc_by_flavour"] == pytest.approx(e_ref["mc_by_flavour"])
    paths = plot_run(out, str(tmp_path / "p"), metadata=md, channel="mumu", verbose=False,
                     only=["DeepJet_BvsL", "cutflow"])
    assert sorted(os.path.basename(p) for p in paths) == ["DeepJet_BvsL_mumu.png", "cutflow.png"]
    with pytest.raises(ValueError):
        plot_run(out, None, metadata=md)


def test_lumi_override_and_mc_only(tmp_path):
    run = make_run(tmp_path)
    (_, _, e), = build_figures(run, lumi=4.0, channel="sum", only="DeepJet_BvsL")
    (_, _, e2), = build_figures(run, channel="sum", only="DeepJet_BvsL")
    assert e["mc_events"] == pytest.approx(2 * e2["mc_events"])
    out = make_output(with_data=False)
    figs = list(build_figures(out, metadata={"DY": {"xsec": XSEC}}, lumi=LUMI, channel="sum", only="Deep*"))
    stem, fig, entry = figs[0]
    assert len(fig.axes) == 1 and entry["data_events"] is None
    assert any("Simulation" in t for t in texts(fig))


def test_cli(tmp_path, capsys):
    import argparse

    from jetdask.cli.plot import add_parser

    run = make_run(tmp_path)
    ap = argparse.ArgumentParser()
    add_parser(ap.add_subparsers(dest="cmd"))
    out_dir = str(tmp_path / "cli-plots")
    args = ap.parse_args(["plot", run, "--out", out_dir, "--format", "png,pdf", "--lumi", "3.5",
                          "--channel", "sum", "--only", "DeepJet_*,cutflow"])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert os.path.abspath(out_dir) in printed and "summary.json" in printed
    assert read_json(os.path.join(out_dir, "summary.json"))["lumi_pb"] == 3.5
    assert os.path.getsize(os.path.join(out_dir, "cutflow.pdf")) > 1000
    from jetdask.errors import ConfigError
    bad = ap.parse_args(["plot", str(tmp_path / "nope")])
    with pytest.raises(ConfigError):
        bad.func(bad)


# -- what a figure says comes from the histogram ------------------------------------------------
def _mass_output(run_dir="", label="Events", channels=None):
    """A dimuon-like run: a mass histogram without flavour axis (and without channel axis unless
    ``channels``), data and MC."""
    rng = np.random.default_rng(5)

    def h(n, w):
        ax = hist.axis.Regular(60, 60, 120, name="mass", label=r"$m_{\mu\mu}$ [GeV]")
        axes = ([hist.axis.StrCategory(channels, name="channel")] if channels else []) + [ax]
        out = hist.Hist(*axes, storage=hist.storage.Weight(), label=label)
        x = rng.normal(91, 20, n)                       # tails beyond both ends of the axis
        fill = {"mass": x, "weight": np.full(n, w)}
        if channels:
            fill["channel"] = rng.choice(channels, n)
        out.fill(**fill)
        return out

    hists = {"DY": {"mass": h(4000, 1.0)}, "SingleMuon": {"mass": h(1000, 1.0)}}
    counters = {"DY": {"sumw": SUMW}, "SingleMuon": {}}
    completeness = {ds: {"complete": True, "events_planned": 1, "events_processed": 1, "files_unreadable": 0}
                    for ds in hists}
    return RunOutput(hists, counters, {}, completeness, {"done": 2}, [], run_dir)


@pytest.mark.parametrize("label, channels, ylabel, channel_texts", [
    ("Events", None, "Events / 1 GeV", []),
    (None, None, "Entries / 1 GeV", []),
    ("Dimuon pairs", ["emu", "mumu"], "Dimuon pairs / 1 GeV", [r"e$\mu$ + $\mu\mu$", r"e$\mu$", r"$\mu\mu$"]),
])
def test_units_and_channels_from_the_histogram(label, channels, ylabel, channel_texts):
    out = _mass_output(label=label, channels=channels)
    md = {ds: v["metadata"] for ds, v in FILESET.items()}
    figs = {stem: fig for stem, fig, _ in build_figures(out, metadata=md, channel="all")}
    expected = ["mass_all"] + [f"mass_{c}" for c in (channels or [])]
    assert sorted(figs) == sorted(expected)
    shown = []
    for stem, fig in figs.items():
        t = texts(fig)
        assert fig.axes[0].get_ylabel() == ylabel, stem
        assert fig.axes[1].get_xlabel() == r"$m_{\mu\mu}$ [GeV]"
        assert not any("Jets" in x or "ee" in x for x in t), stem          # nothing of the DY study
        box = fig.axes[0].get_legend()
        lines = box.get_title().get_text().split("\n")
        assert "mass" not in lines                                          # not a tagger: no panel title
        shown += [x for x in lines if x in channel_texts]
    assert sorted(shown) == sorted(channel_texts)


def test_a_variable_folds_both_flows():
    """A histogram that is neither a tagger's discriminant nor an input keeps its booked range and
    folds under- and overflow into the edge bins (stated in the panel)."""
    out = _mass_output()
    md = {ds: v["metadata"] for ds, v in FILESET.items()}
    (_, fig, entry), = build_figures(out, metadata=md, channel="sum")
    h = out.hists["SingleMuon"]["mass"]
    v = h.values(flow=True)
    panel = fig.panels[0]
    assert panel.edges[0] == 60 and panel.edges[-1] == 120
    assert panel.data[0] == v[0] + v[1] and panel.data[-1] == v[-1] + v[-2] and v[0] > 0 and v[-1] > 0
    assert "edge bins: + under/overflow" in fig.axes[0].get_legend().get_title().get_text()
    assert entry["kind"] == "variable"
