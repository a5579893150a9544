"""The README's first analysis: the dimuon mass of events with exactly two muons above 20 GeV.

``jetdask run analyses/dimuon.py:Dimuon --fileset synth/fileset.json --run-dir runs/dimuon``
fills, per dataset, the opposite-charge dimuon mass (60-120 GeV, weighted by ``genWeight``
on simulation) and counts the selected events.
"""
from __future__ import annotations

import awkward as ak
import hist
import numpy as np

from jetdask import Analysis, Result


class Dimuon(Analysis):
    columns = ["Muon_pt", "Muon_eta", "Muon_phi", "Muon_mass", "Muon_charge", "optional:genWeight"]

    def __init__(self, min_pt: float = 20.0):
        self.min_pt = float(min_pt)

    def process(self, events, chunk):
        mu = events.Muon[events.Muon.pt > self.min_pt]
        two = ak.num(mu) == 2
        pair = mu[two]
        opposite = ak.to_numpy(pair.charge[:, 0] * pair.charge[:, 1] < 0)
        mass = ak.to_numpy((pair[:, 0] + pair[:, 1]).mass)[opposite]
        if chunk.metadata.get("is_data") or "genWeight" not in events.fields:
            weight = np.ones(len(mass))
        else:
            weight = ak.to_numpy(events.genWeight[two])[opposite]
        h = hist.Hist.new.Reg(60, 60, 120, name="mass", label=r"$m_{\mu\mu}$ [GeV]").Weight(label="Events")
        h.fill(mass=mass, weight=weight)
        # the engine counts the events read ("events") and their genWeight sum ("sumw") itself
        return Result(hists={"mass": h}, counters={"selected": int(len(mass))})
