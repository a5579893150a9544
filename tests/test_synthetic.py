"""Tests of the synthetic PFNano generator (jetdask.synthetic).

One small sample (MC + data-like file, mismodel = 1) is written once per module;
statistical tests use fixed seeds, so they are deterministic.
"""
from __future__ import annotations

import json
import os
import pathlib

import awkward as ak
import numpy as np
import pytest
import uproot

from jetdask.synthetic import batch as batchmod
from jetdask.synthetic import generate_file, generate_sample, schema
from jetdask.synthetic.conditions import Conditions

SHARED_SCHEMA = pathlib.Path(os.environ.get("JETDASK_SHARED",
                                           pathlib.Path(__file__).resolve().parents[2] / "shared")) / "schema"
N_EVENTS, SEED, BASKET = 6000, 11, 2000
TRUTH = ("Jet_hadronFlavour", "Jet_partonFlavour", "Jet_nBHadrons", "Jet_nCHadrons", "Jet_FlavSplit",
         "Jet_genJetIdx", "nGenJet", "GenJet_pt", "genWeight", "Pileup_nTrueInt", "Muon_genPartFlav")


def _schema_json(name):
    path = SHARED_SCHEMA / name
    if not path.exists():
        pytest.skip(f"{path} not available (shared/ beside the checkout)")
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    fileset_path = generate_sample(out, events=N_EVENTS, files=1, seed=SEED, mismodel=1.0,
                                   basket_events=BASKET, workers=1)
    raw = json.loads(pathlib.Path(fileset_path).read_text())
    # the file holds paths relative to its own directory (the sample can be moved)
    assert all(not os.path.isabs(p) for v in raw.values() for p in v["files"])
    fileset = {ds: dict(v, files={os.path.join(str(out), p): t for p, t in v["files"].items()})
               for ds, v in raw.items()}
    mc_path = next(iter(fileset["DYJetsToLL_M-50"]["files"]))
    data_path = next(iter(fileset["DoubleMuon"]["files"]))
    mc_tree = uproot.open(mc_path)["Events"]
    data_tree = uproot.open(data_path)["Events"]
    return {"fileset_path": fileset_path, "fileset": fileset, "mc_path": mc_path, "data_path": data_path,
            "mc_tree": mc_tree, "data_tree": data_tree, "mc": mc_tree.arrays(), "data": data_tree.arrays()}


def _auc(sig, bkg):
    x = np.concatenate([sig, bkg])
    ranks = np.argsort(np.argsort(x, kind="stable"), kind="stable") + 1.0
    return (ranks[: len(sig)].sum() - len(sig) * (len(sig) + 1) / 2) / (len(sig) * len(bkg))


def _ks(a, b):
    """Two-sample Kolmogorov-Smirnov distance and its 0.1 % critical value."""
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])
    d = np.max(np.abs(np.searchsorted(a, grid, "right") / len(a) - np.searchsorted(b, grid, "right") / len(b)))
    return d, 1.95 * np.sqrt((len(a) + len(b)) / (len(a) * len(b)))


def _iqr(x):
    q1, q3 = np.percentile(x, [25, 75])
    return q3 - q1


# --------------------------------------------------------------------------- fileset and files

def test_fileset_structure(sample):
    fs = sample["fileset"]
    assert set(fs) == {"DYJetsToLL_M-50", "DoubleMuon"}
    mc, data = fs["DYJetsToLL_M-50"], fs["DoubleMuon"]
    assert mc["metadata"] == {"is_data": False, "xsec": 6077.22, "tree": "Events", "synthetic": True, "energy": 13,
                              "mismodel": 1.0, "sf_mismodel": 1.0}
    assert data["metadata"]["is_data"] is True and data["metadata"]["tree"] == "Events"
    # lumi: data candidates x MC acceptance of the injected b-tag mismodelling / xsec (from the Runs trees)
    mc_runs = uproot.open(sample["mc_path"])["Runs"].arrays(library="np")
    data_runs = uproot.open(sample["data_path"])["Runs"].arrays(library="np")
    assert mc_runs["genEventCount"].sum() == N_EVENTS and mc_runs["synthCandidates"].sum() > N_EVENTS
    acceptance = mc_runs["genEventSumw"].sum() / mc_runs["synthCandidateSumw"].sum()
    assert data["metadata"]["lumi"] == pytest.approx(data_runs["synthCandidates"].sum() * acceptance / 6077.22,
                                                     rel=1e-5)
    assert data["metadata"]["lumi"] == pytest.approx(N_EVENTS / 6077.22, rel=0.05)
    for ds in (mc, data):
        assert len(ds["files"]) == 1
        for path, tree in ds["files"].items():
            assert os.path.isabs(path) and os.path.exists(path) and tree == "Events"
    assert sample["mc_tree"].num_entries == N_EVENTS == sample["data_tree"].num_entries


