"""The primary-dataset overlap rule (policy table) and HLT bits on events."""
from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from jetdask.errors import ConfigError
from jetdask.nanoaod.triggers import (
    DOUBLE_ELECTRON,
    DOUBLE_MUON,
    SINGLE_ELECTRON,
    SINGLE_MUON,
    fired,
    overlap_rule,
    primary_dataset_mask,
)


@pytest.mark.parametrize("pd, need, veto", [
    ("DoubleMuon", DOUBLE_MUON, ()),
    ("SingleMuon", SINGLE_MUON, DOUBLE_MUON),
    ("DoubleEG", DOUBLE_ELECTRON, DOUBLE_MUON + SINGLE_MUON),
    ("SingleElectron", SINGLE_ELECTRON, DOUBLE_MUON + SINGLE_MUON + DOUBLE_ELECTRON),
    ("EGamma", SINGLE_ELECTRON + DOUBLE_ELECTRON, DOUBLE_MUON + SINGLE_MUON),
])
def test_overlap_rule_table(pd, need, veto):
    assert overlap_rule(pd) == (need, veto)


def test_overlap_rule_custom_order_and_unknown_pd():
    assert overlap_rule("DoubleMuon", order=("SingleMuon", "DoubleMuon")) == (DOUBLE_MUON, SINGLE_MUON)
    with pytest.raises(ConfigError, match="metadata.primary_dataset"):
        overlap_rule("MuonEG")


def test_each_event_from_one_primary_dataset():
    """Every combination of fired paths: an event is taken from exactly one PD of a run period
    (2018: DoubleMuon, SingleMuon, EGamma) when it fired any of their triggers, else from none."""
    paths = ("Mu17_TrkIsoVVL_Mu8_TrkIsoVVL_DZ_Mass3p8", "IsoMu24", "Ele32_WPTight_Gsf",
             "Ele23_Ele12_CaloIdL_TrackIdL_IsoVL")
    combos = np.array([[(i >> k) & 1 for k in range(len(paths))] for i in range(2 ** len(paths))], bool)
    events = ak.zip({"HLT": ak.zip({p: combos[:, k] for k, p in enumerate(paths)})}, depth_limit=1)
    taken = sum(primary_dataset_mask(events, pd).astype(int) for pd in ("DoubleMuon", "SingleMuon", "EGamma"))
    assert list(taken) == list(combos.any(axis=1).astype(int))
    assert primary_dataset_mask(events, None).all()
    assert list(fired(events, ["HLT_IsoMu24", "HLT_NotInTheFile"])) == list(combos[:, 1])
