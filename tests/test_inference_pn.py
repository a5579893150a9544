"""The TorchScript ParticleNet of ../shared/data runs through the registry on real AK8 jets.

The layout (points = deta, dphi of the candidates w.r.t. the fat jet; features = log pt,
log E, deta, dphi, charge; 50 candidates in decreasing pT) is rebuilt here with plain
Python loops over the raw branches, and the model is called directly in torch.
"""
from __future__ import annotations

import math

import awkward as ak
import numpy as np
import pytest
import torch
import uproot

from conftest import real_file
from jetdask.inference import JaggedLayout, Tagger, tagger_columns, tagger_pass
from jetdask.inference.registry import load_model, stats
from jetdask.nanoaod.columns import resolve_columns
from jetdask.nanoaod.events import events_from_arrays

P = 50
PN_LAYOUT = JaggedLayout("pn_ak8", jets="FatJet", candidates="pfcands",
                         groups={"points": ["deta", "dphi"],
                                 "features": ["log_pt", "log_e", "deta", "dphi", "charge"]},
                         max_length=P, sort_by="pt")


def _tagger(path, **kw):
    return Tagger("pn", path, layout=PN_LAYOUT, classes=("sig", "bkg"), device="cpu", **kw)


def _reference_inputs(path, keep):
    """(points, features, mask) of the kept fat jets, built jet by jet, candidate by candidate."""
    raw = uproot.open(path)["Events"].arrays(
        ["nFatJet", "FatJet_eta", "FatJet_phi", "FatJetPFCands_jetIdx", "FatJetPFCands_pFCandsIdx",
         "PFCands_pt", "PFCands_eta", "PFCands_phi", "PFCands_mass", "PFCands_charge"], library="np")
    pts, fts, mks = [], [], []
    for i in range(len(raw["nFatJet"])):
        for j in range(raw["nFatJet"][i]):
            if not keep[i][j]:
                continue
            cands = []
            for k, owner in enumerate(raw["FatJetPFCands_jetIdx"][i]):
                if owner != j:
                    continue
                c = raw["FatJetPFCands_pFCandsIdx"][i][k]
                pt, eta = float(raw["PFCands_pt"][i][c]), float(raw["PFCands_eta"][i][c])
                phi, m = float(raw["PFCands_phi"][i][c]), float(raw["PFCands_mass"][i][c])
                deta = eta - float(raw["FatJet_eta"][i][j])
                dphi = (phi - float(raw["FatJet_phi"][i][j]) + math.pi) % (2 * math.pi) - math.pi
                e = math.sqrt((pt * math.cosh(eta)) ** 2 + m * m)
                cands.append((pt, [deta, dphi], [math.log(pt), math.log(e), deta, dphi,
                                                 float(raw["PFCands_charge"][i][c])]))
            cands.sort(key=lambda x: -x[0])       # stable, like the layout's lexsort
            p, f, mk = np.zeros((2, P)), np.zeros((5, P)), np.zeros((1, P))
            for s, (_, pp, ff) in enumerate(cands[:P]):
                p[:, s], f[:, s], mk[0, s] = pp, ff, 1.0
            pts.append(p)
            fts.append(f)
            mks.append(mk)
    as_t = lambda xs: torch.tensor(np.array(xs), dtype=torch.float32)  # noqa: E731
    return as_t(pts), as_t(fts), as_t(mks)


@pytest.fixture(scope="module")
def pn_events():
    path = real_file("pfnano.root")
    real_file("pn_model.pt")
    t = uproot.open(path)["Events"]
    branches = resolve_columns(t.keys(), tagger_columns([_tagger("unused")]) + ["event", "run"])
    return path, events_from_arrays(t.arrays(branches, how=dict))


def test_columns_name_the_fatjet_candidates():
    cols = PN_LAYOUT.columns
    assert "FatJetPFCands" in cols and "PFCands" in cols and "FatJet_eta" in cols


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
@pytest.mark.parametrize("batch_size", [None, 5])
def test_particlenet_matches_plain_torch(pn_events, batch_size):
    path, events = pn_events
    model_path = real_file("pn_model.pt")
    mask = events.FatJet.pt > 250            # some fat jets are left out (-1)
    keep = ak.to_list(mask)
    assert 0 < sum(map(sum, keep)) < sum(map(len, keep))
    out = tagger_pass(events, [_tagger(model_path, batch_size=batch_size)], mask)
    got = out.FatJet["pn"]
    assert ak.to_list(ak.num(got.sig)) == ak.to_list(ak.num(events.FatJet))
    kept_scores = np.stack([ak.to_numpy(ak.flatten(got.sig[mask])), ak.to_numpy(ak.flatten(got.bkg[mask]))], 1)
    assert np.all(ak.to_numpy(ak.flatten(got.sig[~mask])) == -1)

    points, features, pmask = _reference_inputs(path, keep)
    assert pmask.sum(-1).max() == P and pmask.sum(-1).min() < P     # clipped and padded jets
    model = torch.jit.load(model_path, map_location="cpu").eval()
    with torch.no_grad():
        expected = model(points.clone(), features.clone(), pmask.clone()).numpy()
    np.testing.assert_allclose(kept_scores, expected, atol=1e-5, rtol=0)


def test_model_loaded_once_per_process(pn_events):
    _, events = pn_events
    t = _tagger(real_file("pn_model.pt"))
    load_model(t)
    before = dict(stats)
    tagger_pass(events, [t], None)
    tagger_pass(events, [t, Tagger("pn2", t.source, layout=PN_LAYOUT, classes=("a", "b"), device="cpu")], None)
    assert stats["loads"] == before["loads"]
    assert stats["hits"] >= before["hits"] + 3
