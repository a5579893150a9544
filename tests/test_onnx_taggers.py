"""ONNX taggers in the production DeepJet input order (``deepjet-cmssw``), beside torch.

jetdask's DeepJet is exported to ONNX behind a wrapper that takes the CMSSW-ordered inputs
(permuting them to jetdask's order); the ONNX tagger run by onnxruntime through the tagger
pass must give the wrapper's torch scores (<= 1e-5) on synthetic PFNano jets and on tensors
built from the real ``pfnano.root``.
"""
from __future__ import annotations

import dataclasses
import warnings

import awkward as ak
import numpy as np
import pytest
import torch
import uproot

from conftest import real_file
from jetdask.errors import ModelFileError
from jetdask.inference import Tagger, get_layout, load_model, tagger_columns, tagger_pass
from jetdask.inference.batching import predict
from jetdask.inference.layouts import SENTINEL, SlotLayout, kept_jets
from jetdask.inference.registry import clear_cache
from jetdask.models import CLASSES, DeepJet
from jetdask.nanoaod.columns import resolve_columns
from jetdask.nanoaod.events import events_from_arrays

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

CMSSW = get_layout("deepjet-cmssw")
JD = get_layout("deepjet")


def _index(src: tuple, dst: tuple) -> list:
    """Positions in ``src`` of each feature of ``dst`` (so that ``x[..., idx]`` reorders src -> dst)."""
    return [src.index(f) for f in dst]


class CmsswDeepJet(torch.nn.Module):
    """jetdask DeepJet behind the CMSSW input order; softmax output like the production file."""

    def __init__(self, model, n_inputs: int = 4):
        super().__init__()
        self.model = model
        specs_c, specs_j = {s.name: s for s in CMSSW.specs}, {s.name: s for s in JD.specs}
        for name in ("glob", "cpf", "npf", "sv"):
            idx = _index(specs_c[name].features, specs_j[name].features)
            self.register_buffer(f"idx_{name}", torch.tensor(idx, dtype=torch.long))
        self.n_inputs = n_inputs

    def forward(self, glob, cpf, npf, sv, *rest):
        y = self.model(glob[:, self.idx_glob], cpf[..., self.idx_cpf], npf[..., self.idx_npf], sv[..., self.idx_sv])
        if rest:    # the v03 file's fifth input (jet pt): used, so that it must be fed right
            y = y + 0.0 * rest[0]
        return torch.softmax(y, dim=1)


def export(model, path, n_inputs=4):
    names = [f"input_{i + 1}" for i in range(n_inputs)]
    shapes = [(15,), (25, 16), (25, 6), (4, 12), (1,)][:n_inputs]
    x = tuple(torch.randn(2, *s) for s in shapes)
    with warnings.catch_warnings():    # exporter notes (LSTM batch size: the tests run several sizes)
        warnings.simplefilter("ignore")
        torch.onnx.export(model, x, path, input_names=names, output_names=["ID_pred"], opset_version=17,
                          dynamic_axes={n: {0: "N"} for n in names + ["ID_pred"]}, dynamo=False)
    return path


@pytest.fixture(scope="module")
def wrapper():
    torch.manual_seed(17)
    return CmsswDeepJet(DeepJet(summary_sizes=(12, 6, 6), dense=(24, 24)).eval()).eval()


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory, wrapper):
    return export(wrapper, str(tmp_path_factory.mktemp("onnx") / "deepjet.onnx"))


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    from jetdask.synthetic import generate_sample
    return generate_sample(str(tmp_path_factory.mktemp("onnx_sample")), events=300, files=1, seed=21)


@pytest.fixture(scope="module")
def events(sample):
    from jetdask.fileset import load_fileset
    path = load_fileset(sample)["DYJetsToLL_M-50"].files[0].path
    t = uproot.open(path)["Events"]
    cols = tagger_columns([Tagger("a", "x", layout="deepjet-cmssw-v03"), Tagger("b", "x", layout="deepjet")])
    return events_from_arrays(t.arrays(resolve_columns(t.keys(), cols + ["run", "event"]), how=dict))


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()


