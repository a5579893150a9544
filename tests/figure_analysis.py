"""A small, frozen DY-like analysis for the reference-figure tests.

It books the same kinds of histograms as ``analyses/dy_jets.py`` (channel x flavour x value,
a cutflow of step x channel) with a selection of its own, so that the reference images
change only when the plotting changes, not when the DY+jets cuts are tuned.
"""
from __future__ import annotations

import awkward as ak
import hist
import numpy as np

from jetdask import Analysis, Result

STEPS = ("all", "lumi", "two leptons", "jets")
FLAVOURS = np.array(["light", "light", "light", "light", "c", "b"])


class FigureAnalysis(Analysis):
    columns = ["Muon_pt", "Muon_eta", "Muon_tightId", "Electron_pt", "Electron_eta", "Electron_cutBased",
               "Jet_pt", "Jet_eta", "Jet_jetId", "optional:Jet_hadronFlavour", "Jet_btagDeepFlavB",
               "Jet_btagDeepFlavCvB", "Jet_btagDeepFlavCvL", "Jet_btagDeepB", "Jet_btagDeepCvL",
               "Jet_DeepJet_Cpfcan_BtagPf_trackSip2dSig_0", "optional:genWeight"]

    @staticmethod
    def _hist(bins, lo, hi, label):
        return (hist.Hist.new.StrCat(["mumu", "ee"], name="channel").StrCat(["b", "c", "light", "data"], name="flavour")
                .Reg(bins, lo, hi, name="value", label=label).Weight(label="Jets"))

    def process(self, events, chunk):
        is_data = bool(chunk.metadata.get("is_data", False))
        mu = events.Muon[(events.Muon.pt > 15) & (abs(events.Muon.eta) < 2.4) & events.Muon.tightId]
        el = events.Electron[(events.Electron.pt > 15) & (abs(events.Electron.eta) < 2.5)
                             & (events.Electron.cutBased >= 4)]
        mm = np.asarray(ak.num(mu) == 2)
        ee = np.asarray(ak.num(el) == 2) & ~mm
        jets = events.Jet
        good = (jets.pt > 20) & (abs(jets.eta) < 2.5) & (jets.jetId >= 2)
        final = (mm | ee) & np.asarray(ak.any(good, axis=1))
        channel = np.where(mm, "mumu", "ee")
        cutflow = hist.Hist.new.StrCat(list(STEPS), name="step").StrCat(["all", "mumu", "ee"], name="channel").Double()
        for step, m in (("all", np.ones(len(events), bool)), ("lumi", np.ones(len(events), bool))):
            cutflow.fill(step=np.full(int(m.sum()), step), channel="all")
        for step, m in (("two leptons", mm | ee), ("jets", final)):
            cutflow.fill(step=np.full(int(m.sum()), step), channel=channel[m])
        sel = jets[good][final]
        w_ev = np.asarray(events.genWeight, float)[final] if "genWeight" in events.fields and not is_data \
            else np.ones(int(final.sum()))
        w = np.asarray(ak.flatten(ak.broadcast_arrays(w_ev, sel.pt)[0]))
        ch = np.asarray(ak.flatten(ak.broadcast_arrays(channel[final], sel.pt)[0]))
        if is_data or "hadronFlavour" not in sel.fields:
            flav = np.full(len(w), "data", dtype=object)
        else:
            flav = FLAVOURS[np.clip(np.abs(np.asarray(ak.flatten(sel.hadronFlavour))), 0, 5)]
        out = {"cutflow": cutflow}

        def fill(name, values, bins, lo, hi, label):
            h = self._hist(bins, lo, hi, label)
            values = np.asarray(ak.flatten(values), float)
            if hi == 1.0:
                values = np.where(values == 1.0, np.nextafter(1.0, 0.0), values)
            h.fill(channel=ch, flavour=flav, value=values, weight=w)
            out[name] = h

        b, cvb = sel.btagDeepFlavB, sel.btagDeepFlavCvB
        c = cvb * b / np.maximum(1 - cvb, 1e-6)
        fill("DeepJet_BvsL", b / np.maximum(1 - c, 1e-6), 20, 0, 1, "DeepJet BvsL")
        fill("DeepCSV_BvsL", sel.btagDeepB, 20, 0, 1, "DeepCSV BvsL")
        fill("input_Jet_pt", sel.pt, 20, 20, 120, "jet $p_T$ [GeV]")
        fill("input_trackSip2dSig_0", sel.DeepJet_Cpfcan_BtagPf_trackSip2dSig_0, 40, -10, 30,
             "leading track 2D IP significance")
        return Result(hists=out, counters={"selected_events": int(final.sum())})
