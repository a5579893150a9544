"""The events view equals plain uproot reads, element by element, on the real files.

Expected candidate-to-jet lists are computed with an independent Python loop over events.
"""
from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot

from conftest import real_file
from jetdask.errors import ConfigError
from jetdask.nanoaod.columns import resolve_columns
from jetdask.nanoaod.events import (
    GROUP_LINKS,
    LINKS,
    entry_numbers,
    events_from_arrays,
    p4,
    required_branches_for_links,
)

FILES = ["pfnano.root", "nano_dy.root", "nano_dimuon.root"]


def view(path, requested, start=0, stop=None):
    tree = uproot.open(path)["Events"]
    branches = resolve_columns(tree.keys(), requested, path=path)
    arrays = tree.arrays(branches, entry_start=start, entry_stop=stop, how=dict)
    return events_from_arrays(arrays, entry_start=start), tree


def raw(tree, names, start=0, stop=None):
    return tree.arrays(names, entry_start=start, entry_stop=stop)


def same(a, b) -> bool:
    """Equal values (NaN equals NaN: real branches hold a few) of exactly the same dtype."""
    if not isinstance(a, ak.Array) or not isinstance(b, ak.Array):
        return ak.to_list(a) == ak.to_list(b)
    return ak.array_equal(a, b, equal_nan=True, dtype_exact=True, same_content_types=False,
                          check_parameters=False)


def wrap(dphi):
    return (dphi + np.pi) % (2 * np.pi) - np.pi


# ----------------------------------------------------------------------------- structure


@pytest.mark.parametrize("name", FILES)
def test_collections_equal_branches(name):
    path = real_file(name)
    ev, t = view(path, ["run", "luminosityBlock", "event", "fixedGridRhoFastjetAll", "optional:genWeight",
                        "Jet", "Muon", "HLT_IsoMu24", "PV", "MET_pt", "MET_phi", "Flag_goodVertices"])
    keys = set(t.keys())
    r = raw(t, ["run", "luminosityBlock", "event", "fixedGridRhoFastjetAll", "nJet", "nMuon", "HLT_IsoMu24",
                "PV_npvs", "MET_pt", "Flag_goodVertices"])
    for f in ("run", "luminosityBlock", "event", "fixedGridRhoFastjetAll"):
        assert same(ev[f], r[f]), f
    assert ev.event.type.content == r.event.type.content            # uint64 stays uint64
    assert same(ev.HLT.IsoMu24, r.HLT_IsoMu24) and same(ev.PV.npvs, r.PV_npvs)
    assert same(ev.MET.pt, r.MET_pt) and same(ev.Flag.goodVertices, r.Flag_goodVertices)
    assert set(ev.PV.fields) == {k.split("_", 1)[1] for k in keys if k.startswith("PV_")}
    # every field of the collections equals its branch
    for coll in ("Jet", "Muon"):
        branches = [k for k in keys if k.startswith(coll + "_")]
        got = raw(t, branches)
        for b in branches:
            assert same(ev[coll][b.split("_", 1)[1]], got[b]), b
        assert ak.num(ev[coll]).tolist() == r["n" + coll].tolist()
    assert "nJet" not in ev.fields and "nMuon" not in ev.fields      # counters are implied
    assert same(ev.Muon.charge, raw(t, ["Muon_charge"]).Muon_charge)
    if "genWeight" in keys:
        assert same(ev.genWeight, raw(t, ["genWeight"]).genWeight)
    else:
        assert "genWeight" not in ev.fields
    assert len(ev) == t.num_entries
    assert np.array_equal(entry_numbers(ev), np.arange(t.num_entries))


@pytest.mark.parametrize("name", FILES)
def test_all_hlt_bits(name):
    path = real_file(name)
    ev, t = view(path, ["HLT"])
    r = raw(t, [k for k in t.keys() if k.startswith("HLT_")])
    assert set(ev.HLT.fields) == {f.split("_", 1)[1] for f in r.fields}
    for f in r.fields:
        assert same(ev.HLT[f.split("_", 1)[1]], r[f]), f
    assert "HLTriggerFirstPath" not in ev.HLT.fields


