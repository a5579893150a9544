"""Evaluation figures: the ROC against a reference image, its ranges and legend, bootstrap bands;
every figure measured for colliding or clipped texts (every label mode), display names, text
sizes, raw inputs with ranges that show each flavour.

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

from figure_text import drawn_texts, text_problems
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
                      "color": plots.colour(0)}
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


def test_roc_ranges_from_the_curves_and_one_background_jet(roc):
    _, _, fig = roc
    ax = fig.axes[0]
    lo, hi = ax.get_ylim()
    assert lo == pytest.approx(1 / N_LIGHT) and hi == 1
    starts = []
    for line in ax.get_lines():
        x, y = line.get_xdata(), line.get_ydata()
        assert len(y) > 100 and y.min() >= 1 / N_LIGHT * (1 - 1e-9) and 0 <= x.min() and x.max() <= 1
        # no flat line along the one-jet floor: the curve touches it once, where it steps up
        assert np.sum(y <= 1 / N_LIGHT * (1 + 1e-9)) <= 1
        starts.append(x.min())
    # x from the 0.05 step below the first drawn efficiency (not from 0) to 1
    x0, x1 = ax.get_xlim()
    assert x1 == 1 and x0 < min(starts) <= x0 + 0.05 and x0 > 0
    # the jet counts are stated, and the cut is explained
    texts = [t.get_text() for t in ax.get_legend().get_texts()] + [ax.get_legend().get_title().get_text()]
    assert any(f"{N_B} b" in t and "light jets" in t for t in texts)
    assert any(f"1/{N_LIGHT} (at most one light jet)" in t.get_text() for t in fig.texts)


@pytest.mark.parametrize("first, lo", [(0.65, 0.6), (0.651, 0.65), (0.699, 0.65), (0.02, 0.0), (0.0, 0.0),
                                       (0.3, 0.25)])
def test_roc_x_range(first, lo):
    assert plots.roc_x_range(first) == (pytest.approx(lo), 1.0)


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
    for poly, r in zip(polys, results.values()):
        ys = poly.get_paths()[0].vertices[:, 1]
        assert ys.min() == pytest.approx(min(r.values()) - 0.004) and ys.max() == pytest.approx(max(r.values()) + 0.004)
    title = ax.get_legend().get_title().get_text()
    assert f"{N_B} b" in title and "bootstrap" in title
    assert len(eps) == len(ax.get_lines()[0].get_xdata())


def test_loss_curves_have_integer_epoch_ticks_and_no_energy(tmp_path):
    hist = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.1 / e, "train_accuracy": 0.5, "val_accuracy": 0.5}
            for e in (1, 2, 3)]
    keep: list = []
    plots.loss_curves({"DeepJet nominal": hist}, str(tmp_path / "loss"), ("png",), keep=keep)
    for ax in keep[0].axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks == [1, 2, 3]
        assert len(ax.xaxis.get_minorticklocs()) == 0
    texts = [t.get_text() for t in drawn_texts(keep[0])]
    assert not any("TeV" in t for t in texts)            # a training curve is not a measurement at 13 TeV
    assert {"DeepJet nominal", "training", "validation"} <= set(texts)


def _raw_inputs(n=6000, seed=0):
    """IP-significance-like raw inputs: b jets median ~10, light jets ~1 with a 2 % tail far beyond 50;
    half of the jets have no second input (no SV)."""
    rng = np.random.default_rng(seed)
    groups = np.array(["b", "c", "light"], dtype=object)[rng.choice(3, n, p=[0.1, 0.15, 0.75])]
    ip = np.where(groups == "b", rng.lognormal(np.log(10.8), 0.7, n), rng.normal(0.9, 1.0, n))
    ip = np.where(groups == "c", rng.lognormal(np.log(3.3), 0.7, n), ip)
    tail = (groups == "light") & (rng.random(n) < 0.02)
    ip[tail] = rng.uniform(50, 400, tail.sum())
    mass = rng.gamma(2.0, 0.8, n)
    has_sv = rng.random(n) < 0.5
    x = np.stack([ip, np.where(has_sv, mass, 0.0)], axis=1)
    valid = np.stack([np.ones(n, bool), has_sv], axis=1)
    return {"glob": x}, {"glob": valid}, groups


def test_input_figure_shows_raw_values_with_each_flavour_visible(tmp_path):
    raw, valid, groups = _raw_inputs()
    keep: list = []
    plots.input_distributions(raw, valid, groups, [("glob", (0,), "1st charged: 3D IP sig."),
                                                   ("glob", (1,), "1st SV: mass [GeV]")],
                              str(tmp_path / "inputs"), ("png",), keep=keep)
    fig = keep[0]
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_xlabel() for ax in axes] == ["1st charged: 3D IP sig.", "1st SV: mass [GeV]"]
    assert all(ax.get_ylabel() == "fraction of jets" for ax in axes)
    legends = [ax.get_legend() for ax in axes if ax.get_legend() is not None]
    assert len(legends) == 1 and not fig.legends                       # one legend for the figure
    ip = raw["glob"][:, 0]
    lo, hi = axes[0].get_xlim()
    # the range holds the b-jet bulk (raw values, not scaled); the light tail (2 % in 50-400) does not
    # set it and goes to the last bin
    assert hi >= np.percentile(ip[groups == "b"], 75) and hi < 100 < np.percentile(ip[groups == "light"], 99.5)
    assert lo <= np.percentile(ip[groups == "light"], 5)
    b_hist = np.histogram(np.clip(ip[groups == "b"], lo, hi), bins=40, range=(lo, hi))[0]
    l_hist = np.histogram(np.clip(ip[groups == "light"], lo, hi), bins=40, range=(lo, hi))[0]
    centers = np.linspace(lo, hi, 81)[1::2]
    assert (b_hist * centers).sum() / b_hist.sum() > 5 * (l_hist * centers).sum() / l_hist.sum()
    assert axes[0].get_yscale() == "log"                               # the long tail on log y
    no_sv = 100 * (1 - valid["glob"][:, 1].mean())
    assert any(f"no value: {no_sv:.0f} %" in t.get_text() for t in axes[1].texts)   # jets without an SV are named
    assert any("Raw values" in t.get_text() for t in fig.texts)        # and the edge bins explained
    assert text_problems(fig) == []


@pytest.mark.parametrize("values, edges0, edges1, nbins", [
    ([np.arange(0, 6)] * 3, -0.5, 5.5, 6),                            # integer counts: one bin per value
    ([np.linspace(0, 1, 101)], 0.005, 0.995, 40),                     # bulk within the 0.5-99.5 % quantiles
    ([np.r_[np.zeros(99), 1e6]], -0.5, 0.5, 1),                       # a constant with one outlier: one bin
    ([np.r_[np.full(99, 0.25), 1e6 + 0.5]], 0.25, 1.25, 40),          # not an integer: 40 bins from it
])
def test_display_range(values, edges0, edges1, nbins):
    from jetdask.evaluation.distributions import display_range
    edges, _ = display_range(values)
    assert edges[0] == pytest.approx(edges0, abs=1e-9) and edges[-1] == pytest.approx(edges1, abs=1e-9)
    assert len(edges) - 1 == nbins


# -- every evaluation figure: texts, names, sizes --------------------------------------------------
LABELS = ["Simulation Private work", "Simulation Preliminary", "Simulation Work in progress", "Simulation"]


def _eval_figures(label, only=("loss", "scores", "discriminants", "roc", "robustness", "inputs")):
    """Evaluation figures (``only`` these) for two models with display names, drawn with header ``label``."""
    import tempfile

    keep: list = []
    rng = np.random.default_rng(2)
    groups = np.array(["b", "c", "light"], dtype=object)[rng.choice(3, 3000, p=[0.2, 0.2, 0.6])]
    classes = ("b", "bb", "lepb", "c", "uds", "g")
    scores = rng.dirichlet(np.ones(6), 3000)
    hist = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.1 / e, "train_accuracy": 0.4 + e / 20,
             "val_accuracy": 0.4 + e / 25} for e in range(1, 9)]
    names = ["DeepJet, nominal training", "DeepJet, adversarial training (FGSM, $\\epsilon$ = 0.1)"]
    raw, valid, ig = _raw_inputs(3000)
    with tempfile.TemporaryDirectory() as d:
        made = {
            "loss": lambda: plots.loss_curves({n: hist for n in names}, os.path.join(d, "loss"), ("png",), keep, label),
            "scores": lambda: plots.score_distributions(scores, groups, classes, os.path.join(d, "s"), ("png",),
                                                        names[1], keep, label),
            "discriminants": lambda: plots.discriminant_distributions(
                {"BvsL": scores[:, 0], "CvsB": scores[:, 3], "CvsL": scores[:, 4]}, groups, os.path.join(d, "d"),
                ("png",), names[0], keep, label),
            "roc": lambda: plots.roc_curves(_curves(20), "BvsL", os.path.join(d, "roc"), ("png",), keep, label),
            "robustness": lambda: plots.robustness(
                {n: {"0": 0.97, "0.1": 0.95} for n in names}, "BvsL", os.path.join(d, "rob"), ("png",),
                bands={n: {"0": (0.96, 0.98), "0.1": (0.94, 0.96)} for n in names}, n_jets=(N_B, N_LIGHT),
                replicas=20, keep=keep, label=label),
            "inputs": lambda: plots.input_distributions(
                {"glob": np.repeat(raw["glob"], 4, axis=1)}, {"glob": np.repeat(valid["glob"], 4, axis=1)}, ig,
                [("glob", (j,), t) for j, t in enumerate(
                    ["track above charm: 3D IP sig.", "1st SV: mass [GeV]", "jet $p_T$ [GeV]",
                     "1st neutral: $p_T$ / jet $p_T$", "1st charged: 3D IP sig.", "jet $\\eta$",
                     "1st SV: 3D flight dist. sig.", "1st charged: $p_T$ / jet $p_T$"])],
                os.path.join(d, "in"), ("png",), keep, label)}
        for kind in only:
            made[kind]()
    return dict(zip(only, keep))


@pytest.fixture(scope="module")
def eval_figures():
    return _eval_figures(max(LABELS, key=len))


def test_evaluation_texts_never_collide(eval_figures):
    for kind, fig in eval_figures.items():
        assert text_problems(fig) == [], kind
        assert max(LABELS, key=len) in [t.get_text() for t in drawn_texts(fig)], kind


@pytest.mark.parametrize("label", [lab for lab in LABELS if lab != max(LABELS, key=len)])
def test_evaluation_headers_every_label(label):
    """The single-panel figures (the least room for the header) in the other label modes."""
    for kind, fig in _eval_figures(label, only=("loss", "roc", "robustness")).items():
        assert text_problems(fig) == [], kind
        assert label in [t.get_text() for t in drawn_texts(fig)], kind


def test_evaluation_text_sizes_follow_the_data_mc_figures(eval_figures):
    """Legend entries and titles, axis titles: not smaller than the tick labels (as in the data/MC
    figures), never set in small absolute points."""
    for kind, fig in eval_figures.items():
        texts = drawn_texts(fig)
        ticks = [t.get_fontsize() for ax in fig.axes for t in ax.get_yticklabels() if t in texts]
        tick = max(ticks)
        legend = [t for ax in fig.axes if ax.get_legend() for t in [*ax.get_legend().get_texts(),
                                                                    ax.get_legend().get_title()] if t.get_text()]
        titles = [ax.xaxis.label for ax in fig.axes if ax.get_xlabel()] + [ax.yaxis.label for ax in fig.axes
                                                                           if ax.get_ylabel()]
        assert legend and titles, kind
        assert min(t.get_fontsize() for t in legend) >= tick * 0.99, kind
        assert min(t.get_fontsize() for t in titles) >= tick * 0.99, kind


def test_evaluate_uses_display_names_and_raw_inputs(tmp_path):
    """``evaluate`` on two trained models named like the demo's: no raw key in any figure, the same
    display names as the data/MC figures, the inputs figure in raw units."""
    import training_helpers as H
    from jetdask.evaluation import evaluate
    from jetdask.plotting.labels import tagger_label
    m = H.trained(str(tmp_path / "training"))
    s = H.sample(None)
    keep: list = []
    evaluate({"DeepJet_nominal": m["nominal"]["best"], "DeepJet_adversarial": m["adversarial"]["best"]}, s["run"],
             str(tmp_path / "eval"), epsilons=(0.1,), bootstrap=5, keep=keep)
    assert len(keep) == 2 * 2 + 1 + 3 + 3 + 1
    shown = []
    for fig in keep:
        texts = [t.get_text() for t in drawn_texts(fig)]
        assert not any("DeepJet_" in t for t in texts)
        assert text_problems(fig) == []
        shown += texts
    assert tagger_label("DeepJet_nominal") == "DeepJet nominal"
    assert any(t.startswith("DeepJet nominal") for t in shown) and any("DeepJet adversarial" in t for t in shown)
    inputs = keep[-1]
    pt_axis = next(ax for ax in inputs.axes if ax.get_xlabel() == "jet $p_T$ [GeV]")
    assert pt_axis.get_xlim()[0] >= 15                  # raw GeV (the cleaning keeps pT > 20), not scaled
