"""Units of the inference package on hand-built awkward records: layouts, scaler, distortions,
registry, batching."""
from __future__ import annotations

import os
import pickle

import awkward as ak
import numpy as np
import pytest
import torch

from jetdask.inference import JaggedLayout, Scaler, Tagger, batching, fit_scaler, registry, save_checkpoint, tagger_pass
from jetdask.inference.distortions import (
    FGSM,
    Noise,
    add_noise,
    distortable,
    fgsm,
    jet_keys,
    parse_distortion,
    truth_labels,
)
from jetdask.inference.layouts import DEEPJET, InputSpec, Records, SlotInput, SlotLayout, kept_jets
from jetdask.models import DeepCSV


def toy_events():
    """3 events: 2, 0, 1 jets; jet candidates (pt, eta, phi, mass, charge) as a list field."""
    cands = [[[(5.0, 0.1, 0.0, 0.0, 1), (9.0, 0.2, 0.1, 0.1, -1), (1.0, 0.0, 0.0, 0.0, 0), (7.0, 0.3, 0.2, 0.0, 1)],
              [(3.0, -1.0, 1.0, 0.0, 0)]],
             [],
             [[]]]
    as_rec = lambda c: {"pt": c[0], "eta": c[1], "phi": c[2], "mass": c[3], "charge": c[4]}  # noqa: E731
    jets = [[{"pt": 50.0 + 10 * j, "eta": 0.1, "phi": 0.05, "mass": 5.0, "hadronFlavour": [5, 0, 4][j % 3],
              "cands": [as_rec(c) for c in jc]} for j, jc in enumerate(ev)] for ev in cands]
    return ak.Array({"event": [10, 11, 12], "run": [1, 1, 1], "Jet": jets})


TOY = JaggedLayout("toy", jets="Jet", candidates="cands", groups={"f": ["pt", "charge", "deta"]},
                   max_length=3, sort_by="pt", p4=None, vectors="vec")


def test_jagged_layout_pads_clips_and_sorts():
    ev = toy_events()
    recs, sel, counts = kept_jets(ev.Jet)
    assert counts.tolist() == [2, 0, 1] and sel.tolist() == [0, 1, 2]
    conv = TOY.convert(recs)
    f = conv.arrays["f"]
    assert f.shape == (3, 3, 3)
    assert f[0, 0].tolist() == [9, 7, 5]                    # sorted by pt, clipped to 3
    assert f[0, 1].tolist() == [-1, 1, 1]
    np.testing.assert_allclose(f[0, 2], [0.1, 0.2, 0.0], atol=1e-6)
    assert f[1, 0].tolist() == [3, 0, 0] and not f[2].any()
    assert conv.arrays["mask"][:, 0].tolist() == [[1, 1, 1], [1, 0, 0], [0, 0, 0]]
    assert conv.valid["f"][1, :, 1:].sum() == 0
    np.testing.assert_allclose(conv.arrays["vec"][1, :, 0], [3 * np.cos(1), 3 * np.sin(1), 3 * np.sinh(-1),
                                                             np.sqrt((3 * np.cosh(-1)) ** 2)], rtol=1e-6)
    spec = conv.specs[0]
    assert spec.integer == ("charge",) and conv.specs[-1].distort is False


def test_jagged_layout_respects_the_jet_mask_and_callables():
    ev = toy_events()
    mask = ak.Array([[False, True], [], [True]])
    layout = JaggedLayout("toy2", candidates="cands", groups={"x": ["pt", lambda ctx: ctx.jet("pt")]},
                          max_length=2, p4=None)
    recs, sel, _ = kept_jets(ev.Jet, mask)
    assert sel.tolist() == [1, 2]
    conv = layout.convert(recs)
    assert conv.arrays["x"][0, 0].tolist() == [3, 0] and conv.arrays["x"][0, 1].tolist() == [60, 0]
    assert pickle.loads(pickle.dumps(TOY)) == TOY and hash(TOY) == hash(pickle.loads(pickle.dumps(TOY)))