def test_top_level_jagged_and_records(nano_dy_path):
    ev, t = view(nano_dy_path, ["PSWeight", "LHEScaleWeight", "Pileup", "LHEPart", "LHE_HT"])
    r = raw(t, ["PSWeight", "LHEScaleWeight", "Pileup_nTrueInt", "LHEPart_pdgId", "LHE_HT"])
    assert same(ev.PSWeight, r.PSWeight) and same(ev.LHEScaleWeight, r.LHEScaleWeight)
    assert "nPSWeight" not in ev.fields                # not requested (only X_* branches get counters)
    assert same(ev.Pileup.nTrueInt, r.Pileup_nTrueInt)
    assert same(ev.LHEPart.pdgId, r.LHEPart_pdgId) and same(ev.LHE.HT, r.LHE_HT)


def test_entry_start(nano_dy_path):
    full, t = view(nano_dy_path, ["event", "Jet_pt", "Muon_pt"])
    part, _ = view(nano_dy_path, ["event", "Jet_pt", "Muon_pt"], start=13, stop=29)
    assert part._entry.tolist() == list(range(13, 29))
    assert entry_numbers(part).dtype == np.int64
    assert same(part.Jet.pt, full.Jet.pt[13:29]) and same(part.event, full.event[13:29])
    sel = part[ak.num(part.Muon) >= 2]
    expected = [13 + i for i, n in enumerate(ak.num(part.Muon).tolist()) if n >= 2]
    assert entry_numbers(sel).tolist() == expected and expected


# ----------------------------------------------------------------------------- links


def test_candidate_links_on_pfnano(pfnano_path):
    ev, t = view(pfnano_path, ["Jet", "JetPFCands", "PFCands", "JetSVs", "SV", "FatJet", "FatJetPFCands",
                               "FatJetSVs", "Muon", "Electron"])
    r = t.arrays(["nJet", "nFatJet", "Jet_pt", "JetPFCands_jetIdx", "JetPFCands_pFCandsIdx", "JetPFCands_pt",
                  "PFCands_pt", "PFCands_eta", "JetSVs_jetIdx", "JetSVs_sVIdx", "JetSVs_mass", "JetSVs_pt",
                  "SV_chi2", "FatJetPFCands_jetIdx", "FatJetPFCands_pFCandsIdx", "FatJetPFCands_pt",
                  "FatJetSVs_jetIdx", "FatJetSVs_pt", "Muon_jetIdx", "Electron_jetIdx"], library="np")
    pfc_pt = ev.Jet.pfcands.pt.tolist()
    pfc_link = ev.Jet.pfcands.pfcand.pt.tolist()
    pfc_eta = ev.Jet.pfcands.pfcand.eta.tolist()
    sv_mass, sv_pt = ev.Jet.svs.mass.tolist(), ev.Jet.svs.pt.tolist()
    sv_chi2 = ev.Jet.svs.sv.chi2.tolist()
    fat_pt, fat_link = ev.FatJet.pfcands.pt.tolist(), ev.FatJet.pfcands.pfcand.pt.tolist()
    fat_sv = ev.FatJet.svs.pt.tolist()
    n_links = n_sv = n_none = 0
    for i in range(t.num_entries):
        assert len(pfc_pt[i]) == r["nJet"][i]
        for j in range(r["nJet"][i]):
            sel = r["JetPFCands_jetIdx"][i] == j
            assert pfc_pt[i][j] == r["JetPFCands_pt"][i][sel].tolist()
            pf = r["JetPFCands_pFCandsIdx"][i][sel]
            assert pfc_link[i][j] == r["PFCands_pt"][i][pf].tolist()
            assert pfc_eta[i][j] == r["PFCands_eta"][i][pf].tolist()
            s = r["JetSVs_jetIdx"][i] == j
            assert sv_mass[i][j] == r["JetSVs_mass"][i][s].tolist()
            assert sv_pt[i][j] == r["JetSVs_pt"][i][s].tolist()
            expected_chi2 = [r["SV_chi2"][i][k] if 0 <= k < len(r["SV_chi2"][i]) else None
                             for k in r["JetSVs_sVIdx"][i][s]]
            assert sv_chi2[i][j] == expected_chi2
            n_links += len(pf)
            n_sv += len(expected_chi2)
            n_none += expected_chi2.count(None)
        for j in range(r["nFatJet"][i]):
            sel = r["FatJetPFCands_jetIdx"][i] == j
            assert fat_pt[i][j] == r["FatJetPFCands_pt"][i][sel].tolist()
            assert fat_link[i][j] == r["PFCands_pt"][i][r["FatJetPFCands_pFCandsIdx"][i][sel]].tolist()
            assert fat_sv[i][j] == r["FatJetSVs_pt"][i][r["FatJetSVs_jetIdx"][i] == j].tolist()
    assert n_links > 1000 and n_sv > 20 and n_none > 0     # the links (and -1 -> None) are exercised
    # the flat candidate collections keep their own link
    assert same(ev.JetPFCands.pfcand.pt,
                [p[k].tolist() for p, k in zip(r["PFCands_pt"], r["JetPFCands_pFCandsIdx"])])
    # lepton -> jet
    for coll in ("Muon", "Electron"):
        jets = ev[coll].jet.pt.tolist()
        for i in range(t.num_entries):
            assert jets[i] == [r["Jet_pt"][i][k] if k >= 0 else None for k in r[f"{coll}_jetIdx"][i]]


