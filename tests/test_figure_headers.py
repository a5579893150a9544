"""Figure texts never collide: every label mode, luminosity text and figure layout, measured.

Each figure is drawn on its Agg canvas; the box of every text the renderer draws (header, tick
labels, axis titles, legend, panel text, off-scale ratio values, table cells) is taken from
matplotlib (``get_window_extent``), rotated with its text (:mod:`figure_text`). No two boxes may
overlap and every box must lie inside the figure.
"""
from __future__ import annotations

import hist
import numpy as np
import pytest

from figure_text import drawn_texts, overlap, text_problems
from jetdask.plotting import plot_cutflow, plot_datamc, plot_datamc_pair
from jetdask.plotting.header import GAP_EM, header_rows, shrink_factor
from jetdask.plotting.labels import _LABELS
from jetdask.plotting.style import cms_style, new_figure

LABELS = sorted({t for t in _LABELS.values() if t})          # every text a label mode can give
LONGEST_LUMI = (0.000658, "13.6 TeV")                         # "658 nb^-1 (13.6 TeV)"


def _components(seed=1, scale=1.0, bins=20, lo=0.0, hi=1.0):
    rng = np.random.default_rng(seed)
    edges = np.linspace(lo, hi, bins + 1)
    x = (edges[1:] + edges[:-1]) / 2
    shape = np.exp(-3 * (x - lo) / (hi - lo))
    mc = {"light": (800 * scale * shape, edges, 4 * scale * shape), "c": (90 * scale * shape, edges, scale * shape),
          "b": (30 * scale * (1 - shape) + 1, edges, scale * np.ones(bins))}
    total = sum(v[0] for v in mc.values())
    data = (rng.poisson(total).astype(float), edges)
    return data, mc


def _offscale_components():
    """Neighbouring narrow bins far off the ratio range on both sides (values 3.7, 2.2, 0.05 ...)."""
    data, mc = _components(bins=60, lo=60, hi=120)
    d = data[0].copy()
    total = sum(v[0] for v in mc.values())
    d[10:22] = np.round(total[10:22] * np.array([3.7, 2.2, 3.1, 2.6, 4.4, 2.05, 3.3, 2.9, 3.8, 2.2, 3.2, 2.7]))
    d[40:46] = np.maximum(1, np.round(total[40:46] * 0.02))
    return (d, data[1]), mc


def _single(label, lumi, energy):
    data, mc = _components()
    return plot_datamc(data, mc, label=label, lumi_fb=lumi, energy=energy, xlabel="BvsL discriminant", log=True,
                       title="DeepJet (NanoAOD)", channel="mumu", ylabel="Jets")


def _single_mc_only_linear_large(label, lumi, energy):
    _, mc = _components(scale=4e4)
    return plot_datamc(None, mc, label=label, lumi_fb=lumi, energy=energy, xlabel="jet $p_T$ [GeV]", log=False,
                       channel="ee", ylabel="Jets")


def _single_box_outside(label, lumi, energy):
    data, mc = _components(seed=3)
    mc = {k: (np.full_like(v[0], v[0].mean()), v[1], v[2]) for k, v in mc.items()}   # flat: no free corner
    return plot_datamc((np.round(sum(v[0] for v in mc.values())), data[1]), mc, label=label, lumi_fb=lumi,
                       energy=energy, xlabel="leading track 2D IP significance", log=False,
                       title="DeepJet nominal training\nFGSM, $\\epsilon$ = 0.05 inputs", channel="all",
                       flow_note="edge bins: + under/overflow", ylabel="Jets")


def _single_offscale(label, lumi, energy):
    data, mc = _offscale_components()
    return plot_datamc(data, mc, label=label, lumi_fb=lumi, energy=energy, xlabel=r"$m_{\mu\mu}$ [GeV]", log=True,
                       ylabel="Events")


def _pair(label, lumi, energy):
    left, right = _components(1), _components(2)
    return plot_datamc_pair(left, right, titles=("DeepJet nominal", "DeepJet adversarial"), label=label,
                            lumi_fb=lumi, energy=energy, xlabel="BvsL discriminant", log=True, channel="mumu",
                            ylabel="Jets")


def _pair_mc_only(label, lumi, energy):
    left, right = _components(1, scale=2e5), _components(2, scale=2e5)
    return plot_datamc_pair((None, left[1]), (None, right[1]), titles=("DeepJet nominal", "DeepJet adversarial"),
                            label=label, lumi_fb=lumi, energy=energy, xlabel="CvsL discriminant", log=False,
                            ylabel="Jets")


