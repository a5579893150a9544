"""Figures of a small real run (synthetic sample, serial engine run) against reference images,
and the layout rules read back from the figure objects (label mode, headroom, legend corner).

Reference PNGs live in tests/figures/ (50 dpi, mplhep's bundled fonts, Agg). After an intended
change of the figures, rewrite them with ``JETDASK_UPDATE_FIGURES=1 pytest tests/test_figures.py``
and look at them before committing.
"""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from conftest import REPO
from figure_analysis import FigureAnalysis
from jetdask.errors import ConfigError
from jetdask.plotting import build_figures, plot_run
from jetdask.plotting.style import cms_style
from readfiles import read_json

FIGURES = REPO / "tests" / "figures"
DPI = 50                 # 500 x 500 px for a single panel: small files, layout still visible
TOLERANCE = 2.0          # RMS of the pixel difference (0-255); a moved legend or axis gives > 10
REFERENCE = {"datamc": "DeepJet_BvsL_all", "pair": "DeepJet_vs_DeepCSV_BvsL_all", "cutflow": "cutflow",
             "input": "input_trackSip2dSig_0_all"}
OPTIONS = dict(channel="sum", pairs=[("DeepJet", "DeepCSV")], names={"DeepCSV": "DeepCSV (NanoAOD)"})


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A finished run of FigureAnalysis over 2 x 3000 synthetic events (data with mismodelling)."""
    from jetdask.engine.runner import Runner
    from jetdask.synthetic import generate_sample

    base = tmp_path_factory.mktemp("figures")
    fileset = generate_sample(str(base / "sample"), events=3000, files=1, seed=11, mismodel=1.0, workers=1)
    out = Runner(FigureAnalysis(), fileset, str(base / "run"), serial=True, chunk_size=3000, progress=False).run()
    assert out.complete
    return str(base / "run")


@pytest.fixture(scope="module")
def figures(run_dir):
    return {stem: (fig, entry) for stem, fig, entry in build_figures(run_dir, **OPTIONS)}


@pytest.mark.parametrize("kind", sorted(REFERENCE))
def test_figure_matches_reference(kind, figures, tmp_path):
    from matplotlib.testing.compare import compare_images

    stem = REFERENCE[kind]
    fig, _ = figures[stem]
    new = tmp_path / f"{stem}.png"
    with cms_style():
        fig.savefig(new, dpi=DPI, metadata={"Software": None})
    ref = FIGURES / f"{stem}.png"
    if os.environ.get("JETDASK_UPDATE_FIGURES"):
        FIGURES.mkdir(exist_ok=True)
        shutil.copy(new, ref)
    assert ref.exists(), f"no reference image {ref}; write it with JETDASK_UPDATE_FIGURES=1"
    diff = compare_images(str(ref), str(new), tol=TOLERANCE)
    assert diff is None, diff


def _texts(fig):
    return [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text") and hasattr(a, "get_position"))]


def test_label_mode_for_synthetic_events(run_dir, figures):
    for stem, (fig, _) in figures.items():
        texts = _texts(fig)
        assert "Simulation Private work" in texts, stem
        assert not any("Preliminary" in t for t in texts), stem
        assert any("b$^{-1}$" in t and "(13 TeV)" in t for t in texts), stem
    legend = figures[REFERENCE["datamc"]][0].axes[0].get_legend()
    assert "Synthetic data" in [t.get_text() for t in legend.get_texts()]
    with pytest.raises(ConfigError, match="synthetic"):
        list(build_figures(run_dir, only="DeepJet_BvsL", channel="sum", label="preliminary"))


def _content_top(panel):
    return float(np.max(np.maximum(panel.mc_total, panel.data if panel.data is not None else 0)))


def test_headroom_and_legend_space(figures):
    """log y: top at most one decade above the tallest bin; the box clears the bins beneath it."""
    checked = 0
    for stem, (fig, entry) in figures.items():
        if entry["kind"] == "cutflow":
            continue
        main_axes = [ax for ax in fig.axes if ax.get_ylabel().startswith("Jets")]
        assert len(main_axes) == len(fig.panels)
        renderer = fig.canvas.get_renderer()
        for ax, panel in zip(main_axes, fig.panels):
            lo, hi = ax.get_ylim()
            peak = _content_top(panel)
            assert hi >= peak, stem
            if ax.get_yscale() == "log":
                assert hi <= 10 * peak * (1 + 1e-9), (stem, hi, peak)
                assert lo > 0
            box = ax.get_legend()
            if box is None:
                continue
            # the box, in data coordinates, lies above every bin it spans (drawn content incl. errors)
            (x0, y0), (x1, _) = ax.transData.inverted().transform(box.get_window_extent(renderer).get_points())
            edges = panel.edges
            under = (edges[1:] > x0) & (edges[:-1] < x1)
            tops = panel.mc_total + np.sqrt(panel.mc_total_var)
            if panel.data is not None:
                tops = np.maximum(tops, panel.data + np.sqrt(panel.data_var))
            assert np.all(tops[under] <= y0), stem
            checked += 1
    assert checked >= 4


def test_one_legend_in_side_by_side(figures):
    fig, entry = figures[REFERENCE["pair"]]
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    with_entries = [lg for lg in legends if lg.get_texts()]
    assert len(with_entries) == 1                  # the flavour legend once; the other box only names its tagger
    titles = [lg.get_title().get_text() for lg in legends]
    assert any(t.startswith("DeepJet (NanoAOD)") for t in titles)
    assert any(t.startswith("DeepCSV (NanoAOD)") for t in titles)
    assert not any("_" in t for t in titles)
    # both ratio panels share one range, adapted to the points of both
    r1, r2 = [ax.get_ylim() for ax in fig.axes if ax.get_ylabel() == "Data / MC"]
    assert r1 == r2


def test_cutflow_without_golden_json(figures, run_dir):
    from jetdask.engine.outputs import load_output
    cutflows = {ds: hs["cutflow"] for ds, hs in load_output(run_dir).hists.items()}
    fig, entry = figures["cutflow"]
    for ds, nums in entry["cutflow"].items():
        assert nums["steps"] == ["all", "two leptons", "jets"], ds       # no lumi step without lumi_mask
    rows = {r[0]: r[1:] for r in fig.cutflow_rows}
    # the (unskimmed, synthetic) DoubleMuon data set has ee events, shown in the ee plots: its ee cell
    # holds them; MC fills both rows
    datasets = sorted(entry["cutflow"], key=lambda d: d != "DoubleMuon")
    assert datasets[0] == "DoubleMuon"
    for ch in ("mumu", "ee"):
        for i, ds in enumerate(datasets):
            n = cutflows[ds][{"step": "jets", "channel": ch}]
            assert n > 0 and rows[f"jets ({ch})"][2 * i] == f"{n:,.0f}", (ds, ch)


def test_plot_run_writes_files_and_summary(run_dir, tmp_path):

    paths = plot_run(run_dir, str(tmp_path / "p"), formats=("png",), verbose=False, only=["Deep*_BvsL"],
                     **OPTIONS)
    names = sorted(os.path.basename(p) for p in paths)
    assert names == ["DeepCSV_BvsL_all.png", "DeepJet_BvsL_all.png", "DeepJet_vs_DeepCSV_BvsL_all.png"]
    summary = read_json(tmp_path / "p" / "summary.json")
    assert summary["synthetic"] is True and summary["energy"] == "13 TeV"
    assert summary["options"]["pairs"] == [["DeepJet", "DeepCSV"]]