@pytest.mark.parametrize("name", ["nano_dy.root", "nano_dimuon.root"])
def test_muon_jet_link(name):
    ev, t = view(real_file(name), ["Muon", "Jet"])
    r = t.arrays(["Jet_pt", "Jet_eta", "Muon_jetIdx"], library="np")
    got = ev.Muon.jet.tolist()
    n_none = 0
    for i in range(t.num_entries):
        for k, jidx in enumerate(r["Muon_jetIdx"][i]):
            if jidx < 0:
                assert got[i][k] is None
                n_none += 1
            else:
                assert (got[i][k]["pt"], got[i][k]["eta"]) == (r["Jet_pt"][i][jidx], r["Jet_eta"][i][jidx])
    assert n_none > 0
    assert same(ev.Muon.jetIdx, raw(t, ["Muon_jetIdx"]).Muon_jetIdx)    # the raw index stays as read
    assert "?" in str(ev.Muon.jet.type)


def test_links_only_when_both_sides_read(pfnano_path):
    ev, _ = view(pfnano_path, ["Jet_pt", "JetPFCands"])
    assert "pfcands" in ev.Jet.fields and "pfcand" not in ev.JetPFCands.fields
    assert "PFCands" not in ev.fields
    ev, _ = view(pfnano_path, ["JetPFCands", "PFCands_pt"])
    assert "Jet" not in ev.fields and "pfcand" in ev.JetPFCands.fields
    ev, _ = view(pfnano_path, ["Muon_pt", "Muon_jetIdx"])
    assert "jet" not in ev.Muon.fields
    ev, _ = view(pfnano_path, ["Jet_pt", "JetPFCands_pt"])          # index branch not read
    assert "pfcands" not in ev.Jet.fields


def test_required_branches_for_links(pfnano_path):
    assert required_branches_for_links("Jet.pfcands") == ["Jet", "JetPFCands", "JetPFCands_jetIdx"]
    assert required_branches_for_links("Jet.pfcands.pfcand") == [
        "Jet", "JetPFCands", "JetPFCands_jetIdx", "JetPFCands_pFCandsIdx", "PFCands"]
    assert required_branches_for_links("Muon.jet", "FatJet.svs.sv") == [
        "FatJet", "FatJetSVs", "FatJetSVs_jetIdx", "FatJetSVs_sVIdx", "Jet", "Muon", "Muon_jetIdx", "SV"]
    with pytest.raises(ConfigError):
        required_branches_for_links("Jet.tracks")
    ev, _ = view(pfnano_path, required_branches_for_links("Jet.pfcands.pfcand", "Muon.jet"))
    assert {"pfcands"} <= set(ev.Jet.fields) and "pfcand" in ev.Jet.pfcands.fields and "jet" in ev.Muon.fields
    # every documented link is reachable by its name
    for lk in LINKS:
        owner = lk.source if lk.kind == "single" else lk.target
        required_branches_for_links(f"{owner}.{lk.field}")
    assert ("JetPFCands", "Jet", "pfcands") in GROUP_LINKS      # tuple form used by the inference layouts