def test_deepjet_extension_branches_present_with_types(sample):
    ext = _schema_json("deepjet_extension_branches.json")
    assert len(ext) == 603
    for tree, is_mc in ((sample["mc_tree"], True), (sample["data_tree"], False)):
        for name, declared in ext.items():
            if name == "Jet_FlavSplit" and not is_mc:
                assert name not in tree
                continue
            assert name in tree, name
            assert tree[name].interpretation.content.from_dtype == np.dtype(declared.split()[0]).newbyteorder(">"), name


def test_key_branch_types_follow_real_schema(sample):
    real = _schema_json("real_branches.json")["pfnano.root"]
    tree = sample["mc_tree"]
    written = [b for b in tree.keys() if b in real]
    assert len(written) > 250
    # LHEScaleWeight is in real NanoAOD DY samples (nano_dy.root), not in pfnano.root
    assert not [b for b in tree.keys() if b not in real and not b.startswith("Jet_DeepJet_")
                and b not in ("Jet_FlavSplit", "LHEScaleWeight", "nLHEScaleWeight")]
    for name in written:
        assert tree[name].typename == real[name]["typename"], name
    for name in ("nJet", "nMuon", "nElectron", "nJetPFCands", "nPFCands", "nJetSVs", "run", "luminosityBlock"):
        assert tree[name].typename == "uint32_t", name
    assert tree["event"].typename == "uint64_t"


def test_data_files_have_no_truth_and_distinct_ids(sample):
    mc, data = sample["mc"], sample["data"]
    for name in TRUTH:
        assert name in mc.fields, name
        assert name not in data.fields, name
    assert np.all(mc.run == 1) and np.all(data.run >= 320000)
    for arr in (mc, data):
        ids = np.stack([ak.to_numpy(arr.run), ak.to_numpy(arr.luminosityBlock), ak.to_numpy(arr.event)], 1)
        assert len(np.unique(ids, axis=0)) == len(ids)


