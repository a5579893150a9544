"""The DY+jets selection on real NanoAOD against an independent plain implementation."""
from __future__ import annotations

import math
import os
import sys

import numpy as np
import pytest
import uproot

from conftest import REPO
from jetdask.runner import Runner

sys.path.insert(0, str(REPO / "analyses"))
from dy_jets import DYJets, select  # noqa: E402
from jetdask.events import events_from_arrays  # noqa: E402
from jetdask.columns import resolve_columns  # noqa: E402


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
    sel, leptons, jets, channel, cut, _ = select(events)
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