def _expected_groups(cand_counts, jet_idx, jet_counts, values):
    """Python loop: per event, per jet, the values of the candidates pointing to it (file order)."""
    out, pos = [], 0
    for nc, nj in zip(cand_counts, jet_counts):
        idx, val = jet_idx[pos:pos + nc], values[pos:pos + nc]
        out.append([[float(v) for k, v in zip(idx, val) if k == j] for j in range(nj)])
        pos += nc
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_links_unsorted_invalid_random(seed):
    rng = np.random.default_rng(seed)
    n = 300
    nj = rng.integers(0, 6, n)
    nc = rng.integers(0, 25, n)
    npf = rng.integers(0, 30, n)
    nm = rng.integers(0, 4, n)
    ev_c = np.repeat(np.arange(n), nc)
    jet_idx = (rng.integers(-2, 8, nc.sum())).astype(np.int32)        # -1, -2, out of range, unsorted
    pf_idx = (rng.integers(-1, 32, nc.sum())).astype(np.int32)
    mu_idx = (rng.integers(-1, 7, nm.sum())).astype(np.int32)
    cand_pt = rng.random(nc.sum()).astype(np.float32)
    pf_pt = rng.random(npf.sum()).astype(np.float32)
    jet_pt = rng.random(nj.sum()).astype(np.float32)

    def jag(counts, values):
        return ak.unflatten(values, counts)

    arrays = {"event": np.arange(n, dtype=np.uint64), "nJet": nj.astype(np.uint32), "Jet_pt": jag(nj, jet_pt),
              "Jet_eta": jag(nj, jet_pt * 0), "Jet_phi": jag(nj, jet_pt * 0),
              "nJetPFCands": nc, "JetPFCands_jetIdx": jag(nc, jet_idx), "JetPFCands_pt": jag(nc, cand_pt),
              "JetPFCands_pFCandsIdx": jag(nc, pf_idx), "PFCands_pt": jag(npf, pf_pt),
              "Muon_jetIdx": jag(nm, mu_idx), "Muon_pt": jag(nm, np.ones(nm.sum(), np.float32))}
    ev = events_from_arrays(arrays, entry_start=1000)
    assert ev.Jet.pfcands.pt.tolist() == _expected_groups(nc, jet_idx, nj, cand_pt)
    # the pfcand link of the candidates inside the per-jet lists
    pf_off = np.concatenate([[0], np.cumsum(npf)])
    linked = [float(pf_pt[pf_off[e] + k]) if 0 <= k < npf[e] else np.nan for e, k in zip(ev_c, pf_idx)]
    exp = _expected_groups(nc, jet_idx, nj, np.array(linked))
    got = ak.fill_none(ev.Jet.pfcands.pfcand.pt, np.nan).tolist()
    assert [[[x for x in j if x == x] for j in e] for e in got] == \
           [[[x for x in j if x == x] for j in e] for e in exp]
    assert ak.to_list(ak.is_none(ev.Jet.pfcands.pfcand, axis=2)) == \
           [[[x != x for x in j] for j in e] for e in exp]
    # muon -> jet
    jet_off = np.concatenate([[0], np.cumsum(nj)])
    ev_m = np.repeat(np.arange(n), nm)
    exp_mu = [float(jet_pt[jet_off[e] + k]) if 0 <= k < nj[e] else None for e, k in zip(ev_m, mu_idx)]
    assert ak.flatten(ev.Muon.jet.pt).tolist() == exp_mu
    assert entry_numbers(ev).tolist() == list(range(1000, 1000 + n))


def test_edge_cases():
    empty = {"run": np.zeros(0, np.uint32), "nJet": np.zeros(0, np.int32),
             "Jet_pt": ak.unflatten(np.zeros(0, np.float32), np.zeros(0, np.int64)),
             "JetPFCands_jetIdx": ak.unflatten(np.zeros(0, np.int32), np.zeros(0, np.int64))}
    ev = events_from_arrays(empty, entry_start=5)
    assert len(ev) == 0 and ev.Jet.pfcands.type.content is not None and entry_numbers(ev).tolist() == []
    with pytest.raises(ValueError):
        events_from_arrays({})
    with pytest.raises(ValueError, match="entries"):
        events_from_arrays({"run": np.zeros(3), "event": np.zeros(4)})
    with pytest.raises(ValueError, match="nJet"):
        events_from_arrays({"nJet": np.array([1, 2]), "Jet_pt": ak.Array([[1.0], [2.0]])})
    with pytest.raises(ValueError, match="list lengths"):
        events_from_arrays({"Jet_pt": ak.Array([[1.0], [2.0]]), "Jet_eta": ak.Array([[1.0, 2.0], []])})
    # a bare branch X next to X_* branches: nothing lost, the X_* keep their full names
    ev = events_from_arrays({"LHEWeight": np.ones(2), "LHEWeight_originalXWGTUP": np.full(2, 3.0)})
    assert ev.LHEWeight.tolist() == [1.0, 1.0] and ev["LHEWeight_originalXWGTUP"].tolist() == [3.0, 3.0]
    # a counter read alone stays a field; a jagged collection without counter is still a collection
    ev = events_from_arrays({"nJet": np.array([2, 0]), "Muon_pt": ak.Array([[1.0], []])})
    assert ev.nJet.tolist() == [2, 0] and ev.Muon.pt.tolist() == [[1.0], []]


