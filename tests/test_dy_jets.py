"""The DY+jets selection on real NanoAOD against an independent plain implementation."""
from __future__ import annotations

import math

import numpy as np
import pytest
import uproot

from dy_jets import DYJets, select
from jetdask.engine.runner import Runner
from jetdask.nanoaod.columns import resolve_columns
from jetdask.nanoaod.events import events_from_arrays


def _dr(eta1, phi1, eta2, phi2):
    dphi = (phi1 - phi2 + math.pi) % (2 * math.pi) - math.pi
    return math.hypot(eta1 - eta2, dphi)


def _mass(a, b):
    def p4(pt, eta, phi, m):
        px, py, pz = pt * math.cos(phi), pt * math.sin(phi), pt * math.sinh(eta)
        return px, py, pz, math.sqrt(px * px + py * py + pz * pz + m * m)
    x = [u + v for u, v in zip(p4(*a), p4(*b))]
    return math.sqrt(max(x[3] ** 2 - x[0] ** 2 - x[1] ** 2 - x[2] ** 2, 0))


# the primary-dataset rule, written out by hand: (one of these must fire, none of these may fire)
DOUBLE_MU = ["HLT_Mu17_TrkIsoVVL_Mu8_TrkIsoVVL_DZ", "HLT_Mu17_TrkIsoVVL_Mu8_TrkIsoVVL_DZ_Mass8",
             "HLT_Mu17_TrkIsoVVL_Mu8_TrkIsoVVL_DZ_Mass3p8"]
SINGLE_MU = ["HLT_IsoMu24", "HLT_IsoMu27"]
SINGLE_E = ["HLT_Ele32_WPTight_Gsf", "HLT_Ele27_WPTight_Gsf"]
DOUBLE_E = ["HLT_Ele23_Ele12_CaloIdL_TrackIdL_IsoVL", "HLT_Ele23_Ele12_CaloIdL_TrackIdL_IsoVL_DZ"]
PD_RULE = {None: (None, []), "DoubleMuon": (DOUBLE_MU, []), "SingleMuon": (SINGLE_MU, DOUBLE_MU),
           "EGamma": (SINGLE_E + DOUBLE_E, DOUBLE_MU + SINGLE_MU)}


def reference(path, primary_dataset=None, lead_mu=29.0, lead_e=35.0, pu_id=True):
    """Plain per-event loop over uproot arrays: (event number -> [selected jet pts])."""
    t = uproot.open(path)["Events"]
    keys = set(t.keys())
    a = t.arrays(library="np", filter_name=["event", "Muon_*", "Electron_*", "Jet_pt", "Jet_eta", "Jet_phi",
                                            "Jet_jetId", "Jet_puId", "HLT_IsoMu2*", "HLT_Ele*",
                                            "HLT_Mu17_TrkIsoVVL_Mu8*"])
    need, veto = PD_RULE[primary_dataset]
    out = {}
    for i in range(len(a["event"])):
        def fired(names, i=i):
            return any(bool(a[n][i]) for n in names if n in keys)
        if need is not None and not (fired(need) and not fired(veto)):
            continue
        mu = {f: a[f"Muon_{f}"][i] for f in ("pt", "eta", "tightId", "looseId", "pfRelIso04_all")}
        el = {f: a[f"Electron_{f}"][i] for f in ("pt", "eta", "deltaEtaSC", "cutBased")}
        mus = [k for k in range(len(mu["pt"])) if mu["pt"][k] > 15 and abs(mu["eta"][k]) < 2.4
               and mu["tightId"][k] and mu["pfRelIso04_all"][k] < 0.15]
        els = [k for k in range(len(el["pt"])) if el["pt"][k] > 15 and abs(el["eta"][k]) < 2.5
               and el["cutBased"][k] >= 4 and not (1.4442 <= abs(el["eta"][k] + el["deltaEtaSC"][k]) <= 1.566)]
        if len(mus) == 2 and fired(SINGLE_MU):
            pre, idx, lead = "Muon", mus, lead_mu
        elif len(els) == 2 and len(mus) != 2 and fired(SINGLE_E):
            pre, idx, lead = "Electron", els, lead_e
        else:
            continue
        lep = [(a[f"{pre}_pt"][i][k], a[f"{pre}_eta"][i][k], a[f"{pre}_phi"][i][k], a[f"{pre}_mass"][i][k],
                a[f"{pre}_charge"][i][k]) for k in idx]
        if lep[0][4] == lep[1][4] or max(lep[0][0], lep[1][0]) <= lead:      # the leading lepton: highest pT
            continue
        mine = {(pre, k) for k in idx}
        n_other = sum(1 for k in range(len(mu["pt"])) if ("Muon", k) not in mine and
                      mu["pt"][k] > 10 and abs(mu["eta"][k]) < 2.4 and mu["looseId"][k]
                      and mu["pfRelIso04_all"][k] < 0.25)
        n_other += sum(1 for k in range(len(el["pt"])) if ("Electron", k) not in mine and
                       el["pt"][k] > 10 and abs(el["eta"][k]) < 2.5 and el["cutBased"][k] >= 1)
        if n_other:  # third-lepton veto
            continue
        if not 71 < _mass(lep[0][:4], lep[1][:4]) < 111:
            continue
        jets = [a["Jet_pt"][i][k] for k in range(len(a["Jet_pt"][i]))
                if a["Jet_pt"][i][k] > 20 and abs(a["Jet_eta"][i][k]) < 2.5 and a["Jet_jetId"][i][k] >= 2
                and all(_dr(a["Jet_eta"][i][k], a["Jet_phi"][i][k], lp[1], lp[2]) > 0.4 for lp in lep)
                and (not pu_id or a["Jet_pt"][i][k] >= 50 or a["Jet_puId"][i][k] & 4)]
        if jets:
            out[int(a["event"][i])] = jets
    return out


