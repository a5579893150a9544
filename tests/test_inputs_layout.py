"""One definition of the inputs from ROOT to model: the preprocessing writes its tensors through the
inference layout, so for the same jets the training inputs equal what the inference pass builds from
the ROOT file, checkpoints give the same scores in both, the scaler is the exact pooled statistics of
the training tensors, and on the real PFNano file no input leaves the range seen in training."""
from __future__ import annotations

import json
import os

import awkward as ak
import numpy as np
import pytest
import torch
import uproot

import training_helpers as H
from conftest import real_file
from jetdask.errors import ConfigError
from jetdask.inference import Scaler, Tagger, get_layout, tagger_columns, tagger_pass
from jetdask.inference.layouts import Converted, InputSpec, kept_jets
from jetdask.inference.registry import load_model
from jetdask.preprocessing import layout_tensors, scale
from jetdask.training.data import SplitData

LAYOUTS = ("deepjet", "deepcsv", "part", "pn")


base, synth = H.base, H.synth   # the shared session fixtures (training_helpers)


def _jet_rows(data, counts):
    """Flat index, among all jets of the file, of every row of a split (ids: entry, jet index)."""
    ids = np.asarray(data.ids)[data.rows]
    return (np.cumsum(counts) - counts)[ids[:, 5]] + ids[:, 4]


@pytest.mark.parametrize("layout", ("deepjet", "deepcsv", "part"))
def test_training_inputs_equal_the_inference_inputs_from_root(base, synth, layout):
    run = H.layout_run(base, layout)
    lay = get_layout(layout)
    data = SplitData(run, "test", layout, in_memory=False)
    ev = H.read_events(synth["mc"], lay.columns)
    recs, _, counts = kept_jets(ev[lay.jets], None)
    conv = lay.convert(recs.take(_jet_rows(data, counts)))
    expected = Scaler.load(data.scaler).apply(conv)
    got, masks = data.arrays(np.arange(len(data)))
    assert len(data) > 500
    for spec in lay.specs:
        e, g = expected[spec.name], got[spec.name]
        np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-6 * max(1.0, float(np.abs(e).max())), err_msg=spec.name)
        if spec.distort:
            np.testing.assert_array_equal(masks[spec.name], conv.valid[spec.name] & ~spec.integer_mask())
    # missing entries exist and take the scaler's default, not a scaled raw value
    first = lay.specs[0]
    assert (~conv.valid[first.name]).any() and conv.valid[first.name].any()


