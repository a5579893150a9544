"""Analyses used by the engine tests, with switches to inject faults."""
from __future__ import annotations

import os
import signal
import time

import awkward as ak
import hist
import numpy as np

from jetdask.plugin import Analysis
from jetdask.result import Result


class DimuonJets(Analysis):
    """A small DY selection: two tight isolated opposite-charge muons, jets away from them.

    Fault switches (all off by default):
      fail_event      (run, lumi, event) -> ValueError when that event is processed
      hog_bytes       allocate this many bytes per event (touched), hold them for ``hog_hold`` s
      hog_path        only for chunks of files whose path contains this string
      hog_entry       only for the chunk that contains this entry
      kill_marker     SIGKILL the worker process once (first chunk that sees no marker file)
      kill_entry      only for the chunk that contains this entry
      sleep           seconds to sleep per chunk (to make runs long enough to interrupt)
      memory_error_above  raise MemoryError for chunks with more events than this
    """

    columns = ["Muon_pt", "Muon_eta", "Muon_phi", "Muon_mass", "Muon_charge", "Muon_tightId",
               "Muon_pfRelIso04_all", "Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass", "Jet_jetId",
               "optional:Jet_hadronFlavour", "Jet_btagDeepFlavB"]

    def __init__(self, fail_event=None, hog_bytes=0, hog_path=None, hog_hold=1.5, kill_marker=None,
                 sleep=0.0, memory_error_above=None, hog_entry=None, save_arrays=True, kill_entry=None):
        self.fail_event = tuple(fail_event) if fail_event else None
        self.hog_bytes = hog_bytes
        self.hog_path = hog_path
        self.hog_hold = hog_hold
        self.kill_marker = kill_marker
        self.sleep = sleep
        self.memory_error_above = memory_error_above
        self.hog_entry = hog_entry
        self.save_arrays = save_arrays
        self.kill_entry = kill_entry

    def process(self, events, chunk):
        n = len(events)
        if self.sleep:
            time.sleep(self.sleep)
        kill_here = self.kill_entry is None or chunk.entry_start <= self.kill_entry < chunk.entry_stop
        if self.kill_marker and kill_here and not os.path.exists(self.kill_marker):
            open(self.kill_marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        if self.memory_error_above is not None and n > self.memory_error_above:
            raise MemoryError(f"pretend {n} events do not fit")
        hog_here = self.hog_entry is None or chunk.entry_start <= self.hog_entry < chunk.entry_stop
        if self.hog_bytes and hog_here and (self.hog_path is None or self.hog_path in chunk.path):
            block = np.ones(int(self.hog_bytes * n), dtype=np.uint8)
            time.sleep(self.hog_hold)
            del block
        if self.fail_event is not None:
            ids = set(zip(np.asarray(events.run).tolist(), np.asarray(events.luminosityBlock).tolist(),
                          np.asarray(events.event).tolist()))
            if self.fail_event in ids:
                raise ValueError("deliberate failure")

        mu = events.Muon
        good = mu[(mu.pt > 20) & (abs(mu.eta) < 2.4) & mu.tightId & (mu.pfRelIso04_all < 0.15)]
        two = ak.num(good) == 2
        ev = events[two]
        good = good[two]
        opposite = good.charge[:, 0] != good.charge[:, 1]
        ev, good = ev[opposite], good[opposite]
        mass = (good[:, 0] + good[:, 1]).mass
        w = np.asarray(ev.genWeight, dtype=np.float64) if "genWeight" in ev.fields else np.ones(len(ev))
        jets = ev.Jet
        j, m = ak.unzip(ak.cartesian([jets, good], nested=True))
        far = ak.all(j.deltaR(m) > 0.4, axis=-1)
        jets = jets[(jets.pt > 20) & (abs(jets.eta) < 2.5) & (jets.jetId >= 2) & far]
        flav = jets.hadronFlavour if "hadronFlavour" in jets.fields else ak.zeros_like(jets.pt, dtype=np.int32)

        h_mass = hist.Hist.new.Reg(40, 70, 110, name="mass", label="m(mumu) [GeV]").Weight()
        h_mass.fill(mass=np.asarray(mass), weight=w)
        h_btag = (hist.Hist.new.Reg(20, 0, 1, name="btag", label="DeepJet B")
                  .IntCat([0, 4, 5], name="flavour").Weight())
        jw = ak.flatten(ak.broadcast_arrays(w, jets.pt)[0])
        h_btag.fill(btag=np.asarray(ak.flatten(jets.btagDeepFlavB)), flavour=np.asarray(ak.flatten(flav)),
                    weight=np.asarray(jw))
        return Result(hists={"mass": h_mass, "btag": h_btag},
                      counters={"selected": int(len(ev)), "jets": int(ak.sum(ak.num(jets)))},
                      arrays={"dimuon": ak.zip({"mass": mass, "weight": w, "event": ev.event})}
                      if self.save_arrays else {})


class SlowDimuonJets(DimuonJets):
    """The same analysis, slowed down so that a test can interrupt a run."""

    def __init__(self):
        super().__init__(sleep=0.4)


class EngineCounterClash(DimuonJets):
    """The same analysis, returning a counter named ``events``, which the engine owns: the run stops
    at its first result."""

    def process(self, events, chunk):
        out = super().process(events, chunk)
        out.counters["events"] = len(events)
        return out
