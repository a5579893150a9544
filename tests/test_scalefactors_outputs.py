"""What ``jetdask sf`` writes: the correction file, the summary, templates, the tagger comparison.

Run directories here are written by the engine's own output writer from toy histograms
(:mod:`test_scalefactors`), so the command reads them as it reads a finished run.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import uproot

from jetdask.cli import main
from jetdask.engine.outputs import write
from jetdask.scalefactors import compare, derive
from test_scalefactors import toy_run


def toy_run_dir(path, **kw):
    out, md = toy_run(**kw)
    out.run_dir = str(path)
    write(str(path), out, {"fileset": md, "analysis_kwargs": {}})
    return str(path), md


VAR = {"pileupUp": lambda pt, d, f: 1 + 0.2 * d, "pileupDown": lambda pt, d, f: 1 - 0.2 * d,
       "jesTotalUp": lambda pt, d, f: 1 + 0.001 * pt}


def test_cli_writes_json_summary_and_comparison(tmp_path, capsys):
    import correctionlib
    run, _ = toy_run_dir(tmp_path / "run", seed=11, n_mc=20_000, n_data=10_000,
                         syst=("nominal", *VAR), variations=VAR)
    sf = tmp_path / "sf.json"
    assert main(["sf", run, "--out", str(sf), "--wp", "toy=L:0.1,M:0.3", "--templates", str(tmp_path / "t.root"),
                 "--figure", str(tmp_path / "cmp.png")]) == 0
    text = capsys.readouterr().out
    assert "WP M" in text and "pT 20-40" in text and "toy BvsL" in text
    cset = correctionlib.CorrectionSet.from_file(str(sf))
    summ = json.loads((tmp_path / "sf_summary.json").read_text())
    wp = summ["wp"][0]
    assert [w["name"] for w in wp["working_points"]] == ["L", "M"]
    central = np.array(wp["central"]).reshape(wp["shape"])
    assert cset["toy_incl"].evaluate("central", "M", 0, 0.3, 25.0) == central[1, 0, 0]
    assert set(wp["groups"]) == {"statistic", "pileup", "jes"}     # the registry's groups
    rows = json.loads((tmp_path / "sf_comparison.json").read_text())
    assert len(rows) == 2 * 3 and {r["wp"] for r in rows} == {"L", "M"}
    assert (tmp_path / "cmp.png").stat().st_size > 10_000


def test_cli_refuses_a_run_without_sf_histograms(tmp_path, capsys):
    from jetdask.engine.outputs import RunOutput
    out = RunOutput({"MC": {}}, {"MC": {}}, {}, {"MC": {"complete": True}}, {}, [], str(tmp_path))
    write(str(tmp_path), out, {"fileset": {"MC": {}}})
    assert main(["sf", str(tmp_path), "--out", str(tmp_path / "sf.json")]) == 2
    err = capsys.readouterr().err
    assert "no sf_* histograms" in err and len(err.strip().splitlines()) == 1


def test_templates_hold_every_variation_and_add_up(tmp_path):
    from jetdask.scalefactors.templates import write_templates
    run, _ = toy_run_dir(tmp_path / "run", seed=12, n_mc=8000, n_data=4000, syst=("nominal", *VAR),
                         variations=VAR)
    n = write_templates(run, str(tmp_path / "t.root"))
    f = uproot.open(tmp_path / "t.root")
    names = {k.split(";")[0] for k in f.keys(recursive=True, filter_classname="TH1*")}
    assert len(names) == n
    for ch in ("all", "mumu", "ee"):
        for fl in ("b", "c", "light"):
            for suffix in ("", "_pileupUp", "_pileupDown", "_jesTotalUp", "_jesTotalDown"):
                assert f"{ch}/toy_BvsL/{fl}{suffix}" in names
        assert f"{ch}/toy_BvsL/data_obs" in names
    # data_obs holds every data jet; the channels add up to "all"
    assert f["all/toy_BvsL/data_obs"].values(flow=True).sum() == 4000
    for fl in ("light", "data_obs"):
        tot = f[f"all/toy_BvsL/{fl}"].values(flow=True)
        np.testing.assert_allclose(f[f"mumu/toy_BvsL/{fl}"].values(flow=True)
                                   + f[f"ee/toy_BvsL/{fl}"].values(flow=True), tot)
    # the one-sided jesTotal is mirrored: Up + Down = 2 nominal
    nom = f["all/toy_BvsL/light"].values()
    np.testing.assert_allclose(f["all/toy_BvsL/light_jesTotalUp"].values()
                               + f["all/toy_BvsL/light_jesTotalDown"].values(), 2 * nom)
    # pileupUp weights each light jet by 1 + 0.2 d: in bin [lo, hi) the ratio to nominal lies in
    # [1 + 0.2 lo, 1 + 0.2 hi]
    up = f["all/toy_BvsL/light_pileupUp"].values()
    edges = f["all/toy_BvsL/light"].axis().edges()
    ok = nom > 0
    r = up[ok] / nom[ok]
    assert ok.sum() >= 8
    assert np.all(r >= 1 + 0.2 * edges[:-1][ok] - 1e-12) and np.all(r <= 1 + 0.2 * edges[1:][ok] + 1e-12)


def test_comparison_table_distance_from_one():
    out, md = toy_run(seed=13, n_mc=20_000, n_data=10_000)
    res = derive(out, metadata=md, wps={"toy": "M:0.3"})
    t = res.table("toy", kind="wp_inclusive")
    rows = compare.records(res.wp_inclusive)
    for r, ip in zip(rows, range(3)):
        sigma = t.down[0, 0, ip] if t.central[0, 0, ip] > 1 else t.up[0, 0, ip]
        assert r["sigmas_from_1"] == pytest.approx((t.central[0, 0, ip] - 1) / sigma)
        assert r["pt"] == [[20.0, 40.0], [40.0, 80.0], [80.0, 1000.0]][ip]
    text = compare.format_table(res.wp_inclusive)
    assert text.count("pT ") == 3 and f"{rows[0]['sf']:.2f} " in text and f"({rows[0]['sigmas_from_1']:+.1f})" in text


def test_demo_summary_writes_the_file_and_figure(tmp_path):
    from jetdask.scalefactors.report import demo_summary
    run, _ = toy_run_dir(tmp_path / "run", seed=14, n_mc=8000, n_data=4000)
    text = demo_summary(run, str(tmp_path / "sf"))
    assert "WP L" in text and "toy BvsL" in text and str(tmp_path / "sf" / "sf.json") in text
    assert (tmp_path / "sf" / "sf.json").exists() and (tmp_path / "sf" / "sf_comparison.png").stat().st_size > 10_000
    empty = tmp_path / "empty"
    from jetdask.engine.outputs import RunOutput
    write(str(empty), RunOutput({"MC": {}}, {"MC": {}}, {}, {"MC": {"complete": True}}, {}, [], str(empty)),
          {"fileset": {"MC": {}}})
    assert "no sf_* histograms" in demo_summary(str(empty), str(tmp_path / "sf2"))