def test_cmssw_layout_is_the_deepjet_inputs_reordered(events):
    recs, _, _ = kept_jets(events.Jet, None)
    c, j = CMSSW.convert(recs), JD.convert(recs)
    specs_c, specs_j = {s.name: s for s in CMSSW.specs}, {s.name: s for s in JD.specs}
    assert [s.name for s in CMSSW.specs] == ["glob", "cpf", "npf", "sv"]
    assert [s.shape for s in CMSSW.specs] == [(15,), (25, 16), (25, 6), (4, 12)]
    for name in ("cpf", "npf", "sv"):
        idx = _index(specs_j[name].features, specs_c[name].features)
        np.testing.assert_array_equal(c.arrays[name], j.arrays[name][..., idx])
        np.testing.assert_array_equal(c.valid[name], j.valid[name][..., idx])
    raw = 1.0 - np.asarray(ak.flatten(events.Jet.rawFactor), dtype=np.float32)
    g_c, g_j = c.arrays["glob"], j.arrays["glob"]
    np.testing.assert_allclose(g_c[:, 0], g_j[:, 0] * raw, rtol=1e-6)       # uncorrected jet pt
    sentinel = np.zeros_like(g_c, dtype=bool)
    for k, f in enumerate(specs_c["glob"].features):
        sentinel[:, k] = np.asarray(ak.flatten(events.Jet[f])) == SENTINEL
    # entries jetdask's deepjet layout treats as missing (e.g. -1 of the *AboveCharm variables) keep
    # their raw value in the production order: CMSSW feeds the model what the tag info holds
    keep = ~sentinel[:, 1:] & np.asarray(j.valid["glob"])[:, 1:]
    np.testing.assert_array_equal(g_c[:, 1:][keep], g_j[:, 1:][keep])
    missing = ~sentinel[:, 1:] & ~np.asarray(j.valid["glob"])[:, 1:]
    raw_glob = np.stack([np.asarray(ak.flatten(events.Jet[f]), dtype=np.float32)
                         for f in specs_c["glob"].features[1:]], axis=1)
    np.testing.assert_array_equal(g_c[:, 1:][missing], raw_glob[missing])
    assert (g_c[sentinel] == SENTINEL).all() and not c.valid["glob"][sentinel].any()
    v03 = get_layout("deepjet-cmssw-v03").convert(recs)
    np.testing.assert_array_equal(v03.arrays["jetpt"][:, 0], g_c[:, 0])


@pytest.mark.parametrize("batch_size", [None, 7])
def test_onnx_tagger_equals_torch_on_synthetic_jets(events, onnx_file, wrapper, batch_size):
    mask = events.Jet.pt > 25
    out = tagger_pass(events, [Tagger("prod", onnx_file, layout="deepjet-cmssw", device="cpu")], mask,
                      batch_size=batch_size)
    got = np.stack([ak.to_numpy(ak.flatten(out.Jet["prod"][c][mask])) for c in CLASSES], axis=1)
    recs, _, _ = kept_jets(events.Jet, mask)
    conv = CMSSW.convert(recs)
    with torch.no_grad():
        want = wrapper(*[torch.from_numpy(a) for a in conv.ordered()]).numpy()
    assert len(got) == len(want) > 100
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    assert ak.all(ak.flatten(out.Jet["prod"].b[~mask]) == -1)


def _real_cmssw_tensors(path):
    """CMSSW-ordered tensors from the real pfnano.root, built here with plain loops.

    The real file predates the PFNano DeepJet table: the globals are the real ones (uncorrected
    pt, eta, counts from JetPFCands / JetSVs, npv, the DeepCSV tag-info variables with their real
    -999 defaults); charged candidates fill the features JetPFCands carries, SVs every feature.
    """
    t = uproot.open(path)["Events"]
    a = t.arrays(library="np")
    feats = {s.name: s.features for s in CMSSW.specs}
    jets = []
    for ev in range(t.num_entries):
        charged = a["PFCands_charge"][ev][a["JetPFCands_pFCandsIdx"][ev]] != 0
        for j in range(len(a["Jet_pt"][ev])):
            mine = a["JetPFCands_jetIdx"][ev] == j
            svs = np.flatnonzero(a["JetSVs_jetIdx"][ev] == j)
            g = {"pt": a["Jet_pt"][ev][j] * (1 - a["Jet_rawFactor"][ev][j]), "eta": a["Jet_eta"][ev][j],
                 "DeepJet_nCpfcand": (mine & charged).sum(), "DeepJet_nNpfcand": (mine & ~charged).sum(),
                 "DeepJet_nsv": len(svs), "DeepJet_npv": a["PV_npvs"][ev]}
            glob = [g[f] if f in g else a[f"Jet_{f}"][ev][j] for f in feats["glob"]]
            cpf = np.zeros((25, 16), np.float32)
            src = {"BtagPf_trackEtaRel": "btagEtaRel", "BtagPf_trackPParRatio": "btagPParRatio",
                   "BtagPf_trackSip3dVal": "btagSip3dVal", "BtagPf_trackSip3dSig": "btagSip3dSig",
                   "BtagPf_trackJetDistVal": "btagJetDistVal"}
            for slot, i in enumerate(np.flatnonzero(mine & charged)[:25]):
                for k, f in enumerate(feats["cpf"]):
                    if f in src:
                        cpf[slot, k] = a[f"JetPFCands_{src[f]}"][ev][i]
            sv = np.zeros((4, 12), np.float32)
            for slot, i in enumerate(svs[:4]):
                for k, f in enumerate(feats["sv"]):
                    sv[slot, k] = a[f"JetSVs_{'enration' if f == 'enratio' else f}"][ev][i]
            jets.append((np.asarray(glob, np.float32), cpf, np.zeros((25, 6), np.float32), sv))
    # non-finite candidate values (NaN btag variables of some JetPFCands) hold 0, as the layout makes them
    return [np.nan_to_num(np.stack(x), nan=0.0, posinf=0.0, neginf=0.0) for x in zip(*jets)]


