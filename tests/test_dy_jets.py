"""The DY+jets selection on real NanoAOD against an independent plain implementation."""
from __future__ import annotations

import math
import os
import sys

import numpy as np
import pytest
import uproot

from conftest import REPO
from jetdask.engine.runner import Runner

sys.path.insert(0, str(REPO / "analyses"))
from dy_jets import DYJets, select  # noqa: E402
from jetdask.nanoaod.events import events_from_arrays  # noqa: E402
from jetdask.nanoaod.columns import resolve_columns  # noqa: E402


def _dr(eta1, phi1, eta2, phi2):
    dphi = (phi1 - phi2 + math.pi) % (2 * math.pi) - math.pi
    return math.hypot(eta1 - eta2, dphi)


def _mass(a, b):
    def p4(pt, eta, phi, m):
        px, py, pz = pt * math.cos(phi), pt * math.sin(phi), pt * math.sinh(eta)
        return px, py, pz, math.sqrt(px * px + py * py + pz * pz + m * m)
    x = [u + v for u, v in zip(p4(*a), p4(*b))]
    return math.sqrt(max(x[3] ** 2 - x[0] ** 2 - x[1] ** 2 - x[2] ** 2, 0))


def reference(path):
    """Plain per-event loop over uproot arrays: (event number -> [selected jet pts])."""
    t = uproot.open(path)["Events"]
    keys = set(t.keys())
    a = t.arrays(library="np", filter_name=["event", "Muon_*", "Electron_*", "Jet_*", "HLT_IsoMu2*", "HLT_Ele3*",
                                            "HLT_Ele27*"])
    out = {}
    for i in range(len(a["event"])):
        def fired(names):
            return any(bool(a[n][i]) for n in names if n in keys)
        mus = [k for k in range(len(a["Muon_pt"][i])) if a["Muon_pt"][i][k] > 15 and abs(a["Muon_eta"][i][k]) < 2.4
               and a["Muon_tightId"][i][k] and a["Muon_pfRelIso04_all"][i][k] < 0.15]
        els = [k for k in range(len(a["Electron_pt"][i])) if a["Electron_pt"][i][k] > 15
               and abs(a["Electron_eta"][i][k]) < 2.5 and a["Electron_cutBased"][i][k] >= 4
               and not (1.4442 <= abs(a["Electron_eta"][i][k]) <= 1.566)]
        if len(mus) == 2 and fired(["HLT_IsoMu24", "HLT_IsoMu27"]):
            pre, idx, lead = "Muon", mus, 25
        elif len(els) == 2 and len(mus) != 2 and fired(["HLT_Ele32_WPTight_Gsf", "HLT_Ele27_WPTight_Gsf"]):
            pre, idx, lead = "Electron", els, 30
        else:
            continue
        lep = [(a[f"{pre}_pt"][i][k], a[f"{pre}_eta"][i][k], a[f"{pre}_phi"][i][k], a[f"{pre}_mass"][i][k],
                a[f"{pre}_charge"][i][k]) for k in idx]
        if lep[0][4] == lep[1][4] or lep[0][0] <= lead:
            continue
        if not 71 < _mass(lep[0][:4], lep[1][:4]) < 111:
            continue
        jets = [a["Jet_pt"][i][k] for k in range(len(a["Jet_pt"][i]))
                if a["Jet_pt"][i][k] > 20 and abs(a["Jet_eta"][i][k]) < 2.5 and a["Jet_jetId"][i][k] >= 2
                and all(_dr(a["Jet_eta"][i][k], a["Jet_phi"][i][k], l[1], l[2]) > 0.4 for l in lep)]
        if jets:
            out[int(a["event"][i])] = jets
    return out


