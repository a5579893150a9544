"""Labelling and a full preprocessing on the real PFNano file (hadron/parton flavour path: no FlavSplit)."""
from __future__ import annotations

import json
import os

import uproot

from conftest import real_file
from jetdask.nanoaod import io
from jetdask.nanoaod.events import events_from_arrays
from jetdask.preprocessing import label, shards, split
from jetdask.preprocessing.pipeline import preprocess
from readfiles import read_json

DEEPJET_CLASS = {500: "b", 510: "bb", 511: "bb", 520: "lepb", 521: "lepb", 400: "c", 410: "c", 411: "c",
                 1: "uds", 2: "uds", 0: "g"}


def plain_python_code(hadron: int, parton: int, n_b: int, n_c: int) -> int:
    """Independent, jet-by-jet statement of the hadron/parton labelling documented in label.py."""
    if hadron == 5:
        if n_b > 1:
            return 511 if parton == 21 else 510
        return 500
    if hadron == 4:
        if n_c > 1:
            return 411 if parton == 21 else 410
        return 400
    if parton == 21:
        return 0
    if abs(parton) in (1, 2):
        return 1
    if abs(parton) == 3:
        return 2
    return 1000


def _truth_lists(path):
    t = uproot.open(path)["Events"]
    names = ("Jet_hadronFlavour", "Jet_partonFlavour", "Jet_nBHadrons", "Jet_nCHadrons")
    return [t[n].array().tolist() for n in names]


def test_hadron_parton_labels_on_real_pfnano():
    path = real_file("pfnano.root")
    tree = io.open_tree(path, "Events", cache=False)
    assert "Jet_FlavSplit" not in tree.keys()
    branches = ["run", "luminosityBlock", "event", "nJet", "Jet_pt", "Jet_hadronFlavour", "Jet_partonFlavour",
                "Jet_nBHadrons", "Jet_nCHadrons"]
    events = events_from_arrays(io.read_arrays(tree, branches, 0, tree.num_entries, path))
    codes, how = label.flavour_codes(events.Jet)
    assert how == "hadron"
    had, par, nb, nc = _truth_lists(path)
    want = [plain_python_code(h, p, b, c) for ev in zip(had, par, nb, nc) for h, p, b, c in zip(*ev)]
    assert codes.tolist() == want
    assert len(want) == 64 and {400, 0, 1, 2, 1000} <= set(want)       # charm, gluon, ud, s and unmatched jets
    cls = label.class_index(codes, label.SCHEMES["deepjet"])
    names = list(label.SCHEMES["deepjet"])
    assert [names[i] if i >= 0 else None for i in cls] == [DEEPJET_CLASS.get(c) for c in want]
    # coarser scheme: b, bb, c, udsg
    cls = label.class_index(codes, label.SCHEMES["deepcsv"])
    assert all((i == 3) == (c in (0, 1, 2)) for i, c in zip(cls, want))


def test_preprocess_real_pfnano(tmp_path):
    path = real_file("pfnano.root")
    fs = tmp_path / "fileset.json"
    fs.write_text(json.dumps({"real": {"files": {path: "Events"}, "metadata": {"is_data": False}}}))
    cfg = {"features": ["Jet_DeepCSV_*", "Jet_pt", "Jet_eta"], "reweighting": {"min_count": 3},
           "outputs": {"plots": False}}
    out = preprocess(cfg, str(fs), str(tmp_path / "run"), serial=True, progress=False, verbose=False)
    assert out.complete
    assert out.pass1.counters["real"]["label_path/hadron"] == 1
    feats = read_json(tmp_path / "run" / "prep.json")["features"]
    assert len(feats) == 67 and all(f.startswith("Jet_DeepCSV_") for f in feats[:-2])
    # every kept jet carries the label of the plain-python labelling, in its event's split
    had, par, nb, nc = _truth_lists(path)
    t = uproot.open(path)["Events"]
    ids = t.arrays(["run", "luminosityBlock", "event"], library="np")
    ev_split = split.event_splits(ids["run"], ids["luminosityBlock"], ids["event"],
                                  {"train": 0.8, "validation": 0.1, "test": 0.1, "seed": 0})
    event_row = {int(e): i for i, e in enumerate(ids["event"])}
    classes = list(label.SCHEMES["deepjet"])
    n = 0
    for s_idx, s in enumerate(split.SPLITS):
        tens = shards.load_tensors(os.path.join(out.run_dir, "tensors", s))
        for lab, row in zip(tens["label"], tens["ids"]):
            i = event_row[int(row[3])]
            code = plain_python_code(had[i][row[4]], par[i][row[4]], nb[i][row[4]], nc[i][row[4]])
            assert classes[lab] == DEEPJET_CLASS[code]
            assert ev_split[i] == s_idx
            n += 1
    assert n == out.summary["cutflow"]["label"]["total"] > 20
    scaler = read_json(tmp_path / "run" / "scaler.json")
    # DeepCSV -999 defaults and the uninitialised track slots of real PFNano (values up to 7e31
    # beyond jetNSelectedTracks) are excluded from the scaler
    assert all(abs(v["mean"]) < 500 and v["std"] < 1e4 for k, v in scaler.items() if k.startswith("Jet_DeepCSV_"))
    assert scaler["Jet_DeepCSV_trackSip2dSig_5"]["n"] < scaler["Jet_DeepCSV_trackSip2dSig_0"]["n"]
    assert any(v["n_defaulted"] > 0 for v in scaler.values())
