"""Column resolution (exact names, globs, collections, counters, optional:) on real branch lists."""
from __future__ import annotations

import pickle

import pytest
import uproot

from conftest import real_file
from jetdask.errors import MissingColumnError
from jetdask.nanoaod.columns import resolve_columns


@pytest.fixture(scope="module")
def pfnano_keys():
    return uproot.open(real_file("pfnano.root"))["Events"].keys()


@pytest.fixture(scope="module")
def dimuon_keys():
    return uproot.open(real_file("nano_dimuon.root"))["Events"].keys()


def test_exact_names_and_counters(pfnano_keys):
    cols = resolve_columns(pfnano_keys, ["run", "event", "Jet_pt", "Muon_charge", "genWeight"])
    assert cols == sorted(["run", "event", "Jet_pt", "nJet", "Muon_charge", "nMuon", "genWeight"])


def test_collection_name(pfnano_keys):
    cols = resolve_columns(pfnano_keys, ["Jet"])
    expected = sorted([k for k in pfnano_keys if k.startswith("Jet_")] + ["nJet"])
    assert cols == expected
    assert not any(c.startswith(("JetPFCands", "JetSVs", "nJetPFCands")) for c in cols)
    assert len(cols) > 100


def test_record_prefix_without_counter(pfnano_keys):
    cols = resolve_columns(pfnano_keys, ["HLT"])
    assert cols == sorted(k for k in pfnano_keys if k.startswith("HLT_"))
    assert "HLTriggerFirstPath" not in cols and "nHLT" not in cols
    assert resolve_columns(pfnano_keys, ["PV"]) == sorted(k for k in pfnano_keys if k.startswith("PV_"))


def test_glob_patterns(pfnano_keys):
    cols = resolve_columns(pfnano_keys, ["HLT_IsoMu2*", "JetPFCands_*", "Jet_btagDeep?lav*"])
    assert {"HLT_IsoMu24", "HLT_IsoMu27"} <= set(cols)
    assert "nJetPFCands" in cols and "nJet" in cols            # counters of the jagged matches
    assert {k for k in pfnano_keys if k.startswith("JetPFCands_")} <= set(cols)
    assert all(c.startswith(("HLT_IsoMu2", "JetPFCands_", "nJetPFCands", "Jet_btagDeepFlav", "nJet"))
               for c in cols)
    assert "Jet_btagDeepFlavB" in cols and "Jet_btagDeepB" not in cols
    # glob is case-sensitive
    assert "HLT_IsoMu24" not in resolve_columns(pfnano_keys, ["optional:hlt_isomu2*"])


def test_sorted_and_deduplicated(pfnano_keys):
    cols = resolve_columns(pfnano_keys, ["Muon_pt", "Muon", "Muon_*", "Muon_pt", "nMuon"])
    assert cols == sorted(set(cols))
    assert cols == sorted([k for k in pfnano_keys if k.startswith("Muon_")] + ["nMuon"])


def test_optional(pfnano_keys, dimuon_keys):
    truth = ["Jet_hadronFlavour", "Jet_partonFlavour", "GenPart", "genWeight"]
    mc = resolve_columns(pfnano_keys, ["Jet_pt"] + [f"optional:{t}" for t in truth] + ["optional:Jet_FlavSplit"])
    assert {"Jet_hadronFlavour", "Jet_partonFlavour", "GenPart_pt", "nGenPart", "genWeight"} <= set(mc)
    assert "Jet_FlavSplit" not in mc
    data = resolve_columns(dimuon_keys, ["Jet_pt"] + [f"optional:{t}" for t in truth])
    assert data == ["Jet_pt", "nJet"]
    assert resolve_columns(dimuon_keys, ["optional:GenPart_*", "optional:Nothing"]) == []
    # whitespace after the prefix is tolerated
    assert resolve_columns(pfnano_keys, ["optional: genWeight"]) == ["genWeight"]


def test_missing_column_error_with_hint(pfnano_keys):
    path = real_file("pfnano.root")
    with pytest.raises(MissingColumnError) as err:
        resolve_columns(pfnano_keys, ["Jet_pt", "Jet_ptt"], path=path)
    e = err.value
    assert e.column == "Jet_ptt" and e.path == path
    assert "Jet_pt" in e.hint and "optional:" in e.hint
    assert "Jet_ptt" in str(e) and path in str(e)
    assert isinstance(e, KeyError)
    again = pickle.loads(pickle.dumps(e))                     # crosses worker -> client
    assert (again.column, again.path, again.hint) == (e.column, e.path, e.hint)


def test_missing_collection_and_pattern(pfnano_keys, dimuon_keys):
    with pytest.raises(MissingColumnError) as err:
        resolve_columns(pfnano_keys, ["Jets"])
    assert "Jet" in err.value.hint
    with pytest.raises(MissingColumnError) as err:
        resolve_columns(pfnano_keys, ["NoSuch_*"])
    assert err.value.column == "NoSuch_*"
    with pytest.raises(MissingColumnError) as err:              # data file lacks truth
        resolve_columns(dimuon_keys, ["Jet_pt", "Jet_hadronFlavour"], path="data.root")
    assert err.value.column == "Jet_hadronFlavour" and "data.root" in str(err.value)
    with pytest.raises(MissingColumnError) as err:              # the PFNano DeepJet table is absent here
        resolve_columns(pfnano_keys, ["Jet_DeepJet_Cpfcan_*"])
    assert "Jet" in err.value.hint


def test_all_missing_names_reported(pfnano_keys):
    with pytest.raises(MissingColumnError) as err:
        resolve_columns(pfnano_keys, ["Muon_ptt", "Jet_etaa", "Foo"])
    assert err.value.column == "Muon_ptt"
    assert "Jet_etaa" in err.value.hint and "Foo" in err.value.hint


def test_without_files():
    keys = ["run", "nJet", "Jet_pt", "Jet_eta", "nJetPFCands", "JetPFCands_jetIdx", "HLT_A", "HLT_B",
            "PSWeight", "nPSWeight", "MET_pt"]
    assert resolve_columns(keys, "Jet") == ["Jet_eta", "Jet_pt", "nJet"]      # a single string
    assert resolve_columns(keys, ["JetPFCands"]) == ["JetPFCands_jetIdx", "nJetPFCands"]
    assert resolve_columns(keys, ["HLT_*", "MET"]) == ["HLT_A", "HLT_B", "MET_pt"]
    assert resolve_columns(keys, ["PSWeight", " run "]) == ["PSWeight", "run"]
    assert resolve_columns(keys, ["*"]) == sorted(keys)
    assert resolve_columns(keys, []) == []
    assert resolve_columns(iter(keys), ["Jet_p[st]"]) == ["Jet_pt", "nJet"]
    with pytest.raises(MissingColumnError):
        resolve_columns(keys, [""])