@pytest.mark.parametrize("name", ["nano_dy.root", "nano_dimuon.root", "pfnano.root"])
def test_selection_matches_plain_loop(name):
    from conftest import real_file
    path = real_file(name)
    t = uproot.open(path)["Events"]
    ana = DYJets()
    branches = resolve_columns(t.keys(), ana.columns, path=path)
    events = events_from_arrays(t.arrays(branches, how=dict))
    sel, leptons, jets, channel, cut, *_ = select(events)
    ref = reference(path)
    got = {int(e): [float(x) for x in pts] for e, pts in zip(np.asarray(sel.event), jets.pt.tolist())}
    assert got.keys() == ref.keys()
    for e in ref:
        np.testing.assert_allclose(got[e], ref[e], rtol=1e-6)
    # the cutflow is monotonic and ends with the selected events
    counts = [int(cut[s].sum()) for s in ("all", "lumi", "trigger", "two leptons", "Z window", "jets")]
    assert counts == sorted(counts, reverse=True) and counts[-1] == len(ref)


def test_selection_on_real_files_has_events(nano_dy_path):
    """Guard against a selection that selects nothing: the DY file has Z->ll events with jets."""
    assert len(reference(nano_dy_path)) >= 1


def test_dy_run_on_real_files(tmp_path, nano_dy_path, nano_dimuon_path):
    fs = {"DY": {"files": [nano_dy_path], "metadata": {"xsec": 6077.2}},
          "Data": {"files": [nano_dimuon_path], "metadata": {"is_data": True, "lumi": 1.0}}}
    out = Runner(DYJets(), fs, str(tmp_path / "run"), serial=True, chunk_size=15, progress=False).run()
    assert out.complete
    for ds, path in (("DY", nano_dy_path), ("Data", nano_dimuon_path)):
        ref = reference(path)
        assert out.counters[ds]["selected_events"] == len(ref)
        assert out.counters[ds]["selected_jets"] == sum(len(v) for v in ref.values())
        assert out.hists[ds]["cutflow"][{"step": "all"}].sum() == uproot.open(path)["Events"].num_entries
    # data is filled in the "data" flavour category only
    h = out.hists["Data"]["DeepJet_BvsAll"]
    assert h[{"flavour": "data"}].sum().value == out.counters["Data"]["selected_jets"]


@pytest.fixture(scope="module")
def random_deepjet(tmp_path_factory):
    """A small untrained DeepJet checkpoint (scores are arbitrary but deterministic)."""
    import torch
    from jetdask.inference import save_checkpoint
    from jetdask.models import DeepJet
    torch.manual_seed(3)
    return save_checkpoint(str(tmp_path_factory.mktemp("ck") / "dj.pt"),
                           DeepJet(summary="pool", summary_sizes=(8, 4, 4), dense=(16,)))


def test_taggers_and_distortions_in_the_dy_pass(tmp_path, small_sample, random_deepjet):
    """Every tagger variant fills BvsL/CvsB/CvsL for exactly the selected jets, flavour by flavour."""
    taggers = [{"name": "nominal", "source": random_deepjet}, {"name": "adversarial", "source": random_deepjet}]
    ana = DYJets(taggers=taggers, distortions=["noise0.5"])
    assert [t.name for t in ana.taggers] == ["nominal", "nominal@noise0.5", "adversarial", "adversarial@noise0.5"]
    out = Runner(ana, small_sample, str(tmp_path / "run"), serial=True, chunk_size=1500, progress=False).run()
    assert out.complete
    for ds in ("DYJetsToLL_M-50", "DoubleMuon"):
        hs = out.hists[ds]
        n_jets = out.counters[ds]["selected_jets"]
        assert n_jets > 100
        ref = hs["DeepJet_BvsL"]
        for t in ana.taggers:
            for disc in ("BvsL", "CvsB", "CvsL"):
                h = hs[f"{t.name}_{disc}"]
                # every selected jet lands once, in the same channel/flavour cell as the official score
                np.testing.assert_allclose(h.values(flow=True).sum(axis=-1), ref.values(flow=True).sum(axis=-1))
        # same model, same inputs -> same histogram; distorted inputs -> different scores
        np.testing.assert_array_equal(hs["nominal_BvsL"].values(), hs["adversarial_BvsL"].values())
        assert not np.array_equal(hs["nominal_BvsL"].values(), hs["nominal@noise0.5_BvsL"].values())
    # the untrained scores are discriminants in [0, 1] (1 included): no entries in the flow bins
    w2 = out.hists["DYJetsToLL_M-50"]["nominal_BvsL"].view(flow=True)["variance"]
    assert w2[..., 0].sum() == 0 and w2[..., -1].sum() == 0 and w2.sum() > 0