def test_deepcsv_empty_track_slots_are_missing_in_training_and_inference(base, synth):
    """Independent of the layout code: slot i of a DeepCSV track variable is missing where i >= the
    branch's count; the training tensors hold exactly the scaler default there."""
    run = H.layout_run(base, "deepcsv")
    data = SplitData(run, "train", "deepcsv", in_memory=False)
    raw = uproot.open(synth["mc"])["Events"].arrays(
        ["Jet_DeepCSV_trackSip2dSig_2", "Jet_DeepCSV_trackEtaRel_1", "Jet_DeepCSV_jetNSelectedTracks",
         "Jet_DeepCSV_jetNTracksEtaRel"], library="ak")
    counts = ak.to_numpy(ak.num(raw["Jet_DeepCSV_jetNSelectedTracks"]))
    rows = _jet_rows(data, counts)
    flat = {k: ak.to_numpy(ak.flatten(raw[k]))[rows] for k in raw.fields}
    got, _ = data.arrays(np.arange(len(data)))
    sc = data.scaler["inputs"]["x"]
    feats = sc["features"]
    for f, cnt, i in (("DeepCSV_trackSip2dSig_2", "Jet_DeepCSV_jetNSelectedTracks", 2),
                      ("DeepCSV_trackEtaRel_1", "Jet_DeepCSV_jetNTracksEtaRel", 1)):
        j = feats.index(f)
        empty = i >= flat[cnt]
        assert empty.any() and (~empty).any()
        np.testing.assert_array_equal(got["x"][empty, j], np.float32(sc["default"][j]))
        x = flat[f"Jet_{f}"][~empty].astype(np.float32)
        ok = x != -999
        scaled = ((x[ok] - np.float32(sc["mean"][j])) / np.float32(sc["std"][j])).astype(np.float32)
        np.testing.assert_allclose(got["x"][~empty, j][ok], scaled, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("layout", ("deepjet", "deepcsv", "part"))
def test_pooled_scaler_equals_numpy_on_the_training_tensors(base, layout):
    run = H.layout_run(base, layout)
    lay = get_layout(layout)
    t = layout_tensors.load_split(os.path.join(run, "tensors", "train"), mmap=True)
    with open(os.path.join(run, "scaler.json")) as f:
        sc = json.load(f)["inputs"]
    for spec in lay.specs:
        if not spec.scale:
            assert spec.name not in sc
            continue
        x = layout_tensors.feature_columns(spec, np.asarray(t["inputs"][spec.name])).astype(np.float64)
        ok = layout_tensors.feature_columns(spec, np.asarray(t["valid"][spec.name]))
        for j, f in enumerate(spec.features):
            v = x[ok[:, j], j]
            s = sc[spec.name]
            assert s["n"][j] == len(v), (spec.name, f)
            if not len(v):
                continue
            mean, std = v.mean(), v.std()
            np.testing.assert_allclose(s["mean"][j], mean, rtol=1e-9, atol=1e-12, err_msg=f"{spec.name}/{f}")
            np.testing.assert_allclose(s["std"][j], std, rtol=1e-9, atol=1e-12, err_msg=f"{spec.name}/{f}")
            np.testing.assert_allclose(s["sum"][j], v.sum(), rtol=1e-9, atol=1e-9)
            np.testing.assert_allclose(s["m2"][j], ((v - mean) ** 2).sum(), rtol=1e-9, atol=1e-9)
            # min over the valid training entries (the other splits do not enter); the default lies below it
            assert s["min"][j] == v.min() and s["default"][j] < (s["min"][j] - s["mean"][j]) / (std or 1.0)


def test_constant_feature_pooled_over_chunks_has_std_zero_and_scales_to_zero():
    spec = InputSpec("a", ("const", "x"), 3)
    lay = _OneInput(spec)
    rng = np.random.default_rng(1)
    tables, chunks = [], []
    for n in (5, 17, 1):
        x = np.stack([np.full((n, 3), 0.25, np.float32), rng.normal(size=(n, 3)).astype(np.float32)], axis=-1)
        ok = rng.random((n, 3, 2)) < 0.7
        x[~ok] = 0
        conv = Converted((spec,), {"a": x}, {"a": ok}, n)
        tables.append(layout_tensors.chunk_table(lay, conv, np.ones(n, bool)))
        chunks.append((x, ok))
    table = scale.merge_tables(tables)
    dcfg = {"placeholder": "auto", "auto_margin": 1.0, "fallback_placeholder": -1.0}
    sc = layout_tensors.build_scaler("one", lay, table, dcfg)["inputs"]["a"]
    allx = np.concatenate([c[0].reshape(-1, 2) for c in chunks]).astype(np.float64)
    allok = np.concatenate([c[1].reshape(-1, 2) for c in chunks])
    assert sc["std"][0] == 0.0 and sc["mean"][0] == 0.25 and sc["n"][0] == allok[:, 0].sum()
    v = allx[allok[:, 1], 1]
    np.testing.assert_allclose([sc["mean"][1], sc["std"][1]], [v.mean(), v.std()], rtol=1e-12)
    out = Scaler.load({"inputs": {"a": sc}}).apply(Converted((spec,), {"a": chunks[0][0]}, {"a": chunks[0][1]}, 5))
    a = out["a"]
    assert np.all(a[..., 0][chunks[0][1][..., 0]] == 0.0)                 # constant: x - mean = 0
    assert np.all(a[..., 0][~chunks[0][1][..., 0]] == np.float32(sc["default"][0]))
    assert sc["default"][0] == pytest.approx(-1.0)                           # one (unit) std below the minimum


class _OneInput:
    def __init__(self, spec):
        self.specs = (spec,)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_checkpoint_scores_in_tagger_pass_equal_the_training_side(base, synth, layout):
    """The checkpoint trained on the layout tensors gives, in tagger_pass on the ROOT file, the scores
    the model gives on the training tensors of the same jets."""
    summary = H.layout_model(base, layout)
    ck = torch.load(summary["best"], weights_only=True)
    assert ck["layout"] == layout
    data = SplitData(H.layout_run(base, layout), "test", layout, ck["scaler"], in_memory=False, limit=400, seed=2)
    t = Tagger(layout, summary["best"], device="cpu")
    model = load_model(t).module
    x, _ = data.arrays(np.arange(len(data)))
    with torch.no_grad():
        mine = torch.softmax(model(*[torch.from_numpy(x[s.name]) for s in data.specs]), dim=1).numpy()
    ev = H.read_events(synth["mc"], tagger_columns([t]))
    out = tagger_pass(ev, [t], None, is_data=False)
    for c, cls in enumerate(data.classes):
        got = ak.to_numpy(ak.flatten(out.Jet[layout][cls]))[_jet_rows(data, ak.to_numpy(ak.num(ev.Jet)))]
        np.testing.assert_allclose(got, mine[:, c], rtol=1e-5, atol=1e-6, err_msg=cls)


def test_a_model_of_another_layout_is_refused(base):
    from jetdask.training.loop import train
    cfg = H.config(epochs=1)
    cfg["model"] = H.TINY_MODELS["deepcsv"]
    with pytest.raises(ConfigError, match="deepcsv") as err:
        train(cfg, preprocessed=H.layout_run(base, "deepjet"), out=os.path.join(base, "refused"))
    assert err.value.key == "model.name"


@pytest.mark.parametrize("layout", ("deepcsv", "part"))
def test_real_pfnano_inputs_stay_in_the_training_range(tmp_path, layout):
    """A model trained on every jet (pT > 20, |eta| < 2.5) of the real PFNano file, whose empty
    DeepCSV track slots hold values up to +-1e32, sees in tagger_pass over the same jets no input
    outside the range of its training inputs, and no garbage value reaches either."""
    from jetdask.preprocessing.pipeline import preprocess
    from jetdask.training.loop import train
    path = real_file("pfnano.root")
    fs = tmp_path / "fileset.json"
    fs.write_text(json.dumps({"real": {"files": {path: "Events"}, "metadata": {"is_data": False}}}))
    cfg = {"layout": layout, "reweighting": {"enabled": False}, "outputs": {"plots": False},
           "cleaning": {"jet_id_bits": 0, "gen_match": False, "leptons": {"delta_r": None}},
           "labels": {"classes": {"b": [500, 510, 511, 520, 521], "c": [400, 410, 411], "light": [0, 1, 2, 1000]}},
           "splits": {"train": 1.0, "validation": 0.0, "test": 0.0}}
    run = str(tmp_path / "run")
    assert preprocess(cfg, str(fs), run, serial=True, progress=False, verbose=False).complete
    tcfg = H.config(epochs=1, data={"validation_split": "train"})
    tcfg["model"] = H.TINY_MODELS[layout]
    summary = train(tcfg, preprocessed=run, out=str(tmp_path / "model"))
    raw = layout_tensors.load_split(os.path.join(run, "tensors", "train"))
    assert len(raw["label"]) > 20
    assert max(float(np.abs(v).max()) for v in raw["inputs"].values()) < 1e5        # no garbage in training
    data = SplitData(run, "train", layout)
    train_x, _ = data.arrays(np.arange(len(data)))
    t = Tagger(f"{layout}_real", summary["best"], device="cpu")
    seen = []
    hook = load_model(t).module.register_forward_pre_hook(lambda mod, args: seen.append([a.numpy() for a in args]))
    try:
        ev = H.read_events(path, tagger_columns([t]) + ["Jet_pt", "Jet_eta"])
        mask = (ev.Jet.pt > 20) & (abs(ev.Jet.eta) < 2.5)
        out = tagger_pass(ev, [t], mask, is_data=False)
    finally:
        hook.remove()
    assert seen and np.all(np.isfinite(ak.to_numpy(ak.flatten(out.Jet[t.name].b[mask]))))
    for k, spec in enumerate(data.specs):
        fed = np.concatenate([s[k] for s in seen])
        assert len(fed) == len(data)                    # the same jets
        tr = layout_tensors.feature_columns(spec, train_x[spec.name])
        lo, hi = tr.min(0), tr.max(0)
        f = layout_tensors.feature_columns(spec, fed)
        tol = 1e-5 * np.maximum(1.0, np.abs(tr).max(0))
        bad = (f < lo - tol) | (f > hi + tol)
        assert not bad.any(), (spec.name, [spec.features[j] for j in np.flatnonzero(bad.any(0))], f[bad][:5])
        if spec.scale:
            assert float(np.abs(f).max()) < 1e3, spec.name    # standardised: no 8e10 / std
    if layout == "deepcsv":
        raw = uproot.open(path)["Events"].arrays(["Jet_DeepCSV_trackSip2dSig_3", "Jet_DeepCSV_trackEtaRel_2"])
        assert max(float(np.abs(ak.to_numpy(ak.flatten(raw[k]))).max()) for k in raw.fields) > 1e8   # garbage there


def test_register_layout_makes_a_name_known_once():
    from jetdask.inference.layouts import LAYOUTS, JaggedLayout, layout_name, register_layout
    lay = JaggedLayout("pn_test", jets="Jet", groups={"points": ["deta", "dphi"], "features": ["log_pt"]})
    try:
        assert register_layout(lay) is lay and get_layout("pn_test") is lay and layout_name(lay) == "pn_test"
        register_layout(lay)                                   # the same layout again: fine
        other = JaggedLayout("pn_test", jets="Jet", groups={"features": ["log_e"]})
        with pytest.raises(ValueError, match="already registered"):
            register_layout(other)
        with pytest.raises(KeyError, match="pn_test"):
            get_layout("no_such_layout")
    finally:
        LAYOUTS.pop("pn_test", None)
