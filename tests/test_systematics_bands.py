"""Systematic bands: combination rules by hand, χ² with systematics, figures and summary of a run,
the CLI with --corrections, and the shipped SFs improving data/MC agreement."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from jetdask.corrections import systematics as reg
from jetdask.plotting.bands import Band, chi2_with_syst, combine


def _src(*names):
    return [reg.BY_NAME[n] for n in names]


def test_quadrature_envelope_one_sided_and_components_by_hand():
    nom = np.array([100.0, 50.0])
    var = {"pileupUp": np.array([103.0, 50.0]), "pileupDown": np.array([96.0, 51.0]),      # bin 2: both up
           "btag_hfUp": np.array([104.0, 48.0]), "btag_hfDown": np.array([97.0, 52.0]),
           "muRUp": np.array([110.0, 50.0]), "muRDown": np.array([92.0, 50.0]),
           "muFUp": np.array([101.0, 55.0]), "muFDown": np.array([99.0, 47.0]),
           "jesTotalUp": np.array([102.0, 50.0]), "jesTotalDown": np.array([98.0, 50.0]),
           "jesAbsoluteUp": np.array([150.0, 50.0]), "jesAbsoluteDown": np.array([50.0, 50.0])}
    b = combine(nom, var, _src("pileup", "btag_hf", "muR", "muF", "jesTotal", "jesAbsolute"))
    # bin 1: pileup +3/-4, btag +4/-3, scale envelope +10/-8, JES Total +2/-2 (Absolute is a component)
    assert b.up[0] == pytest.approx(np.sqrt(3 ** 2 + 4 ** 2 + 10 ** 2 + 2 ** 2))
    assert b.down[0] == pytest.approx(np.sqrt(4 ** 2 + 3 ** 2 + 8 ** 2 + 2 ** 2))
    # bin 2: pileup both up -> +1 up, 0 down; btag +2/-2; envelope muF +5/-3
    assert b.up[1] == pytest.approx(np.sqrt(1 + 4 + 25))
    assert b.down[1] == pytest.approx(np.sqrt(0 + 4 + 9))
    assert set(b.groups) == {"pileup", "btag", "theory", "jes"}
    assert b.groups["jes"][0][0] == pytest.approx(2.0)
    assert b.impacts["jesAbsolute"]["up"] == pytest.approx(100 * 50 / 150)
    # a one-sided source is symmetrised
    one = reg.Source("isr1", "weight", "theory", sides=("Up",))
    b1 = combine(nom, {"isr1Up": np.array([105.0, 49.0])}, [one])
    np.testing.assert_allclose(b1.up, [5.0, 1.0])
    np.testing.assert_allclose(b1.down, [5.0, 1.0])


def test_chi2_with_systematics_by_hand():
    class P:
        data = np.array([110.0, 40.0])
        data_var = np.array([110.0, 40.0])
        mc_total = np.array([100.0, 50.0])
        mc_total_var = np.array([4.0, 1.0])
    band = Band(np.array([10.0, 1.0]), np.array([2.0, 5.0]), {}, {}, [])
    got = chi2_with_syst(P, band)
    want = 10 ** 2 / (110 + 4 + 10 ** 2) + 10 ** 2 / (40 + 1 + 5 ** 2)   # the side towards the data
    assert got["chi2"] == pytest.approx(want) and got["ndf"] == 2


@pytest.fixture(scope="module")
def run_with_corrections(tmp_path_factory):
    from jetdask.synthetic import generate_sample
    base = tmp_path_factory.mktemp("bands")
    fileset = generate_sample(str(base / "s"), events=1500, files=1, seed=4, mismodel=1.0, workers=1)
    corrections = os.path.join(os.path.dirname(fileset), "corrections.yaml")
    run = str(base / "run")
    env = dict(os.environ)
    cmd = [sys.executable, "-m", "jetdask.cli", "run", str(REPO / "analyses" / "dy_jets.py") + ":DYJets",
           "--fileset", fileset, "--run-dir", run, "--corrections", corrections, "--serial", "--no-progress"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "41 variations" in p.stderr             # the output size, printed before the run
    return run, corrections


def test_plot_draws_bands_and_summary_has_impacts_and_both_chi2(run_with_corrections, tmp_path):
    run, _ = run_with_corrections
    out = tmp_path / "plots"
    p = subprocess.run([sys.executable, "-m", "jetdask.cli", "plot", run, "--out", str(out), "--only",
                        "DeepJet_BvsL,input_Jet_pt", "--channel", "sum", "--breakdown"],
                       capture_output=True, text=True, timeout=600, check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    summary = json.loads((out / "summary.json").read_text())
    e = summary["plots"]["DeepJet_BvsL_all"]
    assert e["chi2_stat"]["chi2"] == pytest.approx(e["chi2"])
    assert e["chi2_stat_syst"]["chi2"] <= e["chi2_stat"]["chi2"]
    assert {"pileup", "btag_lf", "muR", "jesTotal", "jer"} <= set(e["syst_impact_pct"])
    pt = summary["plots"]["input_Jet_pt_all"]["syst_impact_pct"]
    assert pt["jesTotal"]["up"] > 0 > pt["jesTotal"]["down"]          # JES up moves jets above threshold
    cap = json.loads((out / e["caption_file"]).read_text())
    names = {os.path.basename(f["path"]) for f in cap["corrections"]}
    assert names == {"btagging.json.gz", "puWeights.json.gz", "jet_jerc.json.gz"}
    assert all(len(f["sha256"]) == 64 for f in cap["corrections"])
    assert "jer" in cap["systematics"]


def test_figure_artists_and_switching_off(run_with_corrections):
    from jetdask.plotting.run import build_figures
    run, _ = run_with_corrections
    figs = {stem: (fig, entry) for stem, fig, entry in build_figures(run, only="DeepJet_BvsL", channel="sum")}
    fig, entry = figs["DeepJet_BvsL_all"]
    gids = {a.get_gid() for ax in fig.axes for a in ax.get_children()}
    assert {"mc:syst", "ratio:syst"} <= gids
    assert any("b-tag SF norm." in t.get_text() for ax in fig.axes for t in ax.findobj(
        lambda o: hasattr(o, "get_text")))
    off = {stem: (f, e) for stem, f, e in build_figures(run, only="DeepJet_BvsL", channel="sum", systematics=False,
                                                        btag_norm=False)}
    f2, e2 = off["DeepJet_BvsL_all"]
    assert "mc:syst" not in {a.get_gid() for ax in f2.axes for a in ax.get_children()}
    assert "chi2_stat_syst" not in e2
    assert e2["mc_events"] != pytest.approx(entry["mc_events"], rel=1e-9)   # the normalisation correction


@pytest.mark.slow
def test_shipped_sfs_improve_data_mc_agreement(tmp_path):
    """A sample whose only data/MC difference is the injected light-jet mistag mismodelling: the
    fraction of jets between the loose and medium working points (light-rich) is higher in data
    than in MC by more than 3 standard deviations; with the shipped shape SF applied they agree
    within two, and the χ² over btagDeepFlavB falls."""
    from jetdask.corrections.normalise import variation_scales
    from jetdask.engine.runner import Runner
    from jetdask.plugin import load_analysis
    from jetdask.synthetic import generate_sample
    fileset = generate_sample(str(tmp_path / "s"), events=16000, files=2, seed=8, mismodel=0.0, sf_mismodel=5.0)
    corrections = os.path.join(os.path.dirname(fileset), "corrections.yaml")
    spec = str(REPO / "analyses" / "dy_jets.py") + ":DYJets"
    with open(fileset) as f:
        md = {k: v["metadata"] for k, v in json.load(f).items()}
    res = {}
    for label, disable in (("without", ["btag"]), ("with", [])):
        ana = load_analysis(spec, corrections=corrections, systematics=[], disable=disable)
        with Runner(ana, fileset, str(tmp_path / label), serial=True, progress=False) as r:
            out = r.run()
        sc = variation_scales(out, md, btag_norm_on=False)["DYJetsToLL_M-50"]["nominal"]
        proj = {"syst": "nominal", "channel": sum, "pt": sum, "abseta": sum}
        mc = out.hists["DYJetsToLL_M-50"]["sf_DeepJet_B"][proj][{"flavour": sum}]
        d = out.hists["DoubleMuon"]["sf_DeepJet_B"][proj][{"flavour": sum}].values()
        m, v = mc.values() * sc, mc.variances() * sc * sc
        use = (d + m) > 0
        lm = slice(1, 6)                                # 0.05 <= btagDeepFlavB < 0.30: WP L to M
        fd, fm = d[lm].sum() / d.sum(), m[lm].sum() / m.sum()
        err = np.hypot(np.sqrt(fd * (1 - fd) / d.sum()), np.sqrt(v[lm].sum()) / m.sum())
        res[label] = {"chi2": float(np.sum((d - m)[use] ** 2 / (d + v)[use])), "pull": (fd - fm) / err}
    assert res["without"]["pull"] > 3, res
    assert abs(res["with"]["pull"]) < 2, res
    assert res["with"]["chi2"] < res["without"]["chi2"], res