def test_with_item_fields_equals_ak_with_field():
    from jetdask.inference.analysis import with_item_fields
    ev = toy_events()
    for e in (ev, ev[[2, 0]], ev[1:]):
        n = int(ak.sum(ak.num(e.Jet)))
        vals = ak.zip({"a": np.arange(n, dtype=np.float32)})
        out = with_item_fields(e, "Jet", {"s": vals, "s@noise0.1": vals})
        ref = ak.with_field(e, ak.with_field(e.Jet, ak.unflatten(vals, ak.num(e.Jet)), "s"), "Jet")
        assert out.Jet.s.a.tolist() == ref.Jet.s.a.tolist() == out.Jet["s@noise0.1"].a.tolist()
        assert out.Jet.cands.pt.tolist() == e.Jet.cands.pt.tolist() and out.event.tolist() == e.event.tolist()
    with pytest.raises(ValueError, match="coordinate"):
        Tagger("pt", "m.pt")


def test_records_follow_option_links():
    cands = ak.Array([[{"i": 0}, {"i": 5}, {"i": 1}]])
    targets = ak.Array([[{"pt": 1.5}, {"pt": 2.5}]])
    link = ak.mask(ak.pad_none(targets, 1)[ak.where(cands.i < 2, cands.i, 0)], cands.i < 2)
    cands = ak.with_field(cands, link, "t")
    r = Records(ak.to_layout(ak.flatten(cands)), np.arange(3))
    assert r.record("t").field("pt").tolist() == [1.5, 0.0, 2.5]


def test_slot_layout_columns_and_defaults():
    layout = SlotLayout("mini", (SlotInput(InputSpec("s", ("a", "b"), 2), "X_{feature}_{slot}", "X_n"),))
    assert layout.columns == ["Jet_X_a_0", "Jet_X_a_1", "Jet_X_b_0", "Jet_X_b_1", "Jet_X_n"]
    jets = ak.Array([[{"X_a_0": 1.0, "X_a_1": 2.0, "X_b_0": -999.0, "X_b_1": 4.0, "X_n": 2},
                      {"X_a_0": 5.0, "X_a_1": 6.0, "X_b_0": np.inf, "X_b_1": 8.0, "X_n": 1}]])
    conv = layout.convert(kept_jets(jets)[0])
    assert conv.arrays["s"].tolist() == [[[1, 0], [2, 4]], [[5, 0], [0, 0]]]
    assert conv.valid["s"].tolist() == [[[True, False], [True, True]], [[True, False], [False, False]]]
    assert len(DEEPJET.columns) == 2 + 13 + 400 + 150 + 48 and "Jet_DeepJet_nsv" in DEEPJET.columns


def test_scaler_standardises_valid_entries_and_defaults_the_rest():
    ev = toy_events()
    conv = TOY.convert(kept_jets(ev.Jet)[0])
    d = fit_scaler(conv, default=-5.0)
    assert set(d["inputs"]) == {"f"}                     # vectors and mask are not scaled
    scaled = Scaler.from_dict(d).apply(conv)
    x, ok = scaled["f"], conv.valid["f"]
    for k in range(3):
        v = x[:, k][ok[:, k]]
        assert abs(v.mean()) < 1e-5 and (v.std() == 0 or abs(v.std() - 1) < 1e-4)
    assert np.all(x[~ok] == -5.0)
    assert np.array_equal(scaled["mask"], conv.arrays["mask"])
    assert Scaler.load(Scaler.from_dict(d).to_dict()) == Scaler.from_dict(d)


# ----------------------------------------------------------------------------- distortions

def test_parse_and_variants():
    assert parse_distortion("noise0.1") == Noise(0.1) and parse_distortion("fgsm1e-3") == FGSM(0.001)
    with pytest.raises(ValueError):
        parse_distortion("blur0.1")
    t = Tagger("nominal", "m.pt")
    names = [v.name for v in t.variants(["noise0.1", FGSM(0.01)])]
    assert names == ["nominal", "nominal@noise0.1", "nominal@fgsm0.01"]
    assert len(pickle.dumps(t.variant("fgsm0.01"))) < 1000