def _select(path, ana=None, **kw):
    ana = ana or DYJets()
    t = uproot.open(path)["Events"]
    events = events_from_arrays(t.arrays(resolve_columns(t.keys(), ana.columns, path=path), how=dict))
    return select(events, cuts=ana.cuts, **kw)


def _jets_by_event(sel):
    return {int(e): [float(x) for x in pts] for e, pts in zip(np.asarray(sel.events.event), sel.jets.pt.tolist())}


@pytest.mark.parametrize("name", ["nano_dy.root", "nano_dimuon.root", "pfnano.root"])
def test_selection_matches_plain_loop(name):
    from conftest import real_file
    path = real_file(name)
    sel = _select(path)
    ref = reference(path)
    got = _jets_by_event(sel)
    assert got.keys() == ref.keys()
    for e in ref:
        np.testing.assert_allclose(got[e], ref[e], rtol=1e-6)
    # the cutflow is monotonic and ends with the selected events
    counts = [int(sel.cut[s].sum()) for s in ("all", "lumi", "trigger", "two leptons", "lepton veto", "Z window",
                                              "jets")]
    assert counts == sorted(counts, reverse=True) and counts[-1] == len(ref)


def _synthetic(small_sample, dataset):
    from jetdask.fileset import load_fileset
    return sorted(f.path for f in load_fileset(small_sample)[dataset].files)[0]


@pytest.mark.parametrize("cuts", [{"lead_muon_pt": 20.0, "lead_electron_pt": 25.0}, {"pu_id": None}])
def test_configured_cuts_match_plain_loop(cuts, nano_dy_path, small_sample):
    """Lower lepton thresholds / no pile-up jet ID select what the plain loop selects with them."""
    kw = {"lead_mu": cuts.get("lead_muon_pt", 29.0), "lead_e": cuts.get("lead_electron_pt", 35.0),
          "pu_id": cuts.get("pu_id", "loose") is not None}
    mc = _synthetic(small_sample, "DYJetsToLL_M-50")
    for path in (nano_dy_path, mc):
        got = _jets_by_event(_select(path, DYJets(cuts=cuts)))
        ref = reference(path, **kw)
        assert got.keys() == ref.keys() and all(np.allclose(got[e], ref[e]) for e in ref)
    # the default cuts select fewer events (plateau thresholds) or fewer jets (pile-up ID)
    default = reference(mc)
    loose = reference(mc, **kw)
    assert default.keys() <= loose.keys() and len(default) > 100
    assert sum(map(len, default.values())) < sum(map(len, loose.values()))


def test_bad_cut_is_a_config_error():
    from jetdask.errors import ConfigError
    with pytest.raises(ConfigError, match="cuts.lead_mu_pt"):
        DYJets(cuts={"lead_mu_pt": 20})
    with pytest.raises(ConfigError, match="cuts.pu_id"):
        DYJets(cuts={"pu_id": "lose"})


def test_primary_datasets_count_each_data_event_once(small_sample):
    """The same (unskimmed synthetic) data file read as DoubleMuon, SingleMuon and EGamma: each as the plain
    loop selects it, disjoint, and together the selection without the rule (every selected event fired a
    single-lepton trigger, which belongs to SingleMuon or EGamma)."""
    data = _synthetic(small_sample, "DoubleMuon")
    union: dict = {}
    for pd in ("DoubleMuon", "SingleMuon", "EGamma"):
        got = _jets_by_event(_select(data, primary_dataset=pd))
        assert got.keys() == reference(data, primary_dataset=pd).keys() and len(got) > 10, pd
        assert not (got.keys() & union.keys()), pd
        union.update(got)
    every = _jets_by_event(_select(data))
    assert union.keys() == every.keys()
    # DoubleMuon has no ee events; EGamma has no mumu events
    for pd, other in (("DoubleMuon", "ee"), ("EGamma", "mumu")):
        assert other not in set(_select(data, primary_dataset=pd).channel)


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
    # older NanoAOD (B and C only): BvsL, CvsB, CvsL derived from the two scores, one entry per jet
    assert "DeepJet_BvsAll" not in out.hists["Data"]
    for disc in ("BvsL", "CvsB", "CvsL"):
        h = out.hists["Data"][f"DeepJet_{disc}"]
        assert h[{"flavour": "data"}].sum().value == out.counters["Data"]["selected_jets"]
        assert h[{"flavour": "data"}].sum(flow=True).value == h[{"flavour": "data"}].sum().value


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