def test_numpy_and_sliced_inputs(nano_dimuon_path):
    t = uproot.open(nano_dimuon_path)["Events"]
    names = ["run", "event", "nMuon", "Muon_pt", "Muon_eta", "Muon_phi", "Muon_mass", "Muon_charge", "MET_pt"]
    ref = events_from_arrays(t.arrays(names, how=dict))
    np_view = events_from_arrays(t.arrays(names, library="np", how=dict))      # object arrays for jagged
    assert ak.to_list(np_view) == ak.to_list(ref)
    full = t.arrays(names, how=dict)
    sliced = events_from_arrays({k: v[10:30] for k, v in full.items()}, entry_start=10)  # offsets not at 0
    assert ak.to_list(sliced) == ak.to_list(ref[10:30])
    perm = np.random.default_rng(3).permutation(len(ref))                     # ListArray inputs
    shuffled = events_from_arrays({k: v[perm] for k, v in full.items()})
    keep = ["run", "event", "Muon", "MET"]
    assert ak.to_list(shuffled[keep]) == ak.to_list(ref[perm][keep])
    assert entry_numbers(ref[3]).tolist() == [3]


def test_build_is_vectorised():
    """50k events, ~5 jets, ~80 candidates each: milliseconds (a loop over events would take seconds)."""
    import time
    rng = np.random.default_rng(5)
    n = 50_000
    nj = rng.poisson(5, n)
    per_jet = rng.poisson(16, nj.sum())
    jet_of_cand = np.repeat(np.arange(nj.sum()), per_jet)
    jet_off = np.concatenate([[0], np.cumsum(nj)])
    ev_of_jet = np.repeat(np.arange(n), nj)
    nc = np.bincount(ev_of_jet[jet_of_cand], minlength=n)
    local = (jet_of_cand - jet_off[ev_of_jet[jet_of_cand]]).astype(np.int32)
    npf = nc + 5
    pf_idx = (rng.random(nc.sum()) * np.repeat(npf, nc)).astype(np.int32)
    arrays = {"event": np.arange(n, dtype=np.uint64), "nJet": nj, "nJetPFCands": nc, "nPFCands": npf}
    for f in ("pt", "eta", "phi", "mass"):
        arrays[f"Jet_{f}"] = ak.unflatten(rng.random(nj.sum(), dtype=np.float32), nj)
        arrays[f"PFCands_{f}"] = ak.unflatten(rng.random(npf.sum(), dtype=np.float32), npf)
    arrays["JetPFCands_jetIdx"] = ak.unflatten(local, nc)
    arrays["JetPFCands_pFCandsIdx"] = ak.unflatten(pf_idx, nc)
    arrays["JetPFCands_pt"] = ak.unflatten(rng.random(nc.sum(), dtype=np.float32), nc)
    events_from_arrays(arrays)
    t0 = time.perf_counter()
    ev = events_from_arrays(arrays)
    elapsed = time.perf_counter() - t0
    assert elapsed < 3.0, f"building the view took {elapsed:.2f} s"
    assert ak.num(ev.Jet.pfcands, axis=2).tolist()[:3] == [per_jet[jet_off[i]:jet_off[i + 1]].tolist()
                                                           for i in range(3)]


# ----------------------------------------------------------------------------- vector


