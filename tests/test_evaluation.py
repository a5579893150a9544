"""Evaluation: numpy ROC/AUC against a brute-force pair count, figures and auc.json, the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest

import training_helpers as H
from jetdask.evaluation.metrics import auc, discriminant_values, flavour_groups, roc_curve

base, models = H.base, H.models   # the shared session fixtures (training_helpers)


def _pair_auc(score, sig, w):
    """P(score_s > score_b) + 0.5 P(=), weighted, by brute force over all pairs."""
    s, b = score[sig], score[~sig]
    ws, wb = w[sig], w[~sig]
    gt = (s[:, None] > b[None, :]) + 0.5 * (s[:, None] == b[None, :])
    return float((ws[:, None] * wb[None, :] * gt).sum() / (ws.sum() * wb.sum()))


def test_weighted_auc_matches_pair_counting():
    rng = np.random.default_rng(1)
    sig = rng.random(400) < 0.3
    score = np.round(rng.normal(sig * 0.8, 1.0), 1)            # ties on purpose
    w = rng.random(400) + 0.1
    fpr, tpr, thr = roc_curve(score, sig, w)
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == pytest.approx(1) and tpr[-1] == pytest.approx(1)
    assert np.all(np.diff(thr) < 0)
    assert auc(fpr, tpr) == pytest.approx(_pair_auc(score, sig, w), abs=1e-12)
    assert auc(*roc_curve(-score, sig, w)[:2]) == pytest.approx(1 - _pair_auc(score, sig, w), abs=1e-12)


def test_discriminants_and_flavour_groups():
    classes = ("b", "bb", "lepb", "c", "uds", "g")
    p = np.array([[0.5, 0.1, 0.1, 0.1, 0.1, 0.1], [0.0, 0.0, 0.0, 0.5, 0.5, 0.0]])
    d = discriminant_values(p, classes)
    assert d["BvsL"][0] == pytest.approx(0.7 / 0.9) and d["BvsL"][1] == 0
    assert d["CvsB"][1] == 1 and d["CvsL"][1] == pytest.approx(0.5)
    assert list(flavour_groups(np.array([0, 2, 3, 4, 5]), classes)) == ["b", "b", "c", "light", "light"]


def test_evaluate_writes_plots_and_auc_json(models, tmp_path):
    from jetdask.evaluation import evaluate
    s = H.sample(None)
    out = tmp_path / "eval"
    res = evaluate({"nominal": models["nominal"]["best"], "adversarial": models["adversarial"]["best"]}, s["run"],
                   str(out), epsilons=(0.1, 0.2), formats=("png", "pdf"))
    saved = json.loads((out / "auc.json").read_text())
    assert saved["models"].keys() == {"nominal", "adversarial"}
    for name in ("nominal", "adversarial"):
        m = saved["models"][name]
        assert m["auc"]["BvsL"] > 0.9
        assert set(m["robustness"]["BvsL"]) == {"0", "0.1", "0.2"}
        assert m["robustness"]["BvsL"]["0"] == m["auc"]["BvsL"]
        # bootstrap uncertainties: of the size the test statistics give, bands around the central values
        assert 0.001 < m["auc_std"]["BvsL"] < 0.05
        for eps, (lo, hi) in m["robustness_band"]["BvsL"].items():
            assert lo <= m["robustness"]["BvsL"][eps] <= hi and hi - lo < 0.1
    r = saved["models"]
    assert r["nominal"]["robustness"]["BvsL"]["0.2"] < r["nominal"]["auc"]["BvsL"]
    for stem in ("loss_curves", "roc_BvsL", "roc_CvsB", "roc_CvsL", "robustness_BvsL", "inputs",
                 "scores_nominal", "discriminants_adversarial"):
        for ext in ("png", "pdf"):
            p = out / f"{stem}.{ext}"
            assert p.exists() and p.stat().st_size > 5000, p
    assert res["n_jets"] == r["nominal"]["n_jets"] > 500
    assert saved["bootstrap"] == {"replicas": 200, "seed": 12345}


def test_cli_evaluate(models, tmp_path, capsys):
    from jetdask.cli.train import main
    s = H.sample(None)
    rc = main(["evaluate", f"nom={models['nominal']['best']}", "--preprocessed", s["run"], "--out",
               str(tmp_path / "ev"), "--epsilons", "0.1", "--max-jets", "400"])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0.5 < printed["nom"]["BvsL"] <= 1
    assert (tmp_path / "ev" / "roc_BvsL.png").exists()
    rc = main(["evaluate", "nom=/no/such.pt", "--preprocessed", s["run"], "--out", str(tmp_path / "x")])
    assert rc == 2 and "models[nom]" in capsys.readouterr().err
