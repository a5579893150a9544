"""``jetdask demo`` end to end (small): sample, training, DY study with taggers, plots."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from PIL import Image

from conftest import REPO


@pytest.mark.slow
def test_demo_writes_the_plots(tmp_path):
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "jetdask.cli", "demo", "--out", str(out), "--events", "12000",
           "--epochs", "1", "--train-events", "6000", "--distortions", "fgsm0.05"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=1500, cwd=REPO)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    # each long step is named; one dashboard line; a clean shutdown
    for step in ("preprocessing pass 1/2", "preprocessing pass 2/2", "training DeepJet_nominal",
                 "training DeepJet_adversarial", "evaluation", "DY+jets study", "plotting"):
        assert f"jetdask: {step}" in p.stderr, step
    assert p.stderr.count("dashboard") == 1
    for noise in ("Traceback", "Worker process still alive", "CommClosedError"):
        assert noise not in p.stderr, p.stderr[-3000:]
    status = subprocess.run([sys.executable, "-m", "jetdask.cli", "status", str(out / "run")], capture_output=True,
                            text=True, timeout=300, cwd=REPO)
    assert status.returncode == 0 and "split 0" in status.stdout, status.stdout     # chunks planned to fit
    plots = out / "plots"
    assert f"plots in {plots}" in p.stdout and "data/MC chi2/ndf" in p.stdout
    expected = ["cutflow.png", "DeepJet_BvsL_all.png"]
    for tagger in ("DeepJet_nominal", "DeepJet_adversarial", "DeepJet_nominal-at-fgsm0.05"):
        expected += [f"{tagger}_{d}_{ch}.png" for d in ("BvsL", "CvsB", "CvsL") for ch in ("all", "mumu", "ee")]
    expected += [f"DeepJet_nominal_vs_DeepJet_adversarial_{d}_all.png" for d in ("BvsL", "CvsB", "CvsL")]
    for name in expected:
        path = plots / name
        assert path.exists() and path.stat().st_size > 10_000, name
    # the side-by-side figure is two panels wide (a legend that fits no corner widens a figure)
    with Image.open(plots / "DeepJet_nominal_vs_DeepJet_adversarial_BvsL_all.png") as im2, \
            Image.open(plots / "DeepJet_nominal_BvsL_all.png") as im1:
        (w2, h2), (w1, h1) = im2.size, im1.size
    assert w2 >= 1.95 * h2 and w1 >= 0.95 * h1 and h2 == h1
    summary = json.loads((plots / "summary.json").read_text())
    by_name = {(e["histogram"], e["channel"]): e for e in summary["plots"].values() if e.get("ndf")}
    for tagger in ("DeepJet_nominal", "DeepJet_adversarial", "DeepJet_adversarial@fgsm0.05"):
        e = by_name[(f"{tagger}_BvsL", "all")]
        assert e["chi2"] > 0 and e["ndf"] > 5
    assert summary["complete"]
    # the study ran with corrections and systematics: the figures carry the stat + syst band
    e = by_name[("DeepJet_BvsL", "all")]
    assert e["chi2_stat_syst"]["chi2"] <= e["chi2_stat"]["chi2"] and "jesTotal" in e["syst_impact_pct"]
    assert (plots / e["caption_file"]).exists()
    ev = out / "taggers" / "evaluation"
    auc = json.loads((ev / "auc.json").read_text())
    assert auc and all(os.path.getsize(ev / f) > 10_000 for f in ("roc_BvsL.png", "loss_curves.png"))

    # a rerun reuses every step and says so
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=1500, cwd=REPO)
    assert again.returncode == 0, again.stderr[-3000:]
    for reused in ("reusing the sample", "preprocessing: reusing", "training DeepJet_nominal: reusing",
                   "evaluation: reusing", "chunks done earlier, 0 to run", "plotting: reusing"):
        assert reused in again.stdout + again.stderr, reused
    assert "Traceback" not in again.stderr
