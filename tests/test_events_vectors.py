"""The view's Momentum4D class (coordinates read once per array) gives exactly vector's results.

Every quantity is computed twice from the same events: on the view as built (jetdask's
class, :data:`jetdask.nanoaod.vectors.BEHAVIOR`) and on the same layout with vector's globally
registered class, on plain collections, masked ones, a muon/electron union (``ak.where``) and
a cartesian product; real files and a synthetic PFNano file.
"""
from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot
import vector.backends.awkward as vak

from conftest import real_file
from jetdask.nanoaod.columns import resolve_columns
from jetdask.nanoaod.events import events_from_arrays
from jetdask.nanoaod.vectors import MomentumArray4D

COLUMNS = ["Muon_pt", "Muon_eta", "Muon_phi", "Muon_mass", "Muon_charge", "Muon_tightId",
           "Electron_pt", "Electron_eta", "Electron_phi", "Electron_mass", "Electron_charge",
           "Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass", "Jet_jetId"]


@pytest.fixture(scope="module")
def synthetic_file(tmp_path_factory):
    from jetdask.synthetic.sample import generate_file
    path = str(tmp_path_factory.mktemp("vectors") / "mc.root")
    generate_file(path, 3000, seed=11, kind="mc")
    return path


def both(path):
    tree = uproot.open(path)["Events"]
    arrays = tree.arrays(resolve_columns(tree.keys(), COLUMNS, path=path), how=dict)
    ours = events_from_arrays(arrays)
    stock = ak.Array(ours.layout)  # same buffers, vector's registered class
    assert type(ours.Muon) is MomentumArray4D and type(stock.Muon) is vak.MomentumArray4D
    return ours, stock


def same(a, b):
    assert ak.type(a) == ak.type(b)
    assert ak.array_equal(a, b, equal_nan=True, dtype_exact=True)


def quantities(events):
    """Coordinates, sums and distances the way analyses write them (dy_jets.select)."""
    mu, el, jets = events.Muon, events.Electron, events.Jet
    good_mu = mu[(mu.pt > 5) & (abs(mu.eta) < 2.4)]
    good_el = el[el.pt > 5]
    is_mm = np.asarray(ak.num(good_mu) >= 2)
    two = is_mm | np.asarray(ak.num(good_el) >= 2)
    leptons = ak.mask(ak.where(is_mm, good_mu, good_el), two)          # a union of two records
    pair = leptons[:, 0] + leptons[:, 1]
    j, lep = ak.unzip(ak.cartesian([jets, ak.fill_none(leptons, [], axis=0)], nested=True))
    out = {"two": two}
    for name, arr in (("mu", mu), ("good_mu", good_mu), ("leptons", leptons), ("jets", jets), ("j", j),
                      ("lep", lep)):
        for f in ("pt", "eta", "phi", "mass", "rho", "px", "pz", "E", "jetId" if name in ("jets", "j") else "charge"):
            out[f"{name}.{f}"] = getattr(arr, f)
    out["pair.mass"] = pair.mass
    out["pair.pt"] = pair.pt
    out["deltaR"] = j.deltaR(lep)
    out["deltaphi"] = j.deltaphi(lep)
    out["mu0.deltaR(jets)"] = good_mu[is_mm][:, 0].deltaR(jets[is_mm])
    out["leptons.charge[:, 0]"] = leptons.charge[:, 0]
    return out


@pytest.mark.parametrize("name", ["nano_dy.root", "nano_dimuon.root", "synthetic"])
def test_equal_to_vector(name, synthetic_file):
    path = synthetic_file if name == "synthetic" else real_file(name)
    ours, stock = both(path)
    got, ref = quantities(ours), quantities(stock)
    assert int(np.sum(got["two"])) > 0
    assert ak.count(got["deltaR"]) > 0
    for key in ref:
        same(got[key], ref[key])


def test_repeated_access_is_cached_and_follows_changes(synthetic_file):
    ours, _ = both(synthetic_file)
    mu = ours.Muon
    assert mu.pt is mu.pt and mu.charge is mu.charge and mu.azimuthal is mu.azimuthal
    old = mu.pt
    mu["pt"] = mu.pt * 2                      # replaces the layout: the cache is dropped
    assert ak.all(mu.pt == old * 2) and ak.all(mu.rho == old * 2)
    mu["charge"] = -mu.charge
    assert ak.all(mu.charge == -ours.Muon.charge)


def test_other_coordinates_use_vector():
    """Vectors stored as px, py, pz, E: pt, eta, phi, mass are vector's computations."""
    arr = ak.zip({"px": [[3.0, 1.0]], "py": [[4.0, 0.0]], "pz": [[1.0, -2.0]], "E": [[7.0, 3.0]]},
                 with_name="Momentum4D")
    ours = ak.Array(arr.layout, behavior={("*", "Momentum4D"): MomentumArray4D})
    stock = ak.Array(arr.layout)
    for f in ("pt", "phi", "eta", "mass"):
        same(getattr(ours, f), getattr(stock, f))
    assert ours.pt.tolist() == [[5.0, 1.0]]


def test_record_fields_are_projected_anew():
    """Record-valued fields are not cached: changing one leaves the next access untouched."""
    arr = ak.zip({"pt": [[1.0]], "eta": [[0.1]], "phi": [[0.0]], "mass": [[0.0]]}, with_name="Momentum4D")
    rec = ak.zip({"a": [[1]], "b": [[2]]})
    arr = ak.Array(ak.with_field(arr, rec, "sub").layout, behavior={("*", "Momentum4D"): MomentumArray4D})
    sub = arr.sub
    sub["a"] = sub.a + 10
    assert arr.sub.a.tolist() == [[1]]