@pytest.mark.parametrize("name", ["nano_dy.root", "nano_dimuon.root"])
def test_dimuon_mass_and_delta_r(name):
    path = real_file(name)
    ev, t = view(path, ["Muon", "Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass", "TrigObj"])
    assert ev.Muon.layout.content.parameter("__record__") == "Momentum4D"
    r = t.arrays(["Muon_pt", "Muon_eta", "Muon_phi", "Muon_mass", "Jet_eta", "Jet_phi"], library="np")
    two = ak.num(ev.Muon) >= 2
    got = ((ev.Muon[two][:, 0] + ev.Muon[two][:, 1]).mass).to_numpy()
    i = np.flatnonzero(ak.to_numpy(two))
    assert len(i) > 5

    def p4(k):
        pt, eta, phi, m = (np.array([r[f"Muon_{v}"][e][k] for e in i], dtype=np.float64)
                           for v in ("pt", "eta", "phi", "mass"))
        px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
        return px, py, pz, np.sqrt(px ** 2 + py ** 2 + pz ** 2 + m ** 2)

    (ax, ay, az, ae), (bx, by, bz, be) = p4(0), p4(1)
    hand = np.sqrt((ae + be) ** 2 - (ax + bx) ** 2 - (ay + by) ** 2 - (az + bz) ** 2)
    assert np.allclose(got, hand, rtol=1e-4, atol=1e-3)

    one = ak.num(ev.Muon) >= 1
    dr = ev.Muon[one][:, 0].deltaR(ev.Jet[one]).tolist()             # broadcasts muon 0 against all jets
    n = 0
    for k, e in enumerate(np.flatnonzero(ak.to_numpy(one))):
        deta = r["Muon_eta"][e][0] - r["Jet_eta"][e].astype(np.float64)
        dphi = wrap(r["Muon_phi"][e][0] - r["Jet_phi"][e].astype(np.float64))
        assert np.allclose(dr[k], np.hypot(deta, dphi), rtol=1e-5, atol=1e-6)
        n += len(dr[k])
    assert n > 20
    # pt/eta/phi without mass: a four-vector of mass 0
    assert ev.TrigObj.layout.content.parameter("__record__") == "Momentum4D"
    assert ak.all(ev.TrigObj.mass == 0)
    assert np.allclose(ak.flatten(ev.TrigObj.pt).to_numpy(), ak.flatten(ev.TrigObj.rho).to_numpy())


def test_vector_names_and_plain_records(pfnano_path):
    ev, t = view(pfnano_path, ["Jet", "PFCands", "SV", "JetPFCands", "JetSVs", "FatJet", "SubJet", "IsoTrack",
                               "Muon"])
    for coll in ("Jet", "PFCands", "IsoTrack", "Muon"):
        assert ev[coll].layout.content.parameter("__record__") == "Momentum4D", coll
    assert ak.all(ev.IsoTrack.mass == 0)
    # SV's x, y, z are the vertex position: vector would take them as momentum components;
    # FatJet/SubJet tau2 (N-subjettiness) would read as vector's tau2 = mass**2: plain records
    for coll in ("SV", "FatJet", "SubJet", "JetPFCands"):
        assert ev[coll].layout.content.parameter("__record__") is None, coll
    r = raw(t, ["FatJet_tau2", "SubJet_tau2", "SV_x", "FatJet_pt", "FatJet_eta", "FatJet_phi", "FatJet_mass"])
    assert same(ev.FatJet.tau2, r.FatJet_tau2) and same(ev.SubJet.tau2, r.SubJet_tau2) and same(ev.SV.x, r.SV_x)
    assert not ak.all(ev.FatJet.tau2 == ev.FatJet.mass ** 2)
    fj = p4(ev.FatJet)                                             # their four-vectors on request
    assert fj.layout.content.parameter("__record__") == "Momentum4D"
    assert same(fj.pt, r.FatJet_pt) and same(fj.mass, r.FatJet_mass)
    assert np.allclose(ak.flatten(fj.rapidity).to_numpy(), np.arctanh(ak.flatten(fj.pz / fj.E).to_numpy()),
                       rtol=1e-4)
    dr = ev.Jet[:, 0].deltaR(fj)
    deta = ak.flatten(ev.Jet.eta[:, 0] - r.FatJet_eta).to_numpy().astype(np.float64)
    dphi = wrap(ak.flatten(ev.Jet.phi[:, 0] - r.FatJet_phi).to_numpy().astype(np.float64))
    assert np.allclose(ak.flatten(dr).to_numpy(), np.hypot(deta, dphi), rtol=1e-5, atol=1e-6)
    sv = p4(ev.Jet.svs.sv)                                         # nested, option-typed records
    assert ak.all(ak.is_none(sv.pt, axis=2) == ak.is_none(ev.Jet.svs.sv, axis=2))
    # linked records keep their behaviour: the jet's pfcands' PFCands are four-vectors
    cand = ev.Jet.pfcands.pfcand
    assert np.allclose(ak.flatten(cand.pt, axis=None).to_numpy(),
                       ak.flatten(np.hypot(cand.px, cand.py), axis=None).to_numpy(), rtol=1e-5)
    dr = ev.Jet.deltaR(ev.Jet.pfcands.pfcand)                      # jet vs each of its candidates
    assert ak.max(dr) < 0.8 and ak.count(dr) > 1000 and ak.mean(dr) < 0.3
