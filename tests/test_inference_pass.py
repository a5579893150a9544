"""Layouts, the tagger pass and the engine runs on a small synthetic PFNano sample."""
from __future__ import annotations

import json
import math
import os
import re

import awkward as ak
import numpy as np
import pytest
import torch
import uproot

from jetdask.engine.runner import Runner
from jetdask.inference import (
    DEEPCSV,
    DEEPJET,
    PART,
    Tagger,
    TaggerScores,
    fit_scaler,
    save_checkpoint,
    tagger_columns,
    tagger_pass,
)
from jetdask.inference.layouts import SENTINEL, SlotLayout, kept_jets
from jetdask.models import DeepCSV, DeepJet, ParticleTransformer
from jetdask.nanoaod.columns import resolve_columns
from jetdask.nanoaod.events import events_from_arrays


@pytest.fixture(scope="session")
def sample(tmp_path_factory):
    from jetdask.synthetic import generate_sample
    return generate_sample(str(tmp_path_factory.mktemp("inference_sample")), events=400, files=1, seed=11)


def _files(fileset):
    from jetdask.fileset import load_fileset
    return {ds: list(d["files"]) for ds, d in load_fileset(fileset).to_dict().items()}


def _read(path, columns):
    t = uproot.open(path)["Events"]
    return events_from_arrays(t.arrays(resolve_columns(t.keys(), columns + ["run", "event"]), how=dict))


@pytest.fixture(scope="session")
def mc_events(sample):
    cols = tagger_columns([Tagger("a", "x", layout=n, classes=("b",)) for n in ("deepjet", "deepcsv", "part")])
    return _read(_files(sample)["DYJetsToLL_M-50"][0], cols)


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory, mc_events):
    """Two DeepJet-layout models and a ParT, tiny and random; the first with a fitted scaler."""
    d = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(5)
    recs, _, _ = kept_jets(mc_events.Jet, None)
    scaler = fit_scaler(DEEPJET.convert(recs))
    paths = {
        "dj_lstm": save_checkpoint(str(d / "dj_lstm.pt"), DeepJet(summary_sizes=(12, 6, 6), dense=(24, 24)),
                                   scaler=scaler, epoch=3, metadata={"note": "test"}),
        "dj_pool": save_checkpoint(str(d / "dj_pool.pt"), DeepJet(summary="pool", summary_sizes=(12, 6, 6),
                                                                  dense=(24,))),
        "part": save_checkpoint(str(d / "part.pt"), ParticleTransformer(
            embed_dims=(16,), n_heads=2, n_layers=1, n_cls_layers=1, pair_dims=(8,), ffn_ratio=2)),
        "csv": save_checkpoint(str(d / "csv.pt"), DeepCSV(hidden=(16,))),
    }
    part_scaler = str(d / "part_scaler.json")
    with open(part_scaler, "w") as f:
        json.dump(fit_scaler(PART.convert(recs), inputs=["features"]), f)
    paths["part_scaler"] = part_scaler
    return paths


def _three(ck, **kw):
    return [Tagger("dj_lstm", ck["dj_lstm"], **kw), Tagger("dj_pool", ck["dj_pool"], **kw),
            Tagger("part", ck["part"], scaler=ck["part_scaler"], **kw)]


# ----------------------------------------------------------------------------- conversion

def test_columns_resolve_on_synthetic_files(sample):
    t = uproot.open(_files(sample)["DoubleMuon"][0])["Events"]
    cols = resolve_columns(t.keys(), tagger_columns([Tagger("a", "x", layout="deepjet", classes=("b",)),
                                                     Tagger("p", "x", layout="part", classes=("b",))]))
    assert sum(c.startswith("Jet_DeepJet_") for c in cols) == 602     # 603 branches with Jet_FlavSplit (MC)
    assert "PFCands_pt" in cols and "JetPFCands_jetIdx" in cols and "Jet_hadronFlavour" not in cols


