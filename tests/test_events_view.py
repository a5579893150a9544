"""The events view equals plain uproot reads, element by element, on the real files."""
from __future__ import annotations

import math

import awkward as ak
import numpy as np
import pytest
import uproot

from conftest import real_file
from jetdask.columns import resolve_columns
from jetdask.errors import MissingColumnError
from jetdask.events import events_from_arrays


def _read(path, requested, start=0, stop=None):
    t = uproot.open(path)["Events"]
    b = resolve_columns(t.keys(), requested, path=path)
    return events_from_arrays(t.arrays(b, entry_start=start, entry_stop=stop, how=dict), entry_start=start), t


@pytest.mark.parametrize("name", ["pfnano.root", "nano_dy.root", "nano_dimuon.root"])
def test_collections_equal_branches(name):
    path = real_file(name)
    ev, t = _read(path, ["run", "luminosityBlock", "event", "Jet_pt", "Jet_eta", "Muon", "HLT_IsoMu24", "PV_npvs"])
    raw = t.arrays(["run", "event", "Jet_pt", "Jet_eta", "Muon_pt", "Muon_charge", "HLT_IsoMu24", "PV_npvs"])
    assert ak.to_list(ev.run) == ak.to_list(raw.run) and ak.to_list(ev.event) == ak.to_list(raw.event)
    assert ak.to_list(ev.Jet.pt) == ak.to_list(raw.Jet_pt)
    assert ak.to_list(ev.Jet.eta) == ak.to_list(raw.Jet_eta)
    assert ak.to_list(ev.Muon.pt) == ak.to_list(raw.Muon_pt)
    assert ak.to_list(ev.Muon.charge) == ak.to_list(raw.Muon_charge)
    assert ak.to_list(ev.HLT.IsoMu24) == ak.to_list(raw.HLT_IsoMu24)
    assert ak.to_list(ev.PV.npvs) == ak.to_list(raw.PV_npvs)
    assert np.array_equal(ev._entry, np.arange(t.num_entries))


def test_entry_numbers_follow_entry_start(nano_dy_path):
    ev, _ = _read(nano_dy_path, ["event"], start=13, stop=20)
    assert ev._entry.tolist() == list(range(13, 20))


def test_candidate_links_on_pfnano(pfnano_path):
    ev, t = _read(pfnano_path, ["Jet", "JetPFCands", "PFCands", "JetSVs", "FatJet", "FatJetPFCands", "Muon"])
    raw = t.arrays(["nJet", "JetPFCands_jetIdx", "JetPFCands_pFCandsIdx", "PFCands_pt", "JetSVs_jetIdx",
                    "JetSVs_mass", "nFatJet", "FatJetPFCands_jetIdx", "FatJetPFCands_pFCandsIdx",
                    "Muon_jetIdx", "Jet_pt"], library="np")
    n_links = 0
    for i in range(t.num_entries):
        for j in range(raw["nJet"][i]):
            sel = raw["JetPFCands_jetIdx"][i] == j
            expected = raw["PFCands_pt"][i][raw["JetPFCands_pFCandsIdx"][i][sel]].tolist()
            assert ev.Jet.pfcands.pfcand.pt[i][j].tolist() == expected
            assert ev.Jet.svs.mass[i][j].tolist() == raw["JetSVs_mass"][i][raw["JetSVs_jetIdx"][i] == j].tolist()
            n_links += len(expected)
        for j in range(raw["nFatJet"][i]):
            sel = raw["FatJetPFCands_jetIdx"][i] == j
            expected = raw["PFCands_pt"][i][raw["FatJetPFCands_pFCandsIdx"][i][sel]].tolist()
            assert ev.FatJet.pfcands.pfcand.pt[i][j].tolist() == expected
        for k, jidx in enumerate(raw["Muon_jetIdx"][i]):
            got = ev.Muon.jet[i][k]
            assert (got is None) if jidx < 0 else got.pt == raw["Jet_pt"][i][jidx]
    assert n_links > 100  # the links are really exercised


def test_vector_behaviour(nano_dy_path):
    ev, t = _read(nano_dy_path, ["Muon", "Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass"])
    two = ev[ak.num(ev.Muon) >= 2]
    m = (two.Muon[:, 0] + two.Muon[:, 1]).mass
    for mu, mass in zip(two.Muon.tolist(), m.tolist()):
        a, b = mu[0], mu[1]
        def p4(x):
            px, py = x["pt"] * math.cos(x["phi"]), x["pt"] * math.sin(x["phi"])
            pz = x["pt"] * math.sinh(x["eta"])
            return px, py, pz, math.sqrt(px * px + py * py + pz * pz + x["mass"] ** 2)
        s = [u + v for u, v in zip(p4(a), p4(b))]
        assert mass == pytest.approx(math.sqrt(s[3] ** 2 - s[0] ** 2 - s[1] ** 2 - s[2] ** 2), rel=1e-5)
    mj = ev[(ak.num(ev.Muon) >= 1) & (ak.num(ev.Jet) >= 1)]
    dr = mj.Muon[:, 0].deltaR(mj.Jet[:, 0])
    for mu, jet, d in zip(mj.Muon[:, 0].tolist(), mj.Jet[:, 0].tolist(), dr.tolist()):
        dphi = (mu["phi"] - jet["phi"] + math.pi) % (2 * math.pi) - math.pi
        assert d == pytest.approx(math.hypot(mu["eta"] - jet["eta"], dphi), rel=1e-5)


def test_resolve_columns(pfnano_path):
    keys = uproot.open(pfnano_path)["Events"].keys()
    cols = resolve_columns(keys, ["Jet_pt", "JetSVs", "HLT_IsoMu2*", "optional:Jet_FlavSplit"])
    assert "nJet" in cols and "nJetSVs" in cols and "Jet_FlavSplit" not in cols
    assert {"HLT_IsoMu24", "HLT_IsoMu27"} <= set(cols)
    assert all(c.startswith(("Jet", "nJet", "HLT_IsoMu2")) for c in cols)
    with pytest.raises(MissingColumnError) as err:
        resolve_columns(keys, ["Jet_ptt"], path=pfnano_path)
    assert "Jet_pt" in str(err.value) and pfnano_path in str(err.value)
    with pytest.raises(MissingColumnError):
        resolve_columns(keys, ["NoSuch_*"])
