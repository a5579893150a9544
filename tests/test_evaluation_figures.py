"""Evaluation figures: the ROC against a reference image, its ranges and legend, bootstrap bands.

The figures are built from deterministic scores (fixed numpy seeds, Agg canvas, mplhep's
own fonts). Refresh the reference image after an intended layout change with
``JETDASK_UPDATE_FIGURES=1 pytest tests/test_evaluation_figures.py`` and look at it.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from jetdask.evaluation import bootstrap as boot
from jetdask.evaluation import plots
from jetdask.evaluation.metrics import auc, roc_curve

FIGURES = Path(__file__).parent / "figures"
N_B, N_LIGHT = 686, 17_532          # the jet counts of the demo's test split


def _jets(seed: int, shift: float):
    """Deterministic BvsL-like scores: b jets peak near 1, light jets near 0."""
    rng = np.random.default_rng(seed)
    sig = np.r_[np.ones(N_B, bool), np.zeros(N_LIGHT, bool)]
    logit = np.where(sig, rng.normal(1.2 - shift, 1.6, len(sig)), rng.normal(-3.0, 1.5, len(sig)))
    return np.round(1 / (1 + np.exp(-logit)), 5), sig


def _curves(replicas=200):
    out = {}
    counts = boot.multiplicities(N_B + N_LIGHT, replicas, 7)
    for (label, shift, ls) in (("nominal", 0.0, "-"), ("nominal, FGSM $\\epsilon$ = 0.1", 1.0, "--")):
        score, sig = _jets(11, shift)
        fpr, tpr, _ = roc_curve(score, sig)
        band = boot.summary(boot.bootstrap_auc(score, sig, counts=counts))
        out[label] = {"fpr": fpr, "tpr": tpr, "auc": auc(fpr, tpr), "n_signal": N_B, "n_background": N_LIGHT,
                      "auc_std": band["std"], "auc_lo": band["lo"], "auc_hi": band["hi"], "ls": ls,
                      "color": plots._colour(0)}
    return out


@pytest.fixture(scope="module")
def roc(tmp_path_factory):
    keep: list = []
    curves = _curves()
    path = plots.roc_curves(curves, "BvsL", str(tmp_path_factory.mktemp("roc") / "roc_BvsL"), ("png",), keep=keep)[0]
    return curves, path, keep[0]


def test_roc_matches_reference_image(roc):
    from matplotlib.testing.compare import compare_images
    _, path, _ = roc
    ref = FIGURES / "roc_BvsL.png"
    if os.environ.get("JETDASK_UPDATE_FIGURES"):
        FIGURES.mkdir(exist_ok=True)
        shutil.copyfile(path, ref)
    assert ref.exists(), f"no reference image {ref}: run with JETDASK_UPDATE_FIGURES=1 once"
    diff = compare_images(str(ref), path, tol=3)
    assert diff is None, diff


def test_roc_ranges_stop_at_one_background_jet(roc):
    _, _, fig = roc
    ax = fig.axes[0]
    assert ax.get_xlim() == (0, 1)
    lo, hi = ax.get_ylim()
    assert lo == pytest.approx(1 / N_LIGHT) and hi == 1
    for line in ax.get_lines():
        x, y = line.get_xdata(), line.get_ydata()
        assert len(y) > 100 and y.min() >= 1 / N_LIGHT * (1 - 1e-9) and 0 <= x.min() and x.max() <= 1
        # no flat line along the one-jet floor: the curve touches it once, where it steps up
        assert np.sum(y <= 1 / N_LIGHT * (1 + 1e-9)) <= 1
    # the jet counts are stated, and the cut is explained
    texts = [t.get_text() for t in ax.get_legend().get_texts()] + [ax.get_legend().get_title().get_text()]
    assert any(f"{N_B} b" in t and "light jets" in t for t in texts)
    assert any(f"1/{N_LIGHT}\n(at most one light jet)" in t.get_text() for t in ax.texts)


def test_roc_legend_outside_the_curves(roc):
    _, _, fig = roc
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    legend = ax.get_legend().get_window_extent(renderer)
    frame = ax.get_window_extent(renderer)
    assert legend.x0 >= frame.x1                       # entirely right of the axes
    curves = [line.get_window_extent(renderer) for line in ax.get_lines()]
    assert not any(legend.overlaps(c) for c in curves)


def test_bootstrap_width_follows_the_statistics(roc):
    """The bootstrap standard deviation of the AUC is of the size the counting statistics give
    (DeLong's analytic error), and a 4x smaller sample gives about a 2x wider band."""
    curves, _, _ = roc
    for (label, c), shift in zip(curves.items(), (0.0, 1.0)):
        expected = boot.delong_std(*_jets(11, shift))
        assert 0.75 * expected < c["auc_std"] < 1.33 * expected, label
        assert c["auc_lo"] < c["auc"] < c["auc_hi"]
    assert curves["nominal, FGSM $\\epsilon$ = 0.1"]["auc_std"] > curves["nominal"]["auc_std"]
    score, sig = _jets(11, 0.0)
    keep = np.random.default_rng(3).random(len(score)) < 0.25
    small = boot.summary(boot.bootstrap_auc(score[keep], sig[keep], seed=5))["std"]
    assert 1.4 < small / curves["nominal"]["auc_std"] < 2.8
    # seeded: the same replicas twice
    np.testing.assert_array_equal(boot.bootstrap_auc(score, sig, replicas=20, seed=1),
                                  boot.bootstrap_auc(score, sig, replicas=20, seed=1))


def test_bootstrap_auc_of_unit_multiplicities_is_the_roc_auc():
    score, sig = _jets(2, 0.5)
    w = np.random.default_rng(4).random(len(score)) + 0.5
    fpr, tpr, _ = roc_curve(score, sig, w)
    one = boot.bootstrap_auc(score, sig, w, counts=np.ones((1, len(score))))
    assert one[0] == pytest.approx(auc(fpr, tpr), abs=1e-12)


def test_robustness_figure_draws_the_bands(tmp_path):
    from matplotlib.collections import PolyCollection
    eps = ("0", "0.1", "0.2")
    results = {"nominal": {"0": 0.97, "0.1": 0.95, "0.2": 0.92}, "adversarial": {"0": 0.97, "0.1": 0.965, "0.2": 0.95}}
    bands = {m: {e: (v - 0.004, v + 0.004) for e, v in r.items()} for m, r in results.items()}
    keep: list = []
    plots.robustness(results, "BvsL", str(tmp_path / "rob"), ("png",), bands=bands, n_jets=(N_B, N_LIGHT),
                     replicas=200, keep=keep)
    ax = keep[0].axes[0]
    polys = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(polys) == 2
    for poly, (name, r) in zip(polys, results.items()):
        ys = poly.get_paths()[0].vertices[:, 1]
        assert ys.min() == pytest.approx(min(r.values()) - 0.004) and ys.max() == pytest.approx(max(r.values()) + 0.004)
    corner = [t.get_text() for t in ax.texts]
    assert not any(ax.get_ylabel() in t or ax.get_xlabel() in t for t in corner)   # no repeated axis label
    assert any(f"{N_B} b" in t for t in corner)
    assert "bootstrap" in ax.get_legend().get_title().get_text()
    assert len(eps) == len(ax.get_lines()[0].get_xdata())


def test_loss_curves_have_integer_epoch_ticks(tmp_path):
    hist = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.1 / e, "train_accuracy": 0.5, "val_accuracy": 0.5}
            for e in (1, 2, 3)]
    keep: list = []
    plots.loss_curves({"nominal": hist}, str(tmp_path / "loss"), ("png",), keep=keep)
    for ax in keep[0].axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks == [1, 2, 3]
        assert len(ax.xaxis.get_minorticklocs()) == 0


def test_input_figure_axes_and_one_legend(tmp_path):
    rng = np.random.default_rng(0)
    n = 3000
    groups = np.array(["b", "c", "light"], dtype=object)[rng.integers(0, 3, n)]
    x = np.stack([rng.normal(0, 1, n), np.where(rng.random(n) < 0.5, -0.25, rng.exponential(3.0, n))], axis=1)
    keep: list = []
    plots.input_distributions({"glob": x}, {}, groups, [("glob", (0,), "jet $p_T$"), ("glob", (1,), "IP sig.")],
                              str(tmp_path / "inputs"), ("png",), keep=keep)
    fig = keep[0]
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert all(ax.get_xlabel().endswith("(scaled)") and ax.get_ylabel() == "fraction of jets" for ax in axes)
    assert len(fig.legends) == 1 and all(ax.get_legend() is None for ax in axes)
    assert axes[1].get_yscale() == "log" and axes[0].get_yscale() == "linear"   # the long tail on log y
    assert any("50 % at -0.25" in t.get_text() for t in axes[1].texts)          # the default value is named
    assert any("first and last" in t.get_text() for t in fig.texts)             # edge bins explained
