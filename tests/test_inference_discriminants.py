"""Discriminants on hand-checked values, undefined cases, and from official NanoAOD branches."""
from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot

from conftest import real_file
from jetdask.inference.discriminants import (
    bvsc,
    bvsl,
    cvsb,
    cvsl,
    discriminants,
    official_bvsl,
    official_discriminants,
    official_scores,
)

CLASSES = ("b", "bb", "lepb", "c", "uds", "g")


def rows(*vals):
    a = np.array(vals, dtype=np.float64)
    return {c: a[:, i] for i, c in enumerate(CLASSES)}


def test_hand_checked_values():
    s = rows([0.2, 0.1, 0.1, 0.2, 0.3, 0.1],      # B = 0.4, C = 0.2, L = 0.4
             [0.7, 0.0, 0.0, 0.1, 0.1, 0.1])
    np.testing.assert_allclose(bvsl(s), [0.5, 0.7 / 0.9])
    np.testing.assert_allclose(cvsb(s), [1 / 3, 0.1 / 0.8])
    np.testing.assert_allclose(cvsl(s), [1 / 3, 0.1 / 0.3])
    np.testing.assert_allclose(bvsc(s), [2 / 3, 0.7 / 0.8])


def test_undefined_cases_are_minus_one():
    s = rows([0, 0, 0, 0, 0, 0],                   # every denominator 0
             [-1, -1, -1, -1, -1, -1],             # jet not evaluated
             [0, 0, 0, 0, 1, 0],                   # pure light: B/C denominators 0
             [0.5, 0.5, 0, 0, 0, -1])              # one input -1
    d = discriminants(s)
    assert d["BvsL"].tolist() == [-1, -1, 0, -1]
    assert d["CvsL"].tolist() == [-1, -1, 0, -1]
    assert d["CvsB"].tolist() == [-1, -1, -1, 0]
    assert d["BvsC"].tolist() == [-1, -1, -1, 1]


def test_awkward_records_keep_their_structure():
    flat = ak.zip({c: np.array([0.2, 0.7, -1.0]) if c == "b" else np.array([0.1, 0.05, -1.0]) for c in CLASSES})
    jagged = ak.unflatten(flat, [2, 0, 1])
    out = bvsl(jagged)
    assert ak.to_list(ak.num(out)) == [2, 0, 1]
    assert out[2, 0] == -1
    assert out[0, 0] == pytest.approx(0.4 / 0.6)


def test_official_bvsl_from_nodes_and_derived():
    B, c = np.array([0.4, 0.9, 0.0, 0.3]), np.array([0.2, 0.05, 0.5, 0.0])
    light = 1 - B - c
    jets = ak.zip({"btagDeepFlavB": B, "btagDeepFlavCvB": c / (c + B), "btagDeepFlavCvL": c / (c + light)})
    assert official_scores(jets) is None
    np.testing.assert_allclose(ak.to_numpy(official_bvsl(jets)), B / (B + light))
    nan_free = ak.zip({"btagDeepFlavB": np.array([-1.0, 0.5]), "btagDeepFlavCvB": np.array([0.5, -1.0]),
                       "btagDeepFlavCvL": np.array([0.5, 0.5])})
    assert ak.to_list(official_bvsl(nan_free)) == [-1, -1]
    d = official_discriminants(jets)
    np.testing.assert_allclose(ak.to_numpy(d["BvsC"]), 1 - c / (c + B))


def test_official_nodes_on_real_pfnano():
    t = uproot.open(real_file("pfnano.root"))["Events"]
    names = ["Jet_btagDeepFlavB", "Jet_btagDeepFlavCvB", "Jet_btagDeepFlavCvL", "Jet_btagDeepFlavB_b",
             "Jet_btagDeepFlavB_bb", "Jet_btagDeepFlavB_lepb", "Jet_btagDeepFlavC", "Jet_btagDeepFlavUDS",
             "Jet_btagDeepFlavG"]
    raw = t.arrays(names)
    jets = ak.zip({n[4:]: raw[n] for n in names})
    exact = ak.to_numpy(ak.flatten(official_bvsl(jets)))
    derived = ak.to_numpy(ak.flatten(official_bvsl(jets[["btagDeepFlavB", "btagDeepFlavCvB", "btagDeepFlavCvL"]])))
    assert len(exact) > 50 and np.all((exact >= 0) & (exact <= 1))
    ok = derived >= 0
    # NanoAOD stores the scores with reduced precision: the sum rule holds to ~1e-3 in BvsL
    np.testing.assert_allclose(derived[ok], exact[ok], atol=2e-3)


def test_official_discriminants_from_b_and_c_on_real_files():
    """Older NanoAOD (B and C only): BvsL/CvsB/CvsL from B and C equal the exact node values on PFNano."""
    t = uproot.open(real_file("pfnano.root"))["Events"]
    names = ["Jet_btagDeepFlavB", "Jet_btagDeepFlavB_b", "Jet_btagDeepFlavB_bb", "Jet_btagDeepFlavB_lepb",
             "Jet_btagDeepFlavC", "Jet_btagDeepFlavUDS", "Jet_btagDeepFlavG"]
    raw = t.arrays(names)
    jets = ak.zip({n[4:]: raw[n] for n in names})
    exact = official_discriminants(jets)
    derived = official_discriminants(jets[["btagDeepFlavB", "btagDeepFlavC"]])
    assert official_scores(jets[["btagDeepFlavB", "btagDeepFlavC"]]) is None
    for name in ("BvsL", "CvsB", "CvsL", "BvsC"):
        e, d = (ak.to_numpy(ak.flatten(x[name])) for x in (exact, derived))
        assert len(e) > 50 and np.all((d >= 0) & (d <= 1)), name
        np.testing.assert_allclose(d, e, atol=2e-3, err_msg=name)
    # and on the older real NanoAOD file that has only B and C, every value is a discriminant in [0, 1]
    t = uproot.open(real_file("nano_dy.root"))["Events"]
    raw = t.arrays(["Jet_btagDeepFlavB", "Jet_btagDeepFlavC"])
    d = official_discriminants(ak.zip({"btagDeepFlavB": raw.Jet_btagDeepFlavB, "btagDeepFlavC": raw.Jet_btagDeepFlavC}))
    for name in ("BvsL", "CvsB", "CvsL"):
        v = ak.to_numpy(ak.flatten(d[name]))
        assert len(v) > 100 and np.all((v >= 0) & (v <= 1)), name
    assert ak.to_list(official_discriminants(ak.zip({"btagDeepFlavB": np.array([-1.0, 0.5]),
                                                     "btagDeepFlavC": np.array([0.2, -1.0])}))["BvsL"]) == [-1, -1]