def test_noise_touches_only_distortable_entries_and_is_reproducible():
    ev = toy_events()
    recs, sel, counts = kept_jets(ev.Jet)
    conv = TOY.convert(recs)
    masks = distortable(conv)
    assert masks["vec"] is None and masks["mask"] is None
    assert not masks["f"][:, 1].any()                    # charge: integer-valued
    keys = jet_keys(np.ones(3), np.array([10, 10, 12]), np.array([0, 1, 0]))
    a = add_noise(conv.arrays, masks, 0.5, keys)
    b = add_noise(conv.arrays, masks, 0.5, keys)
    np.testing.assert_array_equal(a["f"], b["f"])
    changed = a["f"] != conv.arrays["f"]
    assert changed.any() and not (changed & ~masks["f"]).any()
    assert a["vec"] is conv.arrays["vec"]
    # the noise of a jet depends on its key only, not on its position in the chunk
    c = add_noise({k: v[1:] for k, v in conv.arrays.items()}, {k: None if m is None else m[1:]
                                                               for k, m in masks.items()}, 0.5, keys[1:])
    np.testing.assert_array_equal(c["f"], a["f"][1:])


def test_noise_has_the_requested_spread():
    x = np.zeros((2000, 50), np.float32)
    spec = InputSpec("x", tuple(f"f{i}" for i in range(50)))
    from jetdask.inference.layouts import Converted
    conv = Converted((spec,), {"x": x}, {"x": np.ones_like(x, bool)}, 2000)
    out = add_noise(conv.arrays, distortable(conv), 0.2, jet_keys(np.zeros(2000), np.arange(2000), np.zeros(2000)))
    assert abs(out["x"].std() - 0.2) < 0.01 and abs(out["x"].mean()) < 0.01


def test_fgsm_moves_by_epsilon_on_masked_entries_only():
    torch.manual_seed(0)
    m = DeepCSV(n_inputs=6, hidden=(8,)).eval()
    x = torch.randn(10, 6)
    mask = torch.ones(10, 6, dtype=torch.bool)
    mask[:, 2] = False
    (adv,) = fgsm(m, [x], [mask], torch.zeros(10, dtype=torch.long), 0.1, softmax=True)
    d = (adv - x).abs()
    assert torch.all(d[:, 2] == 0)
    assert torch.all(((d[mask] - 0.1).abs() < 1e-6) | (d[mask] == 0)) and (d[mask] > 0).float().mean() > 0.5
    with torch.inference_mode():
        p0 = torch.softmax(m(x), 1)[:, 0]
        p1 = torch.softmax(m(adv), 1)[:, 0]
    assert p1.mean() < p0.mean()                        # pushed away from the label (class 0)


def test_truth_labels():
    jets = ak.Array([[{"FlavSplit": v, "hadronFlavour": 0} for v in (500, 510, 521, 411, 0, 1, 1000)]])
    recs = kept_jets(jets)[0]
    classes = ("b", "bb", "lepb", "c", "uds", "g")
    assert truth_labels(recs, classes).tolist() == [0, 1, 2, 3, 5, 4, -1]
    assert truth_labels(recs, ("b", "c", "uds")).tolist() == [0, 0, 0, 1, 2, 2, -1]
    assert truth_labels(recs, ("sig", "bkg")) is None
    hf = kept_jets(ak.Array([[{"hadronFlavour": v} for v in (5, 4, 0, 15)]]))[0]
    assert truth_labels(hf, classes).tolist() == [0, 3, 4, 4]
    assert truth_labels(kept_jets(ak.Array([[{"pt": 1.0}]]))[0], classes) is None


# ----------------------------------------------------------------------------- registry & batching

@pytest.fixture
def csv_ckpt(tmp_path):
    torch.manual_seed(2)
    return save_checkpoint(str(tmp_path / "csv.pt"), DeepCSV(hidden=(8,)))