def _events(path, ana):
    t = uproot.open(path)["Events"]
    return events_from_arrays(t.arrays(resolve_columns(t.keys(), ana.columns, path=path), how=dict))


def test_lumi_mask_and_pileup_weights(tmp_path, small_sample):
    """Golden JSON drops data lumi sections; a correctionlib pileup weight multiplies genWeight."""
    import json as _json
    import correctionlib.schemav2 as cs
    from jetdask.fileset import load_fileset
    files = {ds: v["files"] for ds, v in load_fileset(small_sample).to_dict().items()}
    mc = sorted(files["DYJetsToLL_M-50"])[0]
    data = sorted(files["DoubleMuon"])[0]
    mc, data = (x if isinstance(x, str) else x["path"] for x in (mc, data))
    # golden JSON: every other lumi section of the data file, as [first, last] ranges
    t = uproot.open(data)["Events"]
    run, lumi = t["run"].array(library="np"), t["luminosityBlock"].array(library="np")
    golden = {}
    for r in np.unique(run):
        golden[str(int(r))] = [[int(x), int(x)] for x in np.unique(lumi[run == r])[::2]]
    golden_path = tmp_path / "golden.json"
    golden_path.write_text(_json.dumps(golden))
    # pileup weights binned in nTrueInt
    edges, content = [0.0, 20.0, 35.0, 200.0], [0.5, 1.0, 2.0]
    corr = cs.Correction(name="pu", version=1, output=cs.Variable(name="weight", type="real"),
                         inputs=[cs.Variable(name="nTrueInt", type="real"), cs.Variable(name="syst", type="string")],
                         data=cs.Category(nodetype="category", input="syst", content=[cs.CategoryItem(
                             key="nominal", value=cs.Binning(nodetype="binning", input="nTrueInt", edges=edges,
                                                             content=content, flow="clamp"))]))
    pu_path = tmp_path / "pu.json"
    pu_path.write_text(cs.CorrectionSet(schema_version=2, corrections=[corr]).model_dump_json(exclude_unset=True))

    ana = DYJets(lumi_mask=str(golden_path), pileup=str(pu_path))
    fs = {"MC": {"files": [mc]}, "Data": {"files": [data], "metadata": {"is_data": True}}}
    out = Runner(ana, fs, str(tmp_path / "run"), serial=True, chunk_size=1000, progress=False).run()
    assert out.complete
    # independent expectation: unmasked selection, then the golden set / the weight lookup
    good = {(int(r), int(x)) for r, rs in golden.items() for lo, hi in rs for x in range(lo, hi + 1)}
    d = _events(data, ana)
    assert out.hists["Data"]["cutflow"][{"step": "lumi", "channel": "all"}] == \
        sum((int(r), int(x)) in good for r, x in zip(d.run, d.luminosityBlock))
    sel = select(d).events
    expected = sum((int(r), int(x)) in good for r, x in zip(sel.run, sel.luminosityBlock))
    assert 0 < expected < len(sel)
    assert out.counters["Data"]["selected_events"] == expected
    sel = select(_events(mc, ana)).events
    w = np.asarray(content)[np.clip(np.digitize(np.asarray(sel.Pileup.nTrueInt), edges) - 1, 0, 2)]
    assert len(np.unique(w)) > 1
    np.testing.assert_allclose(out.counters["MC"]["sumw_selected"], np.sum(np.asarray(sel.genWeight) * w),
                               rtol=1e-9)