def test_deepjet_conversion_matches_branches(mc_events):
    jets = mc_events.Jet
    mask = jets.pt > 25
    recs, sel, _ = kept_jets(jets, mask)
    conv = DEEPJET.convert(recs)
    ref = ak.flatten(jets[mask])
    assert conv.n == len(ref) and conv.arrays["cpf"].shape == (len(ref), 25, 16)
    rng = np.random.default_rng(0)
    for j in rng.choice(len(ref), 40, replace=False):
        jet = ref[int(j)]
        for name, prefix, count in (("cpf", "Cpfcan", "nCpfcand"), ("npf", "Npfcan", "nNpfcand"),
                                    ("sv", "sv", "nsv")):
            spec = next(s for s in DEEPJET.specs if s.name == name)
            n = jet[f"DeepJet_{count}"]
            for s in range(spec.slots):
                for k, f in enumerate(spec.features):
                    raw = float(jet[f"DeepJet_{prefix}_{f}_{s}"])
                    ok = s < n and math.isfinite(raw)
                    assert conv.valid[name][j, s, k] == ok
                    assert conv.arrays[name][j, s, k] == (np.float32(raw) if ok else 0.0)
        for k, f in enumerate(DEEPJET.specs[0].features):
            raw = float(jet[f])
            ok = math.isfinite(raw) and raw != SENTINEL and not (f.endswith("AboveCharm") and raw == -1)
            assert conv.valid["glob"][j, k] == ok and conv.arrays["glob"][j, k] == (np.float32(raw) if ok else 0)
    assert not conv.valid["glob"].all() and not conv.valid["cpf"].all()    # defaults really occur


def test_deepcsv_conversion(mc_events):
    recs, _, _ = kept_jets(mc_events.Jet, None)
    conv = DEEPCSV.convert(recs)
    flat = ak.flatten(mc_events.Jet)
    x = conv.arrays["x"]
    n_tracks = ak.to_numpy(flat["DeepCSV_jetNSelectedTracks"])
    n_etarel = ak.to_numpy(flat["DeepCSV_jetNTracksEtaRel"])
    for k, f in enumerate(DEEPCSV.specs[0].features):
        raw = ak.to_numpy(flat[f]).astype(np.float32)
        ok = np.isfinite(raw) & (raw != SENTINEL)
        slot = re.fullmatch(r"DeepCSV_track\w+_(\d)", f)       # track slot i is empty where i >= the count
        if slot:
            ok &= int(slot.group(1)) < (n_etarel if "EtaRel" in f else n_tracks)
        if f.endswith("AboveCharm"):
            ok &= raw != -1
        np.testing.assert_array_equal(conv.valid["x"][:, k], ok)
        np.testing.assert_array_equal(x[:, k], np.where(ok, raw, 0))