def test_models_are_cached_per_file_version(csv_ckpt):
    registry.clear_cache()
    t = Tagger("csv", csv_ckpt, device="cpu")
    a, b = registry.load_model(t), registry.load_model(Tagger("other", csv_ckpt, device="cpu"))
    assert a.module is b.module and registry.stats["hits"] >= 1
    assert a.layout.name == "deepcsv" and a.classes == DeepCSV.classes and a.softmax
    st = os.stat(csv_ckpt)
    os.utime(csv_ckpt, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert registry.load_model(t).module is not a.module      # rewritten file: loaded again


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
def test_bare_state_dict_and_torchscript_need_their_spec(tmp_path):
    m = DeepCSV(hidden=(8,)).eval()
    torch.save(m.state_dict(), tmp_path / "bare.pt")
    with pytest.raises(ValueError, match="model_class"):
        registry.load_model(Tagger("bare", str(tmp_path / "bare.pt")))
    lm = registry.load_model(Tagger("bare", str(tmp_path / "bare.pt"), model_class="DeepCSV",
                                    model_kwargs={"hidden": [8]}))
    assert lm.layout.name == "deepcsv"
    torch.jit.script(m).save(str(tmp_path / "ts.pt"))
    assert registry.is_torchscript(str(tmp_path / "ts.pt")) and not registry.is_torchscript(str(tmp_path / "bare.pt"))
    with pytest.raises(ValueError, match="layout"):
        registry.load_model(Tagger("ts", str(tmp_path / "ts.pt")))
    ts = registry.load_model(Tagger("ts", str(tmp_path / "ts.pt"), layout="deepcsv", classes=DeepCSV.classes))
    assert ts.softmax is False


def test_batch_size_and_threads(monkeypatch, csv_ckpt):
    lm = registry.load_model(Tagger("csv", csv_ckpt, device="cpu"))
    x = np.random.default_rng(0).normal(size=(1000, 65)).astype(np.float32)
    assert batching.choose_batch_size(lm.module, [x], 10**12) == batching.MAX_BATCH
    assert batching.choose_batch_size(lm.module, [x], 1) == batching.MIN_BATCH
    assert batching.choose_batch_size(lm.module, [x], 65 * 4 * 16 * 1000) == 1000
    ref = batching.predict(lm, [x], batch_size=4096)
    np.testing.assert_allclose(batching.predict(lm, [x], batch_size=64), ref, atol=1e-6)
    np.testing.assert_allclose(ref.sum(1), 1, atol=1e-5)
    assert batching.predict(lm, [x[:0]]).shape == (0, 6)
    monkeypatch.delenv("JETDASK_TORCH_THREADS", raising=False)
    monkeypatch.setattr(batching, "available_cores", lambda: 8)
    monkeypatch.setattr(batching, "task_threads", lambda: 3)
    assert batching.torch_threads() == 2
    monkeypatch.setattr(batching, "task_threads", lambda: 16)
    assert batching.torch_threads() == 1
    monkeypatch.setenv("JETDASK_TORCH_THREADS", "5")
    assert batching.torch_threads() == 5


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
def test_pass_on_toy_events_with_a_user_layout(tmp_path):
    """A user layout + a TorchScript model: every jet of the toy events, -1 for masked ones."""
    class Tiny(torch.nn.Module):
        def forward(self, f, vec, mask):
            return torch.stack([(f[:, 0] * mask[:, 0]).sum(1), mask.sum((1, 2))], 1)
    torch.jit.script(Tiny()).save(str(tmp_path / "tiny.pt"))
    t = Tagger("tiny", str(tmp_path / "tiny.pt"), layout=TOY, classes=("sumpt", "n"))
    ev = toy_events()
    out = tagger_pass(ev, [t], ak.Array([[True, False], [], [True]]))
    assert out.Jet.tiny.sumpt.tolist() == [[21.0, -1.0], [], [0.0]]
    assert out.Jet.tiny.n.tolist() == [[3.0, -1.0], [], [0.0]]
    assert "BvsL" not in out.Jet.tiny.fields


def test_inference_modules_import_no_cycle():
    """No module of jetdask/inference imports (at the top or inside a function) one that imports it
    back, directly or through others; registry still gives the names it gave before the split."""
    import ast
    import pathlib

    import jetdask.inference as pkg
    root = pathlib.Path(pkg.__file__).parent
    names = {p.stem for p in root.glob("*.py")} | {p.name for p in root.iterdir() if (p / "__init__.py").exists()}
    graph = {}
    for path in root.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                deps |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
        graph[path.stem] = deps & names - {"__init__"}

    def reaches(start, target, seen=()):
        return any(d == target or (d not in seen and reaches(d, target, (*seen, d))) for d in graph.get(start, ()))

    assert [m for m in graph if m != "__init__" and reaches(m, m)] == []
    assert {"Tagger", "Scaler", "fit_scaler", "save_checkpoint", "load_checkpoint", "load_model", "clear_cache",
            "stats", "check_tagger", "tagger_resources", "is_torchscript", "build_model"} <= set(dir(registry))
