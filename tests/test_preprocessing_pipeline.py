"""Preprocessing on synthetic PFNano: exact scaler, chunking-independent split, reweighting
closure, resubmission after a bad file, a real LocalCluster run, the FlavSplit labels, the CLI."""
from __future__ import annotations

import json
import os
import shutil

import awkward as ak
import numpy as np
import pytest
import uproot
import yaml

from jetdask.errors import ConfigError
from jetdask.preprocessing import label, reweight, shards, split
from jetdask.preprocessing.pipeline import PASS2, preprocess
from readfiles import read_json

# plots only in the reference run (they cost ~2 s)
CFG = {"outputs": {"plots": False}}
CFG_PLOTS = {"outputs": {"plots": True}}
MC = "DYJetsToLL_M-50"


@pytest.fixture(scope="session")
def prep_sample(tmp_path_factory):
    """Synthetic PFNano: 2 MC files of 2000 events with baskets of 500 events (a bad basket hits one
    1000-event chunk) and a small data file (which preprocessing must leave out), as a fileset.

    ``generate_sample`` writes serially under pytest (it forks only without other threads) and
    would also write 4000 data events; the two MC files are written in parallel spawned processes.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from jetdask.synthetic import generate_file
    from jetdask.synthetic.sample import DATA_DATASET, DY_XSEC_PB, MC_DATASET
    out = tmp_path_factory.mktemp("prep_sample")
    mc = [str(out / f"mc_{i}.root") for i in range(2)]
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        futs = [pool.submit(generate_file, p, 2000, 1, "mc", 0.0, 1 + 2000 * i, "zstd", 500) for i, p in enumerate(mc)]
        data = generate_file(str(out / "data_0.root"), 200, 1, "data", basket_events=500)
        for f in futs:
            f.result()
    fs = {MC_DATASET: {"files": {p: "Events" for p in mc}, "metadata": {"is_data": False, "xsec": DY_XSEC_PB}},
          DATA_DATASET: {"files": {data: "Events"}, "metadata": {"is_data": True, "lumi": 0.03}}}
    path = out / "fileset.json"
    path.write_text(json.dumps(fs))
    return str(path)


@pytest.fixture(scope="module")
def ref(prep_sample, tmp_path_factory):
    """Uninterrupted serial run, chunks of 1000 events."""
    run = tmp_path_factory.mktemp("prep_ref") / "run"
    out = preprocess(CFG_PLOTS, prep_sample, str(run), serial=True, chunk_size=1000, progress=False, verbose=False)
    assert out.complete, out.message
    return out


@pytest.fixture(scope="module")
def cluster_out(prep_sample, tmp_path_factory):
    """The same preprocessing on a real LocalCluster (2 worker processes), chunks of 10k events."""
    from distributed import Client, LocalCluster
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, memory_limit="2GiB", processes=True,
                           dashboard_address=":0", host="127.0.0.1")
    client = Client(cluster)
    try:
        run = tmp_path_factory.mktemp("prep_cluster") / "run"
        out = preprocess(CFG, prep_sample, str(run), client=client, chunk_size=10_000, progress=False, verbose=False)
    finally:
        client.close()
        cluster.close()
    assert out.complete, out.message
    return out


def _split_files(out, name):
    return [f for ds in sorted(out.pass2.array_files) for f in out.pass2.array_files[ds].get(name, [])]


def _tensors(out, s):
    return shards.load_tensors(os.path.join(out.run_dir, "tensors", s))


def _mc_events(fileset_path):
    with open(fileset_path) as f:
        fs = json.load(f)
    arrays = [uproot.open(p)[t].arrays(["run", "luminosityBlock", "event", "Jet_pt"])
              for p, t in fs[MC]["files"].items()]
    return ak.concatenate(arrays)


# ------------------------------------------------------------------------------------ outputs

def test_outputs_layout_and_consistency(ref):
    d = ref.run_dir
    for f in ("prep.json", "fileset.json", "weights.json", "scaler.json", "summary.json"):
        assert os.path.exists(os.path.join(d, f)), f
    for p in ("cutflow.png", "counts.png", "weights.png", "kinematics.png"):
        assert os.path.getsize(os.path.join(d, "plots", p)) > 1000, p
    prep = read_json(os.path.join(d, "prep.json"))
    assert prep["datasets"] == [MC]                                  # data datasets are not used
    feats = prep["features"]
    assert feats[0].startswith("Jet_DeepJet_") and feats[-2:] == ["Jet_pt", "Jet_eta"]
    assert any(f.startswith("Jet_DeepCSV_") for f in feats)
    assert not any("FlavSplit" in f or "Flavour" in f for f in feats)
    summ = read_json(os.path.join(d, "summary.json"))
    classes = summ["classes"]
    cut = summ["cutflow"]
    assert list(cut) == ["all", "pt", "eta", "jet_id", "gen_match", "leptons", "label"]
    totals = [cut[s]["total"] for s in cut]
    assert totals == sorted(totals, reverse=True) and totals[-1] > 5000
    # the undefined/tau jets are dropped; every class is populated in the training split
    assert cut["label"]["per_class"]["dropped"] == 0 and cut["all"]["per_class"]["dropped"] > 0
    for s in split.SPLITS:
        t = _tensors(ref, s)
        n = sum(summ["counts"][s][c]["after"] for c in classes)
        assert t["features"].shape == (n, len(feats)) and t["features"].dtype == np.float32
        assert isinstance(t["features"], np.memmap)
        assert t["label"].shape == (n,) and t["weight"].shape == (n,) and t["ids"].shape == (n, 6)
        assert t["columns"]["features"] == feats and t["columns"]["classes"] == classes
        assert np.isfinite(t["features"]).all()
        np.testing.assert_array_equal(np.bincount(t["label"], minlength=len(classes)),
                                      [summ["counts"][s][c]["after"] for c in classes])
    # shards: placeholders exactly where the bitmask says "defaulted", finite everywhere
    tab = shards.read_shards(_split_files(ref, "train"))
    mask = shards.read_mask(tab, len(feats))
    scaler = read_json(os.path.join(d, "scaler.json"))
    assert list(scaler) == feats
    n_def = 0
    for j, f in enumerate(feats):
        x = tab.column(f).to_numpy()
        assert np.isfinite(x).all(), f
        if mask[:, j].any():
            assert (x[mask[:, j]] == np.float32(scaler[f]["placeholder"])).all(), f
            assert x[~mask[:, j]].min(initial=np.inf) > scaler[f]["placeholder"], f   # placeholder below all valid
            n_def += 1
    assert n_def > 100          # empty DeepJet slots, -999 DeepCSV, rare NaN/inf
    assert (tab.column("split").to_numpy() == split.TRAIN).all()


def test_scaler_equals_single_numpy_and_excludes_defaults(ref):
    """Chunked map-reduce (8 chunks, Chan merge) == one numpy computation over the training jets."""
    feats = read_json(os.path.join(ref.run_dir, "prep.json"))["features"]
    scaler = read_json(os.path.join(ref.run_dir, "scaler.json"))
    tab = shards.read_shards(_split_files(ref, "train"))
    mask = shards.read_mask(tab, len(feats))
    checked = with_defaults = 0
    for j, f in enumerate(feats):
        x = tab.column(f).to_numpy().astype(np.float64)
        valid = x[~mask[:, j]]
        sc = scaler[f]
        assert sc["n"] == len(valid) and sc["n_defaulted"] == int(mask[:, j].sum()), f
        if len(valid) == 0:
            assert sc["mean"] == 0.0 and sc["std"] == 1.0
            continue
        mean, std = np.mean(valid), np.std(valid)
        assert sc["mean"] == pytest.approx(mean, rel=1e-9, abs=1e-12 * max(std, 1e-300)), f
        if std > 0:
            assert sc["std"] == pytest.approx(std, rel=1e-9), f
        else:
            assert sc["std"] == 1.0
        assert sc["default"] == pytest.approx((sc["placeholder"] - sc["mean"]) / sc["std"], rel=1e-12)
        checked += 1
        if mask[:, j].any() and not np.isclose(np.mean(x), mean, rtol=1e-3):
            with_defaults += 1      # including the placeholders would have changed the mean
    assert checked > 500 and with_defaults > 50
    # the tensors are the shards standardised with exactly these numbers
    t = _tensors(ref, "train")
    j = feats.index("Jet_pt")
    x = tab.column("Jet_pt").to_numpy().astype(np.float64)
    np.testing.assert_allclose(t["features"][:, j], (x - scaler["Jet_pt"]["mean"]) / scaler["Jet_pt"]["std"],
                               rtol=1e-6, atol=1e-6)


def test_split_same_for_1k_10k_and_one_chunk(ref, cluster_out, prep_sample):
    """Each jet's split: chunks of 1k (serial), 10k (LocalCluster: one chunk per file), and a single
    vectorised call over all events at once."""
    ev = _mc_events(prep_sample)
    splits_cfg = read_json(os.path.join(ref.run_dir, "prep.json"))["config"]["splits"]
    ref_split = split.event_splits(ev.run, ev.luminosityBlock, ev.event, splits_cfg)     # one call, all events
    key = {(int(r), int(lumi), int(e)): int(s) for r, lumi, e, s in
           zip(ev.run, ev.luminosityBlock, ev.event, ref_split)}
    seen = 0
    for s_idx, s in enumerate(split.SPLITS):
        a, b = _tensors(ref, s)["ids"], _tensors(cluster_out, s)["ids"]
        np.testing.assert_array_equal(a, b)                  # same jets, same order, same split
        for row in a:
            assert key[(int(row[1]), int(row[2]), int(row[3]))] == s_idx
        seen += len(a)
    assert seen > 5000
    # all jets of an event share the split
    ids = np.concatenate([_tensors(ref, s)["ids"] for s in split.SPLITS])
    assert len({tuple(r[1:4]) for r in ids}) < len(ids)


def test_reweighting_closure_chi2(ref):
    """Weighted (pT, eta) of every class matches the target: exactly on the training split the
    weights come from, within statistics (chi2) on the independent validation + test splits."""
    wm = reweight.WeightMap.load(os.path.join(ref.run_dir, "weights.json"))
    assert wm.info["target"] == "average" and wm.info["correct"] == "both"
    cols = ["Jet_pt", "Jet_eta", "label", "weight"]
    train = shards.read_shards(_split_files(ref, "train"), cols)
    held = shards.read_shards(_split_files(ref, "validation") + _split_files(ref, "test"), cols)
    n_train = train.num_rows
    chi2_tot = ndf_tot = 0
    for c, name in enumerate(wm.classes):
        for tab, exact in ((train, True), (held, False)):
            sel = tab.column("label").to_numpy() == c
            pt, eta = tab.column("Jet_pt").to_numpy()[sel], tab.column("Jet_eta").to_numpy()[sel]
            w = tab.column("weight").to_numpy()[sel]
            chi2, ndf = reweight.closure_chi2(wm, c, pt, eta, w)
            if exact:
                assert sel.sum() > 0 and ndf >= 1, name
                assert w.sum() == pytest.approx(n_train / len(wm.classes), rel=1e-9)   # "both": equal classes
                assert chi2 < 1e-12, (name, chi2)
            else:
                chi2_tot += chi2
                ndf_tot += ndf
        assert (wm.groups[c] >= 0).all()
        sums = np.bincount(wm.groups[c].ravel(), weights=wm.counts[c].ravel())
        assert (sums >= wm.info["min_count"]).all(), name          # bins merged until populated
    assert ndf_tot >= 20
    assert chi2_tot < ndf_tot + 4 * np.sqrt(2 * ndf_tot), (chi2_tot, ndf_tot)


def test_flavsplit_labels_on_synthetic(ref, prep_sample):
    with open(prep_sample) as f:
        path = next(iter(json.load(f)[MC]["files"]))
    t = uproot.open(path)["Events"]
    jets = ak.zip({k[4:]: t[k].array() for k in ("Jet_FlavSplit", "Jet_hadronFlavour", "Jet_partonFlavour",
                                                 "Jet_nBHadrons", "Jet_nCHadrons")})
    codes, how = label.flavour_codes(jets)
    assert how == "flavsplit"
    fs_codes = np.asarray(ak.flatten(jets.FlavSplit))
    np.testing.assert_array_equal(codes, fs_codes)
    # the hadron/parton path agrees with FlavSplit, up to leptonic b (not visible without gen leptons)
    hcodes, how = label.flavour_codes(jets, "hadron")
    assert how == "hadron"
    np.testing.assert_array_equal(hcodes, np.where(np.isin(fs_codes, [520, 521]), 500, fs_codes))
    # in the shards: flavour = FlavSplit code, label = its deepjet class, pass 1 took the FlavSplit path
    assert ref.pass1.counters[MC].get("label_path/flavsplit") == 4          # one per chunk
    lookup = label.class_lookup(label.SCHEMES["deepjet"])
    tab = shards.read_shards(_split_files(ref, "train"), ["flavour", "label"])
    fl, lab = tab.column("flavour").to_numpy(), tab.column("label").to_numpy()
    assert set(np.unique(fl)) <= set(lookup) and set(np.unique(fl)) >= {0, 1, 2, 400, 500, 510, 520}
    np.testing.assert_array_equal(lab, [lookup[int(x)] for x in fl])


def _corrupt_basket(path: str, branch: str, basket: int) -> tuple[int, bytes]:
    """Overwrite the middle of one basket in place; returns (offset, original bytes)."""
    b = uproot.open(path)["Events"][branch]
    seek, size = int(b.member("fBasketSeek")[basket]), int(b.member("fBasketBytes")[basket])
    off = seek + size // 2
    with open(path, "r+b") as f:
        f.seek(off)
        orig = f.read(256)
        f.seek(off)
        f.write(bytes(256))
    return off, orig


def _restore(path: str, off: int, orig: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(off)
        f.write(orig)


def _copy_sample(fileset_path, dest) -> str:
    with open(fileset_path) as f:
        fs = json.load(f)
    os.makedirs(dest, exist_ok=True)
    for ds in fs.values():
        ds["files"] = {shutil.copy(p, os.path.join(dest, os.path.basename(p))): t for p, t in ds["files"].items()}
    out = os.path.join(dest, "fileset.json")
    with open(out, "w") as f:
        json.dump(fs, f)
    return out


def test_bad_file_midway_then_resubmit_gives_identical_shards(ref, prep_sample, tmp_path, capsys):
    from jetdask.cli import main as jetdask_main
    fs = _copy_sample(prep_sample, tmp_path / "data")
    run = str(tmp_path / "run")
    out = preprocess(CFG, fs, run, serial=True, chunk_size=1000, progress=False, stop_after="pass1")
    assert out.stage == "pass1" and not out.complete
    # a basket of entries [1000, 1500) of the second MC file goes bad before pass 2
    bad = os.path.join(str(tmp_path / "data"), "mc_1.root")
    off, orig = _corrupt_basket(bad, "Jet_pt", 2)
    out = preprocess(CFG, fs, run, serial=True, progress=False, verbose=False)
    assert not out.complete and out.stage == "pass2" and "resubmit" in out.message
    assert [(f["path"], f["entry_start"]) for f in out.pass2.failed] == [(bad, 1000)]
    assert out.pass2.counts["done"] == 3 and not os.path.exists(os.path.join(run, "tensors"))
    # the file is repaired; `jetdask resubmit RUN/pass2-shards` rebuilds the pass from the ledger
    _restore(bad, off, orig)
    assert jetdask_main(["resubmit", os.path.join(run, PASS2), "--serial", "--no-progress"]) == 0
    out = preprocess(CFG, fs, run, serial=True, progress=False, verbose=False)
    assert out.complete
    # identical shards (same chunk ids, same content) and identical tensors, scaler and weights
    for s in split.SPLITS:
        a, b = _split_files(ref, s), _split_files(out, s)
        assert [os.path.basename(x) for x in a] == [os.path.basename(x) for x in b]
        for x, y in zip(a, b):
            assert shards.read_shards([x]).equals(shards.read_shards([y])), (s, x)
        ta, tb = _tensors(ref, s), _tensors(out, s)
        for k in ("features", "label", "weight", "ids", "defaulted"):
            np.testing.assert_array_equal(ta[k], tb[k])
    for f in ("scaler.json", "weights.json"):
        assert read_json(os.path.join(ref.run_dir, f)) == read_json(os.path.join(run, f))


@pytest.mark.cluster
def test_local_cluster_run_equals_serial(ref, cluster_out):
    sa = read_json(os.path.join(ref.run_dir, "scaler.json"))
    sb = read_json(os.path.join(cluster_out.run_dir, "scaler.json"))
    for f in sa:
        for k in ("mean", "std", "default"):
            assert sb[f][k] == pytest.approx(sa[f][k], rel=1e-12, abs=1e-300), (f, k)
    for s in split.SPLITS:
        ta, tb = _tensors(ref, s), _tensors(cluster_out, s)
        for k in ("label", "weight", "ids", "defaulted"):
            np.testing.assert_array_equal(ta[k], tb[k])
        np.testing.assert_allclose(ta["features"], tb["features"], rtol=1e-6, atol=1e-6)
    tp = cluster_out.summary["throughput"]
    assert tp["pass2_jets_per_s"] > 0
    print(f"pass 2 on 2 workers: {tp['pass2_jets_per_s']:.0f} jets/s read, {tp['pass2_kept_jets_per_s']:.0f} kept/s")


def test_cli_resume_and_config_errors(ref, prep_sample, tmp_path, capsys):
    from jetdask.cli.preprocess import add_parser, main
    cfg = tmp_path / "prep.yaml"
    cfg.write_text(yaml.safe_dump(CFG))
    # a finished directory: both passes are complete, only the tensors and summary are redone
    # (the outputs section may change between invocations: here the plots are switched off)
    rc = main([str(cfg), "--fileset", prep_sample, "--run-dir", ref.run_dir, "--serial", "--no-progress"])
    assert rc == 0 and "preprocessing summary" in capsys.readouterr().out
    # another config on the same directory is refused, naming the key
    with pytest.raises(ConfigError) as e:
        preprocess({"splits": {"seed": 3}}, prep_sample, ref.run_dir, serial=True)
    assert e.value.key == "config"
    bad = tmp_path / "bad.yaml"
    bad.write_text("reweighting:\n  target: charm\n")
    assert main([str(bad), "--fileset", prep_sample, "--run-dir", str(tmp_path / "x"), "--serial"]) == 2
    assert "reweighting.target" in capsys.readouterr().err
    bad.write_text("features: ['Jet_NoSuchThing_*']\n")
    assert main([str(bad), "--fileset", prep_sample, "--run-dir", str(tmp_path / "y"), "--serial"]) == 2
    assert "features[0]" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()      # nothing left behind
    # the subcommand plugs into an argparse parser (how `jetdask preprocess` is wired)
    import argparse
    ap = argparse.ArgumentParser(prog="jetdask")
    add_parser(ap.add_subparsers(dest="cmd"))
    args = ap.parse_args(["preprocess", "c.yaml", "--fileset", "f.json", "--run-dir", "r", "--workers", "2"])
    assert args.cmd == "preprocess" and args.workers == 2 and args.func.__name__ == "cmd_preprocess"