def test_one_basket_per_basket_events(sample):
    tree = sample["mc_tree"]
    for name in ("nJet", "Jet_pt", "Jet_DeepJet_sv_mass_3", "event", "JetPFCands_pt"):
        assert tree[name].num_baskets == -(-N_EVENTS // BASKET), name


def test_runs_tree_sums_generator_weights(sample):
    runs = uproot.open(sample["mc_path"])["Runs"].arrays()
    w = ak.to_numpy(sample["mc"].genWeight).astype(np.float64)
    assert int(runs.genEventCount[0]) == N_EVENTS
    assert float(runs.genEventSumw[0]) == pytest.approx(w.sum())
    assert "genEventSumw" not in uproot.open(sample["data_path"])["Runs"].keys()


# --------------------------------------------------------------------------- jagged structure

def test_jagged_counts_and_indices(sample):
    ev = sample["mc"]
    n_jet = ak.to_numpy(ev.nJet).astype(np.int64)
    for name in ("Jet_pt", "Jet_btagDeepFlavB", "Jet_DeepJet_Cpfcan_puppiw_24", "Jet_DeepCSV_vertexMass"):
        assert np.array_equal(ak.to_numpy(ak.num(ev[name])), n_jet), name
    assert np.array_equal(ak.to_numpy(ak.num(ev.Muon_pt)), ak.to_numpy(ev.nMuon))
    jidx = ev.JetPFCands_jetIdx
    assert ak.all(jidx >= 0) and ak.all(jidx < ev.nJet)
    assert ak.all(jidx[:, 1:] >= jidx[:, :-1])  # sorted by jetIdx within each event
    pidx = ev.JetPFCands_pFCandsIdx
    assert ak.all(pidx >= 0) and ak.all(pidx < ev.nPFCands)
    # every PFCand belongs to exactly one jet, and the pointed-to pT is the jet candidate's pT
    assert ak.all(ak.num(pidx) == ev.nPFCands)
    assert ak.all(ev.PFCands_pt[pidx] == ev.JetPFCands_pt)
    sv_j = ev.JetSVs_jetIdx
    assert ak.all(sv_j >= 0) and ak.all(sv_j < ev.nJet) and ak.all(sv_j[:, 1:] >= sv_j[:, :-1])
    assert ak.all((ev.JetSVs_sVIdx >= -1) & (ev.JetSVs_sVIdx < ev.nSV))
    # per-jet constituent counts agree with the candidate table
    starts = np.cumsum(n_jet) - n_jet
    global_jet = ak.to_numpy(ak.flatten(jidx)) + np.repeat(starts, ak.to_numpy(ev.nJetPFCands).astype(np.int64))
    n_const = ak.to_numpy(ak.flatten(ev.Jet_nConstituents))
    assert np.array_equal(np.bincount(global_jet, minlength=len(n_const)), n_const)


def test_lepton_jet_cross_references(sample):
    ev = sample["mc"]
    for lep in ("Muon", "Electron"):
        jet_idx = ev[f"{lep}_jetIdx"]
        assert ak.all((jet_idx >= -1) & (jet_idx < ev.nJet))
        idx1 = ev[f"Jet_{lep.lower()}Idx1"]
        assert ak.all((idx1 >= -1) & (idx1 < ev[f"n{lep}"]))
        has = idx1 >= 0
        back = ev[f"{lep}_jetIdx"][ak.mask(idx1, has)]
        assert ak.all(ak.fill_none(back == ak.local_index(idx1), True))
        assert ak.sum(has) > 0


# --------------------------------------------------------------------------- physics content

def _flat(ev, name, mask=None):
    x = ak.flatten(ev[name])
    return ak.to_numpy(x if mask is None else x[mask])


def test_flavour_fractions_and_labels(sample):
    ev = sample["mc"]
    hf = _flat(ev, "Jet_hadronFlavour")
    pf = _flat(ev, "Jet_partonFlavour")
    split = _flat(ev, "Jet_FlavSplit")
    nb = _flat(ev, "Jet_nBHadrons")
    assert 0.015 < np.mean(hf == 5) < 0.04
    assert 0.04 < np.mean(hf == 4) < 0.09
    assert set(np.unique(hf)) == {0, 4, 5}
    assert np.all(nb[hf == 5] >= 1) and np.any(nb[hf == 5] == 2) and np.all(nb[hf != 5] == 0)
    assert np.all(np.isin(np.abs(pf[hf == 5]), (5, 21)))
    assert np.all(np.isin(np.abs(pf[hf == 4]), (4, 21)))
    assert np.all(np.isin(np.abs(pf[hf == 0]), (0, 1, 2, 3, 21)))
    assert np.all((split >= 500) & (split < 600) == (hf == 5))
    assert np.all((split >= 400) & (split < 500) == (hf == 4))
    assert np.all(np.isin(split[hf == 0], (0, 1, 2, 1000)))
    assert np.all((split == 511) == ((hf == 5) & (pf == 21)))


def test_tagging_inputs_differ_by_flavour(sample):
    ev = sample["mc"]
    hf = _flat(ev, "Jet_hadronFlavour")
    central = (np.abs(_flat(ev, "Jet_eta")) < 2.5) & (_flat(ev, "Jet_pt") > 20)
    b, c, light = central & (hf == 5), central & (hf == 4), central & (hf == 0)
    assert b.sum() > 200 and c.sum() > 500
    sig = _flat(ev, "Jet_DeepJet_Cpfcan_BtagPf_trackSip2dSig_0")
    sig3 = _flat(ev, "Jet_DeepJet_Cpfcan_BtagPf_trackSip3dSig_1")
    assert np.median(sig[b]) > 3 * np.median(sig[light])
    assert np.mean(np.clip(sig3[b], -50, 50)) > np.mean(np.clip(sig3[light], -50, 50)) + 3.0
    has_sv = _flat(ev, "Jet_DeepJet_nsv") > 0
    f_b, f_c, f_l = has_sv[b].mean(), has_sv[c].mean(), has_sv[light].mean()
    assert f_b > f_c + 0.2 and f_c > f_l + 0.15
    mass = _flat(ev, "Jet_DeepJet_sv_mass_0")
    assert np.median(mass[b & has_sv]) > 1.5 > np.median(mass[c & has_sv]) > np.median(mass[light & has_sv])
    score = _flat(ev, "Jet_btagDeepFlavB")
    assert np.all((score >= 0) & (score <= 1))
    assert np.median(score[b]) > 0.5 and np.median(score[light]) < 0.05
    assert _auc(score[b], score[light]) > 0.9
    cvl = _flat(ev, "Jet_btagDeepFlavCvL")
    assert _auc(cvl[c], cvl[light]) > 0.65


def test_defaults_and_special_values(sample):
    ev = sample["mc"]
    n_cpf = _flat(ev, "Jet_DeepJet_nCpfcand")
    for i in (0, 5, 24):
        x = _flat(ev, f"Jet_DeepJet_Cpfcan_BtagPf_trackSip2dSig_{i}")
        assert np.all(x[n_cpf <= i] == 0)
    nsv = _flat(ev, "Jet_DeepJet_nsv")
    assert np.all(_flat(ev, "Jet_DeepJet_sv_mass_1")[nsv <= 1] == 0)
    forward = np.abs(_flat(ev, "Jet_eta")) > 2.5
    assert np.all(_flat(ev, "Jet_DeepCSV_vertexCategory")[forward] == -999)
    assert np.all(_flat(ev, "Jet_DeepCSV_trackSip2dSig_0")[forward] == -999)
    assert np.all(_flat(ev, "Jet_btagDeepB")[forward] == -1)
    cat = _flat(ev, "Jet_DeepCSV_vertexCategory")
    assert set(np.unique(cat)) == {-999, 0, 1, 2}
    assert np.all(_flat(ev, "Jet_DeepCSV_flightDistance2dSig")[cat != 0] == -999)
    pratio = np.concatenate([_flat(ev, f"Jet_DeepJet_Cpfcan_BtagPf_trackPParRatio_{i}") for i in range(25)])
    sip3 = np.concatenate([_flat(ev, f"Jet_DeepCSV_trackSip3dSig_{i}") for i in range(6)])
    assert np.isinf(pratio).sum() >= 1 and np.isnan(sip3).sum() >= 1


def test_dy_selection_fraction(sample):
    for ev in (sample["mc"], sample["data"]):
        def pair_ok(prefix, good, ev=ev):
            leps = ak.zip({k: ev[f"{prefix}_{k}"] for k in ("pt", "eta", "phi", "mass", "charge")})[good]
            leps = ak.pad_none(leps, 2)
            l1, l2 = leps[:, 0], leps[:, 1]
            px = l1.pt * np.cos(l1.phi) + l2.pt * np.cos(l2.phi)
            py = l1.pt * np.sin(l1.phi) + l2.pt * np.sin(l2.phi)
            pz = l1.pt * np.sinh(l1.eta) + l2.pt * np.sinh(l2.eta)
            e = (np.sqrt((l1.pt * np.cosh(l1.eta)) ** 2 + l1.mass ** 2)
                 + np.sqrt((l2.pt * np.cosh(l2.eta)) ** 2 + l2.mass ** 2))
            m = np.sqrt(np.maximum(e ** 2 - px ** 2 - py ** 2 - pz ** 2, 0))
            ok = (l1.pt > 20) & (l1.charge != l2.charge) & (m > 71) & (m < 111)
            return ak.fill_none(ok, False)

        good_mu = ev.Muon_tightId & (ev.Muon_pfRelIso04_all < 0.15) & (ev.Muon_pt > 10) & (abs(ev.Muon_eta) < 2.4)
        good_el = ((ev.Electron_cutBased >= 4) & (ev.Electron_pfRelIso03_all < 0.15) & (ev.Electron_pt > 10)
                   & (abs(ev.Electron_eta) < 2.5))
        selected = pair_ok("Muon", good_mu) | pair_ok("Electron", good_el)
        assert 0.25 < ak.mean(selected) < 0.5


def test_gen_weights(sample):
    w = ak.to_numpy(sample["mc"].genWeight)
    assert len(np.unique(np.abs(w))) == 1
    assert 0.08 < np.mean(w < 0) < 0.18


# --------------------------------------------------------------------------- mismodelling

def _charged_sip3d(arrays):
    x = ak.to_numpy(ak.flatten(arrays["JetPFCands_btagSip3dSig"]))
    return x[x != 0]


def test_mismodel_one_distorts_impact_parameters(sample):
    mc, data = _charged_sip3d(sample["mc"]), _charged_sip3d(sample["data"])
    assert _iqr(data) / _iqr(mc) > 1.15
    d, crit = _ks(mc[::7], data[::7])
    assert d > 3 * crit
    sv_per_jet = [ak.sum(a.nJetSVs) / ak.sum(a.nJet) for a in (sample["mc"], sample["data"])]
    assert sv_per_jet[1] < 0.95 * sv_per_jet[0]


def _columns(b, names):
    out = {}
    for coll, (_, fields) in b.collections.items():
        for k, v in fields.items():
            if f"{coll}_{k}" in names:
                out[f"{coll}_{k}"] = v
    return out


def test_mismodel_zero_is_statistically_compatible():
    mc = batchmod.simulate(np.random.default_rng(101), 5000, 1, Conditions.for_kind("mc", 0.0))
    data = batchmod.simulate(np.random.default_rng(202), 5000, 1, Conditions.for_kind("data", 0.0))
    names = ("JetPFCands_btagSip3dSig", "Jet_DeepJet_Cpfcan_BtagPf_trackSip2dSig_0", "Jet_btagDeepFlavB",
             "JetSVs_dxysig")
    a, b = _columns(mc, names), _columns(data, names)
    for name in names:
        x, y = a[name], b[name]
        if name == "JetPFCands_btagSip3dSig":
            x, y = x[x != 0][::5], y[y != 0][::5]
        d, crit = _ks(x, y)
        assert d < crit, name
    sv = [b_.collections["JetSVs"][0].sum() / b_.collections["Jet"][0].sum() for b_ in (mc, data)]
    assert sv[1] / sv[0] == pytest.approx(1.0, abs=0.08)


# --------------------------------------------------------------------------- determinism and API

def test_simulation_is_deterministic():
    cond = Conditions.for_kind("mc")
    b1 = batchmod.simulate(np.random.default_rng(7), 600, 1, cond)
    b2 = batchmod.simulate(np.random.default_rng(7), 600, 1, cond)
    b3 = batchmod.simulate(np.random.default_rng(8), 600, 1, cond)
    for name, (c1, f1) in b1.collections.items():
        c2, f2 = b2.collections[name]
        assert np.array_equal(c1, c2)
        for k in f1:
            assert np.array_equal(f1[k], f2[k], equal_nan=True), (name, k)
    for k in b1.scalars:
        assert np.array_equal(b1.scalars[k], b2.scalars[k]), k
    assert not np.array_equal(b1.collections["Jet"][1]["pt"][:50], b3.collections["Jet"][1]["pt"][:50])


def test_generate_file_reproduces_the_sample_file(sample, tmp_path):
    again = generate_file(tmp_path / "again.root", N_EVENTS, SEED, kind="mc", mismodel=1.0, first_event=1,
                          basket_events=BASKET)
    names = ["nJet", "Jet_pt", "Jet_btagDeepFlavB", "Jet_DeepJet_Cpfcan_BtagPf_trackSip3dSig_0", "JetPFCands_pt",
             "PFCands_d0", "Muon_pt", "genWeight", "event"]
    redo = uproot.open(again)["Events"].arrays(names)
    for name in names:
        assert ak.all(ak.flatten(redo[name], axis=None) == ak.flatten(sample["mc"][name], axis=None)), name


def test_invalid_arguments(tmp_path):
    with pytest.raises(ValueError):
        generate_file(tmp_path / "x.root", 10, 1, kind="simulation")
    with pytest.raises(ValueError):
        generate_file(tmp_path / "x.root", 10, 1, kind="data", mismodel=-1)
    with pytest.raises(ValueError):
        generate_sample(tmp_path, events=1, files=2)


def test_deepjet_schema_names_match_extension():
    ext = _schema_json("deepjet_extension_branches.json")
    mine = {f"Jet_{k}": v for k, v in schema.deepjet_fields(is_mc=True).items()}
    assert list(mine) == list(ext)
    assert all(ext[k].split()[0] == v for k, v in mine.items())