def test_onnx_tagger_equals_torch_on_real_pfnano_tensors(onnx_file, wrapper):
    arrays = _real_cmssw_tensors(real_file("pfnano.root"))
    assert len(arrays[0]) > 20 and (arrays[0] == SENTINEL).any() and (arrays[3] != 0).any()
    lm = load_model(Tagger("prod", onnx_file, layout="deepjet-cmssw", device="cpu"))
    assert lm.backend == "onnx" and lm.classes == CLASSES and not lm.softmax
    got = predict(lm, arrays, batch_size=5)
    with torch.no_grad():
        want = wrapper(*[torch.from_numpy(x) for x in arrays]).numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-5)


def test_five_input_file_and_mismatched_layouts(tmp_path, events, wrapper, onnx_file):
    five = CmsswDeepJet(wrapper.model, n_inputs=5).eval()
    path = export(five, str(tmp_path / "v03.onnx"), n_inputs=5)
    with pytest.raises(ModelFileError, match="has 5 inputs"):
        load_model(Tagger("v03", path, layout="deepjet-cmssw", device="cpu"))
    with pytest.raises(ModelFileError, match="has 5 inputs .* layout 'deepcsv' gives 1"):
        load_model(Tagger("csv", path, layout="deepcsv", classes=CLASSES, device="cpu"))
    cpf = CMSSW.inputs[1]
    short = SlotLayout("short-cpf", (CMSSW.inputs[0], dataclasses.replace(
        cpf, spec=dataclasses.replace(cpf.spec, slots=20))) + CMSSW.inputs[2:])
    with pytest.raises(ModelFileError, match=r"input 'input_2' has shape \['N', 25, 16\], layout 'short-cpf'"):
        load_model(Tagger("short", onnx_file, layout=short, classes=CLASSES, device="cpu"))
    out = tagger_pass(events, [Tagger("v03", path, layout="deepjet-cmssw-v03", device="cpu")])
    recs, _, _ = kept_jets(events.Jet, None)
    with torch.no_grad():
        want = five(*[torch.from_numpy(a) for a in get_layout("deepjet-cmssw-v03").convert(recs).ordered()])
    got = np.stack([ak.to_numpy(ak.flatten(out.Jet["v03"][c])) for c in CLASSES], axis=1)
    np.testing.assert_allclose(got, want.numpy(), rtol=0, atol=1e-5)


def test_onnx_specs_are_checked_on_the_client(tmp_path, onnx_file):
    with pytest.raises(ModelFileError, match="FGSM needs gradients"):
        tagger_columns([Tagger("prod", onnx_file, layout="deepjet-cmssw", distortion="fgsm0.1")])
    with pytest.raises(ModelFileError, match="give layout="):
        tagger_columns([Tagger("prod", onnx_file)])
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf")
    with pytest.raises(ModelFileError, match="onnxruntime cannot load it"):
        load_model(Tagger("bad", str(bad), layout="deepjet-cmssw", device="cpu"))
    cols = tagger_columns([Tagger("prod", onnx_file, layout="deepjet-cmssw", distortion="noise0.1")])
    assert "Jet_rawFactor" in cols and "Jet_DeepJet_Cpfcan_BtagPf_trackEtaRel_24" in cols


@pytest.mark.cluster
def test_onnx_tagger_on_local_cluster_workers(tmp_path, sample, events, onnx_file):
    """Worker processes open the ONNX file themselves; their scores equal the in-process pass."""
    from distributed import Client, LocalCluster

    from jetdask.engine.runner import Runner
    from jetdask.fileset import load_fileset
    from jetdask.inference import TaggerScores
    fs = {"DY": {"files": [f.path for f in load_fileset(sample)["DYJetsToLL_M-50"].files]}}
    tagger = Tagger("prod", onnx_file, layout="deepjet-cmssw", device="cpu")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0",
                      host="127.0.0.1", memory_limit="2GiB") as cluster, Client(cluster) as client:
        with Runner(TaggerScores([tagger]), fs, str(tmp_path / "run"), client=client, chunk_size=100,
                    progress=False) as r:
            out = r.run()
    assert out.complete, out.failed
    got = out.arrays("jets", "DY")
    order = np.lexsort((ak.to_numpy(got.jet), ak.to_numpy(got.event)))
    got = got[order]
    mask = (events.Jet.pt > 20) & (abs(events.Jet.eta) < 2.5)
    ref = tagger_pass(events, [tagger], mask).Jet["prod"][mask]
    ev = ak.flatten(ak.broadcast_arrays(events.event, events.Jet.pt[mask])[0])
    jet = ak.flatten(ak.local_index(events.Jet.pt)[mask])
    ref_order = np.lexsort((ak.to_numpy(jet), ak.to_numpy(ev)))
    assert len(got) == len(ref_order) > 100
    for c in CLASSES:
        np.testing.assert_allclose(ak.to_numpy(got["prod"][c]), ak.to_numpy(ak.flatten(ref[c]))[ref_order],
                                   rtol=0, atol=1e-6)