def test_part_conversion_matches_python_loops(mc_events):
    jets = mc_events.Jet
    mask = jets.pt > 20
    recs, _, _ = kept_jets(jets, mask)
    conv = PART.convert(recs)
    kept = ak.to_list(ak.flatten(jets[mask])[["pt", "eta", "phi", "mass", "pfcands"]])
    feats = PART.specs[0].features
    for j in range(0, len(kept), max(1, len(kept) // 25)):
        jet = kept[j]
        cands = sorted(jet["pfcands"], key=lambda c: -c["pfcand"]["pt"])[:50]
        assert conv.arrays["mask"][j, 0].sum() == len(cands)
        for s, c in enumerate(cands):
            p = c["pfcand"]
            e = math.sqrt((p["pt"] * math.cosh(p["eta"])) ** 2 + p["mass"] ** 2)
            expect = {"log_pt": math.log(p["pt"]), "log_e": math.log(e), "deta": p["eta"] - jet["eta"],
                      "charge": p["charge"], "btagSip3dSig": c["btagSip3dSig"],
                      "is_photon": float(abs(p["pdgId"]) == 22)}
            for name, v in expect.items():
                assert conv.arrays["features"][j, feats.index(name), s] == pytest.approx(v, abs=1e-4), name
            vec = [p["pt"] * math.cos(p["phi"]), p["pt"] * math.sin(p["phi"]), p["pt"] * math.sinh(p["eta"]), e]
            np.testing.assert_allclose(conv.arrays["vectors"][j, :, s], vec, rtol=1e-5, atol=1e-5)
        assert not conv.arrays["features"][j, :, len(cands):].any()


def test_conversion_of_selected_events_is_the_subset(mc_events):
    sub = mc_events[np.asarray(mc_events.event) % 3 == 1]
    full_recs, _, _ = kept_jets(mc_events.Jet, mc_events.Jet.pt > 20)
    sub_recs, _, _ = kept_jets(sub.Jet, sub.Jet.pt > 20)
    full_ev = np.repeat(np.asarray(mc_events.event), ak.to_numpy(ak.sum(mc_events.Jet.pt > 20, axis=1)))
    pick = full_ev % 3 == 1
    for layout in (DEEPJET, PART):
        a, b = layout.convert(full_recs), layout.convert(sub_recs)
        for name in a.arrays:
            np.testing.assert_array_equal(a.arrays[name][pick], b.arrays[name])


# ----------------------------------------------------------------------------- the pass

def _flat_scores(events, names, mask):
    return {n: np.stack([ak.to_numpy(ak.flatten(events.Jet[n][c][mask])) for c in events.Jet[n].fields], 1)
            for n in names}


def test_pass_adds_fields_and_minus_one(mc_events, checkpoints):
    taggers = _three(checkpoints) + [Tagger("csv", checkpoints["csv"])]
    mask = (mc_events.Jet.pt > 20) & (abs(mc_events.Jet.eta) < 2.5)
    out = tagger_pass(mc_events, taggers, mask)
    for t in taggers:
        rec = out.Jet[t.name]
        assert set(rec.fields) >= {"b", "bb", "lepb", "c", "uds", "g", "BvsL", "CvsB", "CvsL", "BvsC"}
        assert ak.to_list(ak.num(rec.b)) == ak.to_list(ak.num(mc_events.Jet))
        probs = np.stack([ak.to_numpy(ak.flatten(rec[c][mask])) for c in ("b", "bb", "lepb", "c", "uds", "g")])
        np.testing.assert_allclose(probs.sum(0), 1, atol=1e-5)
        assert np.all(ak.to_numpy(ak.flatten(rec.b[~mask])) == -1)
        assert np.all(ak.to_numpy(ak.flatten(rec.BvsL[~mask])) == -1)
    assert out.Jet.pt.tolist() == mc_events.Jet.pt.tolist()
    lead = out.Jet[ak.num(out.Jet) > 0][:, 0]
    assert np.allclose(ak.to_numpy(lead.deltaR(lead)), 0)           # vector behaviour kept


def test_pass_on_selected_events_equals_the_subset(mc_events, checkpoints):
    sel = np.asarray(mc_events.event) % 2 == 0
    taggers = _three(checkpoints)
    whole = tagger_pass(mc_events, taggers, mc_events.Jet.pt > 20)
    sub_events = mc_events[sel]
    sub = tagger_pass(sub_events, taggers, sub_events.Jet.pt > 20)
    for t in taggers:
        np.testing.assert_allclose(ak.to_numpy(ak.flatten(sub.Jet[t.name].b)),
                                   ak.to_numpy(ak.flatten(whole.Jet[t.name].b[sel])), atol=1e-6)


def test_batch_size_does_not_change_scores(mc_events, checkpoints):
    mask = mc_events.Jet.pt > 20
    names = [t.name for t in _three(checkpoints)]
    ref = _flat_scores(tagger_pass(mc_events, _three(checkpoints), mask, batch_size=4096), names, mask)
    for bs in (64,):
        got = _flat_scores(tagger_pass(mc_events, _three(checkpoints), mask, batch_size=bs), names, mask)
        for n in names:
            np.testing.assert_allclose(got[n], ref[n], atol=1e-6, rtol=0)


def test_conversion_shared_between_taggers(mc_events, checkpoints, monkeypatch):
    calls = []
    orig = SlotLayout.convert

    def counting(self, recs):
        calls.append(self.name)
        return orig(self, recs)
    monkeypatch.setattr(SlotLayout, "convert", counting)
    taggers = _three(checkpoints) + [Tagger("dj_lstm@noise0.2", checkpoints["dj_lstm"], distortion="noise0.2")]
    tagger_pass(mc_events, taggers, mc_events.Jet.pt > 20)
    assert calls == ["deepjet"]


def test_noise_is_independent_of_chunking(mc_events, checkpoints):
    t = Tagger("dj_lstm", checkpoints["dj_lstm"])
    taggers = [t, t.variant("noise0.5")]
    whole = tagger_pass(mc_events, taggers, None)
    parts = [tagger_pass(mc_events[a:b], taggers, None) for a, b in ((0, 150), (150, len(mc_events)))]
    joined = ak.concatenate([p.Jet["dj_lstm@noise0.5"].b for p in parts])
    np.testing.assert_allclose(ak.to_numpy(ak.flatten(joined)),
                               ak.to_numpy(ak.flatten(whole.Jet["dj_lstm@noise0.5"].b)), atol=1e-6)
    assert not np.allclose(ak.to_numpy(ak.flatten(whole.Jet["dj_lstm@noise0.5"].b)),
                           ak.to_numpy(ak.flatten(whole.Jet["dj_lstm"].b)), atol=1e-4)


def test_fgsm_variant_lowers_truth_class_score(mc_events, checkpoints):
    t = Tagger("dj_lstm", checkpoints["dj_lstm"])
    mask = mc_events.Jet.pt > 20
    out = tagger_pass(mc_events, [t, t.variant("fgsm0.05")], mask, is_data=False)
    hf = ak.to_numpy(ak.flatten(mc_events.Jet.FlavSplit[mask]))
    nom, adv = ak.flatten(out.Jet["dj_lstm"][mask]), ak.flatten(out.Jet["dj_lstm@fgsm0.05"][mask])
    is_b = hf == 500
    assert is_b.sum() > 5
    assert np.mean(ak.to_numpy(adv.b)[is_b]) < np.mean(ak.to_numpy(nom.b)[is_b])
    data = tagger_pass(mc_events, [t, t.variant("fgsm0.05")], mask, is_data=True)   # own prediction
    own = np.argmax(np.stack([ak.to_numpy(nom[c]) for c in DeepJet.classes]), 0)
    advd = np.stack([ak.to_numpy(ak.flatten(data.Jet["dj_lstm@fgsm0.05"][c][mask])) for c in DeepJet.classes])
    nomd = np.stack([ak.to_numpy(nom[c]) for c in DeepJet.classes])
    idx = np.arange(len(own))
    assert np.mean(advd[own, idx]) < np.mean(nomd[own, idx])


# ----------------------------------------------------------------------------- the engine

def _run(analysis, sample, run_dir, **kw):
    with Runner(analysis, sample, str(run_dir), progress=False, **kw) as r:
        out = r.run()
    assert out.complete, out.failed
    return out


def _table(out, dataset):
    arr = out.arrays("jets", dataset)
    order = np.lexsort((ak.to_numpy(arr.jet), ak.to_numpy(arr.event)))
    return arr[order]


def _assert_same(a, b, names, datasets=("DYJetsToLL_M-50", "DoubleMuon")):
    for ds in datasets:
        ta, tb = _table(a, ds), _table(b, ds)
        assert ta.event.tolist() == tb.event.tolist() and ta.jet.tolist() == tb.jet.tolist()
        assert len(ta) > 100
        for n in names:
            for c in ta[n].fields:
                np.testing.assert_allclose(ak.to_numpy(ta[n][c]), ak.to_numpy(tb[n][c]), atol=1e-6, rtol=0)
        assert a.counters[ds]["jets"] == b.counters[ds]["jets"]


def _taggers_with_noise(ck):
    taggers = _three(ck)
    return taggers + [taggers[0].variant("noise0.3")]


@pytest.fixture(scope="session")
def one_chunk(sample, checkpoints, tmp_path_factory):
    return _run(TaggerScores(_taggers_with_noise(checkpoints)), sample, tmp_path_factory.mktemp("one"),
                serial=True, chunk_size=10_000)


def test_one_chunk_run_outputs(one_chunk):
    assert "hadronFlavour" in _table(one_chunk, "DYJetsToLL_M-50").fields
    assert "hadronFlavour" not in _table(one_chunk, "DoubleMuon").fields
    assert one_chunk.hists["DoubleMuon"]["BvsL/dj_lstm"].sum() == one_chunk.counters["DoubleMuon"]["jets"]


def test_engine_many_chunks_and_small_batches_equal_one_chunk(sample, checkpoints, one_chunk, tmp_path):
    from jetdask.fileset import load_fileset
    mc_only = {"DYJetsToLL_M-50": load_fileset(sample).to_dict()["DYJetsToLL_M-50"]}   # reading dominates: one dataset
    fileset = tmp_path / "mc.json"
    fileset.write_text(json.dumps(mc_only))
    taggers = _taggers_with_noise(checkpoints)
    many = _run(TaggerScores(taggers, batch_size=64), str(fileset), tmp_path / "many", serial=True,
                chunk_size=100)
    assert len(many.array_files["DYJetsToLL_M-50"]["jets"]) == 4
    _assert_same(one_chunk, many, [t.name for t in taggers], datasets=["DYJetsToLL_M-50"])


@pytest.mark.cluster
def test_engine_on_local_cluster_equals_serial(sample, checkpoints, one_chunk, tmp_path):
    from distributed import Client, LocalCluster

    from jetdask.inference.batching import torch_threads
    taggers = _taggers_with_noise(checkpoints)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      host="127.0.0.1", memory_limit="2GiB") as cluster, Client(cluster) as client:
        out = _run(TaggerScores(taggers, batch_size=200), sample, tmp_path / "dist", client=client, chunk_size=200)
        threads = client.submit(torch_threads, pure=False).result()
    _assert_same(one_chunk, out, [t.name for t in taggers])
    assert len(out.array_files["DoubleMuon"]["jets"]) == 2
    if not os.environ.get("JETDASK_TORCH_THREADS"):
        assert threads == max(1, (os.cpu_count() or 1) // 2)    # 2 one-thread workers share the cores