# -- leading lepton and third-lepton veto on crafted events -------------------------------------------
def _crafted_events():
    """Four events (see the test): muons, electrons, one jet each, the single-lepton triggers."""
    import awkward as ak

    mu = [  # (pt, eta, phi, charge, tightId, looseId) per muon
        [(25.0, 0.5, 0.0, 1, True, True), (45.0, -0.5, 3.0, -1, True, True)],      # 0: mumu, leading stored second
        [(20.0, 1.0, 1.0, 1, True, False)],                                         # 1: ee + tight muon, no looseId
        [(20.0, 1.0, 1.0, 1, True, True)],                                          # 2: ee + loose muon
        [(45.0, 0.5, 0.0, 1, True, True), (25.0, -0.5, 3.0, -1, True, True)],      # 3: mumu, leading stored first
    ]
    el = [[], [(50.0, 0.3, 0.0, 1), (40.0, -0.3, 3.0, -1)], [(50.0, 0.3, 0.0, 1), (40.0, -0.3, 3.0, -1)], []]
    n = len(mu)

    def col(rows, j, dtype):
        return ak.values_astype(ak.Array([[r[j] for r in ev] for ev in rows]), dtype)

    arrays = {"run": np.ones(n, np.uint32), "luminosityBlock": np.ones(n, np.uint32),
              "event": np.arange(n, dtype=np.uint64),
              "Muon_pt": col(mu, 0, np.float32), "Muon_eta": col(mu, 1, np.float32), "Muon_phi": col(mu, 2, np.float32),
              "Muon_mass": ak.values_astype(col(mu, 0, np.float32) * 0 + 0.1057, np.float32),
              "Muon_charge": col(mu, 3, np.int32), "Muon_tightId": col(mu, 4, bool), "Muon_looseId": col(mu, 5, bool),
              "Muon_pfRelIso04_all": ak.values_astype(col(mu, 0, np.float32) * 0 + 0.05, np.float32),
              "Electron_pt": col(el, 0, np.float32), "Electron_eta": col(el, 1, np.float32),
              "Electron_phi": col(el, 2, np.float32), "Electron_charge": col(el, 3, np.int32),
              "Electron_mass": ak.values_astype(col(el, 0, np.float32) * 0, np.float32),
              "Electron_deltaEtaSC": ak.values_astype(col(el, 0, np.float32) * 0, np.float32),
              "Electron_cutBased": ak.values_astype(col(el, 0, np.float32) * 0 + 4, np.int32),
              "Jet_pt": ak.Array([[60.0]] * n), "Jet_eta": ak.Array([[1.8]] * n), "Jet_phi": ak.Array([[1.5]] * n),
              "Jet_mass": ak.Array([[5.0]] * n), "Jet_jetId": ak.Array([[6]] * n),
              "HLT_IsoMu27": np.array([True, False, False, True]),
              "HLT_Ele32_WPTight_Gsf": np.array([False, True, True, False])}
    return events_from_arrays(arrays)


def test_leading_lepton_is_the_highest_pt_and_veto_uses_loose_id():
    """Event 0 stores its 25 GeV muon first: the leading one (45 GeV) passes the 29 GeV plateau cut
    as in event 3, where the order is the usual one. Event 1 has a tight muon without looseId
    besides its two electrons: not a loose lepton, not vetoed; event 2 has a loose one: vetoed."""
    sel = select(_crafted_events())
    assert list(np.asarray(sel.events.event)) == [0, 1, 3]
    assert list(sel.channel) == ["mumu", "ee", "mumu"]
    np.testing.assert_allclose(np.asarray(sel.leptons.pt[:, 0]), [45.0, 50.0, 45.0])
    np.testing.assert_allclose(np.asarray(sel.leptons.pt[:, 1]), [25.0, 40.0, 25.0])
    assert list(sel.cut["two leptons"]) == [True, True, True, True]
    assert list(sel.cut["lepton veto"]) == [True, True, False, True]


def test_selection_independent_of_stored_lepton_order(nano_dy_path):
    """The real DY file with every event's muons and electrons stored in reverse order (lowest pT
    first) selects the same events, jets and leading leptons."""
    ana = DYJets()
    t = uproot.open(nano_dy_path)["Events"]
    arrays = t.arrays(resolve_columns(t.keys(), ana.columns, path=nano_dy_path), how=dict)
    flipped = {k: (v[:, ::-1] if k.startswith(("Muon_", "Electron_")) else v) for k, v in arrays.items()}
    a, b = select(events_from_arrays(arrays), cuts=ana.cuts), select(events_from_arrays(flipped), cuts=ana.cuts)
    assert len(a.events) > 0
    assert _jets_by_event(a) == _jets_by_event(b)
    np.testing.assert_array_equal(np.asarray(a.leptons.pt[:, 0]), np.asarray(b.leptons.pt[:, 0]))
    assert np.all(np.asarray(a.leptons.pt[:, 0]) >= np.asarray(a.leptons.pt[:, 1]))
    for step in a.cut:
        np.testing.assert_array_equal(a.cut[step], b.cut[step], err_msg=step)