def _cutflow_hist(n0, channels=("mumu", "ee")):
    steps = ["all", "trigger", "two leptons", "lepton veto", "Z window", "jets"]
    h = hist.Hist.new.StrCat(steps, name="step").StrCat(["all", *channels], name="channel").Double()
    n = n0
    for i, s in enumerate(steps):
        if i < 2:
            h.fill(step=[s] * n, channel=["all"] * n)
        else:
            h.fill(step=[s] * n, channel=[channels[0]] * (n // 2) + [channels[-1]] * (n - n // 2))
        n = n * 7 // 10
    return h


def _cutflow_one(label, lumi, energy):
    return plot_cutflow({"DYJetsToLL_M-50": _cutflow_hist(20000)}, {"DYJetsToLL_M-50": False}, label=label,
                        lumi_fb=lumi, energy=energy)


def _cutflow_three(label, lumi, energy):
    cfs = {"DoubleMuon_Run2018A-UL2018_MiniAODv2": _cutflow_hist(9000), "EGamma": _cutflow_hist(12000),
           "DYJetsToLL_M-50_TuneCP5_13TeV-amcatnloFXFX": _cutflow_hist(40000)}
    return plot_cutflow(cfs, {k: not k.startswith("DY") for k in cfs}, label=label, lumi_fb=lumi, energy=energy)


FIGURES = {"single": _single, "single-mc-only": _single_mc_only_linear_large, "single-box-outside": _single_box_outside,
           "single-offscale": _single_offscale, "pair": _pair, "pair-mc-only": _pair_mc_only,
           "cutflow-one": _cutflow_one, "cutflow-three": _cutflow_three}


TIGHTEST = ("single", "pair", "cutflow-one")          # the narrowest header space of each layout
CASES = [(k, lab) for k in TIGHTEST for lab in LABELS] + \
        [(k, max(LABELS, key=len)) for k in sorted(FIGURES) if k not in TIGHTEST]


@pytest.mark.parametrize("kind, label", CASES)
def test_no_text_collides_longest_luminosity(kind, label):
    fig = FIGURES[kind](label, *LONGEST_LUMI)
    assert text_problems(fig) == []
    texts = [t.get_text() for t in drawn_texts(fig)]
    assert "CMS" in texts and label in texts and any("nb$^{-1}$ (13.6 TeV)" in t for t in texts)


@pytest.mark.parametrize("kind", TIGHTEST)
@pytest.mark.parametrize("lumi", [None, 0.0329, 138.0])
def test_no_text_collides_other_luminosities(kind, lumi):
    fig = FIGURES[kind]("Simulation Work in progress", lumi, "13 TeV")
    assert text_problems(fig) == []


def _narrow(label, lumi, energy):
    from jetdask.plotting.datamc import new_datamc_figure

    data, mc = _components()
    with cms_style():
        fig, [(ax, rax)] = new_datamc_figure(1, width=8.0)
    return plot_datamc(data, mc, fig=fig, ax=ax, rax=rax, label=label, lumi_fb=lumi, energy=energy, log=True,
                       xlabel="BvsL discriminant", ylabel="Jets")


def test_header_in_one_row_when_it_fits_two_rows_when_not():
    """The usual one-row header where it fits; on a narrower panel the luminosity moves one row up
    for the longest label, and the figure grows at the top to keep it."""
    renderer_rows = {}
    for kind, label in (("single", "Private work"), ("narrow", "Simulation Work in progress")):
        fig = (_narrow if kind == "narrow" else FIGURES[kind])(label, 0.0329, "13 TeV")
        right = [t for t in drawn_texts(fig) if t.get_gid() == "header:right"]
        cms = [t for t in drawn_texts(fig) if t.get_gid() == "header:cms"]
        r = fig.canvas.get_renderer()
        rb = right[0].get_window_extent(r)
        cb = cms[0].get_window_extent(r)
        renderer_rows[kind] = "two" if rb.y0 >= cb.y1 else "one"
        assert text_problems(fig) == []
        if kind == "narrow":
            assert fig.get_size_inches()[1] > 10.0           # grown at the top
    assert renderer_rows == {"single": "one", "narrow": "two"}


def test_offscale_values_neither_overlap_nor_vanish():
    fig = _single_offscale("Private work", 1.0, "13 TeV")
    values = [t for t in drawn_texts(fig) if t.get_gid() == "ratio:offscale-value"]
    assert text_problems(fig) == []
    assert len(values) >= 6                             # most of the 18 off-scale points keep their value
    shown = {float(t.get_text()) for t in values}
    assert shown <= {3.7, 2.2, 3.1, 2.6, 4.4, 2.0, 2.1, 3.3, 2.9, 3.8, 3.2, 2.7, 0.02, 0.019, 0.021, 0.018, 0.022,
                     0.025, 0.017, 0.023, 0.024, 0.016, 0.026}
    # two rows are used where neighbours need them
    assert len({round(t.get_position()[1], 6) for t in values}) >= 2


def test_the_detector_finds_the_old_collision():
    """mplhep's label alone on a narrow panel runs "Work in progress" into the luminosity: the
    measurement sees it (so the tests above can fail)."""
    import mplhep

    with cms_style():
        fig = new_figure(7, 6)
        ax = fig.add_axes([0.15, 0.15, 0.8, 0.7])
        mplhep.cms.label(ax=ax, llabel="Simulation Work in progress", rlabel="32.9 pb$^{-1}$ (13 TeV)", loc=0)
        tab = fig.add_axes([0.1, 0.0, 0.3, 0.1])
        tab.axis("off")
        t = tab.table(cellText=[["DYJetsToLL_M-50_TuneCP5_13TeV", "1"]], bbox=[0, 0, 1, 1])
        t.auto_set_font_size(False)
        t.set_fontsize(15)
    problems = text_problems(fig)
    assert any("overlap" in p and "Work in progress" in p and "32.9" in p for p in problems)
    assert any("outside its table cell" in p and "DYJetsToLL" in p for p in problems)


@pytest.mark.parametrize("left, right, width, gap, rows", [
    (300, 200, 600, 20, 1), (300, 200, 520, 20, 1), (300, 200, 519.9, 20, 2), (300, 200, 510, 20, 2),
    (500, 200, 600, 20, 2), (500, 0, 600, 20, 1), (700, 0, 600, 20, 1)])
def test_header_rows(left, right, width, gap, rows):
    assert header_rows(left, right, width, gap) == rows


@pytest.mark.parametrize("text, width, k", [(100, 200, 1.0), (200, 200, 1.0), (250, 200, 0.8), (1000, 200, 0.6)])
def test_shrink_factor(text, width, k):
    assert shrink_factor(text, width) == pytest.approx(k)


def test_gap_is_a_real_gap():
    assert GAP_EM > 0
    a = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], float)
    assert overlap(a, a + [5, 5]) and not overlap(a, a + [10.5, 0]) and not overlap(a, a + [0, 11])
