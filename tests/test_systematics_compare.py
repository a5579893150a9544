"""Tagger-comparison figures (two taggers side by side) carry the stat ⊕ syst band of each panel
when the run has variations: a real run of the DY study with corrections and two (untrained,
deterministic) taggers over a synthetic sample."""
from __future__ import annotations

import os

import numpy as np
import pytest

from conftest import REPO
from figure_text import text_problems


@pytest.fixture(scope="module")
def run_with_taggers(tmp_path_factory):
    import torch

    from jetdask.engine.runner import Runner
    from jetdask.inference import save_checkpoint
    from jetdask.models import DeepJet
    from jetdask.plugin import load_analysis
    from jetdask.synthetic import generate_sample
    base = tmp_path_factory.mktemp("compare")
    fileset = generate_sample(str(base / "s"), events=1200, files=1, seed=6, mismodel=1.0, workers=1)
    cks = []
    for seed in (3, 4):
        torch.manual_seed(seed)
        cks.append(save_checkpoint(str(base / f"dj{seed}.pt"), DeepJet(summary="pool", summary_sizes=(8, 4, 4),
                                                                        dense=(16,))))
    ana = load_analysis(str(REPO / "analyses" / "dy_jets.py") + ":DYJets",
                        taggers=[{"name": "left", "source": cks[0]}, {"name": "right", "source": cks[1]}],
                        corrections=os.path.join(os.path.dirname(fileset), "corrections.yaml"),
                        systematics=["pileup", "btag_lf", "jesTotal"])
    run = str(base / "run")
    with Runner(ana, fileset, run, serial=True, progress=False) as r:
        out = r.run()
    assert out.complete
    return run


def _gids(ax) -> set:
    return {a.get_gid() for a in ax.get_children()}


def test_comparison_figure_has_each_panels_band(run_with_taggers):
    from jetdask.plotting.run import build_figures
    figs = {stem: (fig, e) for stem, fig, e in build_figures(run_with_taggers, only="*_BvsL", channel="sum",
                                                              pairs=[("left", "right")], breakdown=True)}
    fig, entry = figs["left_vs_right_BvsL_all"]
    assert entry["kind"] == "comparison"
    main = [ax for ax in fig.axes if "mc:total" in _gids(ax)]
    ratio = [ax for ax in fig.axes if "ratio:syst" in _gids(ax)]
    assert len(main) == 2 and all("mc:syst" in _gids(ax) for ax in main)
    assert len(ratio) == 2 and all("ratio:syst:btag" in _gids(ax) for ax in ratio)    # the breakdown
    for side in ("left", "right"):
        single = figs[f"{side}_BvsL_all"][1]
        panel = entry["panels"][f"{side}_BvsL"]
        # the same band (same numbers) as the tagger's own figure
        assert panel["syst_band_pct"] == pytest.approx(single["syst_band_pct"], rel=1e-12)
        assert panel["chi2_stat_syst"]["chi2"] == pytest.approx(single["chi2_stat_syst"]["chi2"], rel=1e-12)
        assert panel["mc_events"] == pytest.approx(single["mc_events"], rel=1e-12)
        assert panel["syst_band_pct"]["up"] > 0 and panel["syst_band_pct"]["down"] > 0
        assert {"pileup", "btag_lf", "jesTotal"} <= set(panel["syst_impact_pct"])
    assert entry["caption"]["systematics"] == ["pileup", "btag_lf", "jesTotal"]
    assert text_problems(fig) == []
    texts = [t.get_text() for t in fig.findobj(lambda o: hasattr(o, "get_text"))]
    assert sum("b-tag SF norm." in t for t in texts) >= 2              # stated in each panel
    off = {stem: f for stem, f, _ in build_figures(run_with_taggers, only="*_BvsL", channel="sum",
                                                   pairs=[("left", "right")], systematics=False)}
    assert not any("mc:syst" in _gids(ax) for ax in off["left_vs_right_BvsL_all"].axes)


def test_jet_multiplicity_figure_texts_do_not_collide(run_with_taggers):
    from jetdask.plotting.run import build_figures
    figs = {stem: (fig, e) for stem, fig, e in build_figures(run_with_taggers, only="n_jets", channel="all")}
    assert {"n_jets_all", "n_jets_mumu", "n_jets_ee"} <= set(figs)
    fig, entry = figs["n_jets_all"]
    assert text_problems(fig) == []
    assert np.isfinite(entry["chi2_stat_syst"]["chi2"])
