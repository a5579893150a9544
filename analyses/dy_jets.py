"""DY+jets light-flavour-enriched control region: data vs MC of tagger discriminants.

Selection (muon and electron channels, exclusive; numbers are :class:`Cuts` defaults, each
configurable, e.g. ``DYJets(cuts={"lead_muon_pt": 26})``):

* trigger: ``HLT_IsoMu24`` or ``HLT_IsoMu27`` (mumu), ``HLT_Ele32_WPTight_Gsf`` or
  ``HLT_Ele27_WPTight_Gsf`` (ee); a trigger branch missing from a file counts as not fired;
  data of a primary dataset (fileset metadata ``primary_dataset``) pass the overlap rule of
  :mod:`jetdask.nanoaod.triggers` (each event taken from one primary dataset only);
* exactly two tight, isolated leptons of the same flavour and opposite charge:
  muons pT > 15 GeV, |eta| < 2.4, tightId, pfRelIso04_all < 0.15;
  electrons pT > 15 GeV, |eta| < 2.5, cutBased >= 4 (tight), supercluster
  |eta + deltaEtaSC| outside the barrel-endcap gap 1.4442-1.566;
  the leading lepton on the trigger plateau: muon pT > 29 GeV (IsoMu27; IsoMu24 is on its
  plateau from 26), electron pT > 35 GeV (Ele32_WPTight);
  an event with two good muons is mumu, otherwise with two good electrons ee;
* the leading lepton is the one of highest pT (not the first stored);
* third-lepton veto: no loose lepton besides the two selected (muon pT > 10 GeV, |eta| < 2.4,
  looseId, pfRelIso04_all < 0.25; electron pT > 10 GeV, |eta| < 2.5, cutBased >= 1 (veto));
* dilepton mass in 71-111 GeV;
* jets pT > 20 GeV, |eta| < 2.5, jetId >= 2 (tight), deltaR > 0.4 from both leptons, and below
  50 GeV the loose pile-up jet ID (``Jet_puId`` bit 4; NanoAOD Run-2 CHS jets; a file without
  the branch, e.g. Run-3 PUPPI jets, gets none); at least one such jet.

Weights: MC events carry ``genWeight`` (normalisation by xsec x lumi / sum of generator
weights of the *processed* chunks happens at plotting time, from the run's completeness
record), times a pileup weight from a correctionlib file when ``pileup=`` is given. Data are
filtered by a golden-JSON luminosity mask when ``lumi_mask=`` is given.

Histograms (per dataset, made by the engine): axes ``channel`` (mumu, ee), ``flavour``
(b, c, light from ``Jet_hadronFlavour``; ``data`` for collision data) and the variable;
``DeepJet_BvsL/CvsB/CvsL`` from the official NanoAOD scores (exact from the nodes, the stored
CvB/CvL, or B and C on older NanoAOD; ``DeepJet_BvsAll`` from a file with B only),
``{tagger}_{BvsL,CvsB,CvsL}`` for every tagger given, ``input_*`` for leading inputs, and
``cutflow`` (events per selection step and channel).
"""
from __future__ import annotations

import dataclasses
import json
from typing import NamedTuple

import awkward as ak
import hist
import numpy as np

from jetdask import Analysis, Result
from jetdask.errors import ConfigError
from jetdask.nanoaod.triggers import PD_TRIGGERS, SINGLE_ELECTRON, SINGLE_MUON, fired, primary_dataset_mask

MUON_TRIGGERS = SINGLE_MUON
ELECTRON_TRIGGERS = SINGLE_ELECTRON
Z_WINDOW = (71.0, 111.0)
INPUTS = {  # histogram name -> (jet field, bins, lo, hi, label)
    "input_Jet_pt": ("pt", 30, 20, 200, "jet $p_T$ [GeV]"),
    "input_Jet_eta": ("eta", 25, -2.5, 2.5, r"jet $\eta$"),
    "input_trackSip2dSig_0": ("DeepJet_Cpfcan_BtagPf_trackSip2dSig_0", 40, -10, 30,
                              "leading track 2D IP significance"),
    "input_sv_mass_0": ("DeepJet_sv_mass_0", 30, 0, 6, "leading SV mass [GeV]"),
    "input_nsv": ("DeepJet_nsv", 5, 0, 5, "number of SVs"),
}
LEPTON_FIELDS = ("pt", "eta", "phi", "mass", "charge")   # what the selection uses of a lepton
STEPS = ("all", "lumi", "trigger", "two leptons", "lepton veto", "Z window", "jets")
CHANNEL_STEPS = ("two leptons", "lepton veto", "Z window", "jets")
ALL_PD_TRIGGERS = tuple(dict.fromkeys(t for ts in PD_TRIGGERS.values() for t in ts))
PU_ID_BITS = {"loose": 4, "medium": 2, "tight": 1}  # NanoAOD Run-2 Jet_puId flags (2017/2018 convention)


@dataclasses.dataclass(frozen=True)
class Cuts:
    """Selection thresholds (GeV); see the module docstring and docs/tutorials/dy-jets.md for the reasons."""
    lead_muon_pt: float = 29.0       # IsoMu27 plateau (IsoMu24 alone: 26)
    lead_electron_pt: float = 35.0   # Ele32_WPTight plateau
    lepton_pt: float = 15.0          # second lepton
    veto_pt: float = 10.0            # third-lepton veto
    jet_pt: float = 20.0
    pu_id: str | None = "loose"      # pile-up jet ID working point below pu_id_max_pt; None: off
    pu_id_max_pt: float = 50.0

    @classmethod
    def make(cls, given: dict | None) -> "Cuts":
        given = dict(given or {})
        names = {f.name for f in dataclasses.fields(cls)}
        for k in given:
            if k not in names:
                raise ConfigError(f"unknown cut {k!r}; known: {', '.join(sorted(names))}", f"cuts.{k}")
        if given.get("pu_id", "loose") not in (None, *PU_ID_BITS):
            raise ConfigError(f"pu_id must be one of {sorted(PU_ID_BITS)} or null", "cuts.pu_id")
        return cls(**given)


def _good_muon(mu, cuts: Cuts):
    return (mu.pt > cuts.lepton_pt) & (abs(mu.eta) < 2.4) & mu.tightId & (mu.pfRelIso04_all < 0.15)


def supercluster_eta(el):
    return el.eta + el.deltaEtaSC


def _good_electron(el, cuts: Cuts):
    sc = abs(supercluster_eta(el))
    return (el.pt > cuts.lepton_pt) & (abs(el.eta) < 2.5) & (el.cutBased >= 4) & ((sc < 1.4442) | (sc > 1.566))


def good_muons(events, cuts: Cuts = Cuts()):
    return events.Muon[_good_muon(events.Muon, cuts)]


def good_electrons(events, cuts: Cuts = Cuts()):
    return events.Electron[_good_electron(events.Electron, cuts)]


def _loose_muon(mu, cuts: Cuts):
    return (mu.pt > cuts.veto_pt) & (abs(mu.eta) < 2.4) & mu.looseId & (mu.pfRelIso04_all < 0.25)


def _veto_electron(el, cuts: Cuts):
    return (el.pt > cuts.veto_pt) & (abs(el.eta) < 2.5) & (el.cutBased >= 1)


def n_veto_leptons(events, cuts: Cuts = Cuts()):
    """Loose muons + veto electrons per event (by their own definitions: a tight muon without
    ``looseId`` is not loose)."""
    return np.asarray(ak.sum(_loose_muon(events.Muon, cuts), axis=1)
                      + ak.sum(_veto_electron(events.Electron, cuts), axis=1))


def n_extra_leptons(events, is_mm, is_ee, cuts: Cuts = Cuts()):
    """Loose muons + veto electrons per event other than its two selected leptons (the good muons
    of a mumu event, the good electrons of an ee event): the third-lepton veto wants none."""
    mu, el = events.Muon, events.Electron
    mine_mu = _good_muon(mu, cuts) & np.asarray(is_mm)
    mine_el = _good_electron(el, cuts) & np.asarray(is_ee)
    return np.asarray(ak.sum(_loose_muon(mu, cuts) & ~mine_mu, axis=1)
                      + ak.sum(_veto_electron(el, cuts) & ~mine_el, axis=1))


def pileup_id_ok(jets, cuts: Cuts = Cuts()):
    """Jets passing the pile-up ID working point, or above ``pu_id_max_pt``, or without the branch."""
    if cuts.pu_id is None or "puId" not in jets.fields:
        return jets.pt > -1
    return (jets.pt >= cuts.pu_id_max_pt) | ((jets.puId & PU_ID_BITS[cuts.pu_id]) > 0)


def lumi_mask(run, lumi, golden: dict) -> np.ndarray:
    """Vectorised golden-JSON check: ``{"run": [[first, last], ...]}``."""
    run = np.asarray(run, dtype=np.int64)
    lumi = np.asarray(lumi, dtype=np.int64)
    keep = np.zeros(len(run), dtype=bool)
    for r, ranges in golden.items():
        sel = run == int(r)
        if not sel.any():
            continue
        ok = np.zeros(sel.sum(), dtype=bool)
        for lo, hi in ranges:
            ok |= (lumi[sel] >= lo) & (lumi[sel] <= hi)
        keep[sel] = ok
    return keep


class Selection(NamedTuple):
    events: ak.Array          # selected events
    leptons: ak.Array         # their two leptons (LEPTON_FIELDS, four-vectors)
    jets: ak.Array            # their selected jets
    channel: np.ndarray       # "mumu"/"ee" per selected event
    cut: dict                 # step -> boolean mask over all events (cumulative)
    all_channels: np.ndarray  # "mumu"/"ee" per event (meaningful where a channel was chosen)
    jet_mask: ak.Array        # selected jets among the selected events' jets
    all_leptons: ak.Array = None   # the two leptons of every event (None where there are not two)
    all_jet_ok: ak.Array = None    # the jet selection over every event's jets


def select_jets(jets, leptons, cuts: Cuts = Cuts()):
    """Selected jets (boolean, jagged) among ``jets``, cleaned against ``leptons`` (None: none)."""
    j, lep = ak.unzip(ak.cartesian([jets, ak.fill_none(leptons, [], axis=0)], nested=True))
    far = ak.all(j.deltaR(lep) > 0.4, axis=-1)
    return (jets.pt > cuts.jet_pt) & (abs(jets.eta) < 2.5) & (jets.jetId >= 2) & far & pileup_id_ok(jets, cuts)


def select(events, golden: dict | None = None, cuts: Cuts = Cuts(), primary_dataset: str | None = None) -> Selection:
    """The DY+jets selection (see the module docstring) as a :class:`Selection`.

    ``primary_dataset``: the data set's PD (its events pass the overlap rule); None for MC and
    unskimmed data.
    """
    n = len(events)
    cut = {"all": np.ones(n, dtype=bool)}
    keep = lumi_mask(events.run, events.luminosityBlock, golden) if golden is not None else np.ones(n, dtype=bool)
    cut["lumi"] = keep
    mus, els = good_muons(events, cuts), good_electrons(events, cuts)
    mu_trig, el_trig = fired(events, MUON_TRIGGERS), fired(events, ELECTRON_TRIGGERS)
    keep = keep & primary_dataset_mask(events, primary_dataset)
    is_mm = np.asarray(ak.num(mus) == 2) & mu_trig
    is_ee = np.asarray(ak.num(els) == 2) & el_trig & ~np.asarray(ak.num(mus) == 2)
    cut["trigger"] = keep & (mu_trig | el_trig)
    lead_pt = np.where(is_mm, cuts.lead_muon_pt, cuts.lead_electron_pt)
    # the fields both flavours have: one record type, not a union of muons and electrons
    # (every later operation on a union runs once per pair of record types)
    leptons = ak.with_name(ak.where(is_mm, mus[list(LEPTON_FIELDS)], els[list(LEPTON_FIELDS)]), "Momentum4D")
    # the leading lepton is the highest-pT one, whatever the stored order (lepton corrections change it)
    leptons = leptons[ak.argsort(leptons.pt, axis=1, ascending=False)]
    two = (is_mm | is_ee) & keep
    leptons = ak.mask(leptons, two)
    ok2 = ak.fill_none((leptons.charge[:, 0] != leptons.charge[:, 1]) & (leptons.pt[:, 0] > lead_pt), False)
    two = two & np.asarray(ok2)
    cut["two leptons"] = two
    two = two & (n_extra_leptons(events, is_mm, is_ee, cuts) == 0)
    cut["lepton veto"] = two
    ll = leptons[:, 0] + leptons[:, 1]
    inz = ak.fill_none((ll.mass > Z_WINDOW[0]) & (ll.mass < Z_WINDOW[1]), False)
    z = two & np.asarray(inz)
    cut["Z window"] = z
    jets = events.Jet
    jet_ok = select_jets(jets, leptons, cuts)
    has_jet = np.asarray(ak.sum(jet_ok, axis=1) > 0)
    final = z & has_jet
    cut["jets"] = final
    channel = np.where(is_mm, "mumu", "ee")
    sel = events[final]
    jet_mask = jet_ok[final]
    return Selection(sel, leptons[final], jets[final][jet_mask], channel[final], cut, channel, jet_mask,
                     leptons, jet_ok)


def cutflow_hist(cut: dict, all_channels) -> hist.Hist:
    """Events per selection step and channel."""
    cutflow = (hist.Hist.new.StrCat(list(STEPS), name="step")
               .StrCat(["all", "mumu", "ee"], name="channel").Double())
    for step in STEPS:
        m = cut[step]
        ch = all_channels[m] if step in CHANNEL_STEPS else np.full(int(m.sum()), "all")
        cutflow.fill(step=np.full(int(m.sum()), step), channel=ch)
    return cutflow


def jet_flavour(jets, is_data: bool):
    if is_data or "hadronFlavour" not in jets.fields:
        return ak.full_like(jets.pt, 0, dtype=np.int32), "data"
    return jets.hadronFlavour, None


def official_discriminants(jets) -> dict:
    """BvsL, CvsB, CvsL of the official DeepJet scores in the file (-1 where undefined).

    From :func:`jetdask.inference.official_discriminants`: exact with PFNano's node branches,
    the stored CvB/CvL (BvsL derived from B and CvB) on NanoAOD v7+, and exact from B and C on
    older NanoAOD. A file with only ``btagDeepFlavB`` gives ``BvsAll`` = B.
    """
    from jetdask.inference import official_discriminants as from_branches
    f = set(jets.fields)
    if "btagDeepFlavB" not in f:
        return {}
    if not ({"btagDeepFlavCvB", "btagDeepFlavCvL"} <= f or "btagDeepFlavC" in f):
        return {"BvsAll": ak.fill_none(jets.btagDeepFlavB, -1.0)}
    d = from_branches(jets)
    return {k: ak.fill_none(ak.nan_to_none(d[k]), -1.0) for k in ("BvsL", "CvsB", "CvsL")}


FLAVOUR_NAMES = np.array(["light", "light", "light", "light", "c", "b"])


def _tagger(spec):
    from jetdask.inference import Tagger
    return spec if isinstance(spec, Tagger) else Tagger(**spec)


class DYJets(Analysis):
    """The DY+jets data/MC study.

    ``taggers``: inference specs, :class:`jetdask.inference.Tagger` or dicts of its fields
    (``{"name": "nominal", "source": "best.pt"}``: JSON-able, so ``jetdask run --kwargs`` and
    the ledger keep them). ``distortions``: input distortions run for every tagger in the same
    pass (``["noise0.1", "fgsm0.01"]`` -> taggers ``nominal@noise0.1`` ...). ``lumi_mask``:
    golden JSON for data. ``pileup``/``pileup_correction``: correctionlib file and correction
    name (first one when omitted) evaluated at ``Pileup_nTrueInt`` for MC. ``cuts``: overrides
    of :class:`Cuts` (``{"lead_muon_pt": 26, "pu_id": null}``). Data sets with fileset metadata
    ``primary_dataset`` follow the overlap rule of :mod:`jetdask.nanoaod.triggers`.
    ``corrections``: a corrections config (YAML, :mod:`jetdask.corrections.config`): JEC/JER,
    pile-up, b-tag shape SFs and the systematic variations (``systematics`` overrides its list,
    ``disable`` switches blocks off); the study then runs as :mod:`jetdask.corrections.dy`.
    """

    name = "dy_jets"

    def __init__(self, taggers=(), distortions=(), lumi_mask: str | None = None, pileup: str | None = None,
                 pileup_correction: str | None = None, cuts: dict | None = None, corrections: str | None = None,
                 systematics: list | None = None, disable: list | tuple = ()):
        self.cuts = Cuts.make(cuts)
        base = [_tagger(t) for t in taggers]
        self.taggers = [v for t in base for v in t.variants(list(distortions))]
        self.lumi_mask_path = lumi_mask
        self.pileup = pileup
        self.pileup_correction = pileup_correction
        self._golden = None
        cols = ["run", "luminosityBlock", "event",
                "Muon_pt", "Muon_eta", "Muon_phi", "Muon_mass", "Muon_charge", "Muon_tightId",
                "Muon_looseId", "Muon_pfRelIso04_all", "Electron_pt", "Electron_eta", "Electron_deltaEtaSC",
                "Electron_phi", "Electron_mass", "Electron_charge", "Electron_cutBased",
                "Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass", "Jet_jetId",
                "optional:Jet_hadronFlavour", "optional:Jet_btagDeepFlavB", "optional:Jet_btagDeepFlavCvB",
                "optional:Jet_btagDeepFlavCvL", "optional:Jet_btagDeepFlavC", "optional:Jet_puId",
                "optional:genWeight", "optional:Pileup_nTrueInt"]
        cols += [f"optional:{t}" for t in dict.fromkeys(MUON_TRIGGERS + ELECTRON_TRIGGERS + ALL_PD_TRIGGERS)]
        cols += [f"optional:Jet_{f}" for f, *_ in INPUTS.values() if f not in ("pt", "eta")]
        self.resources = {}
        if self.taggers:
            from jetdask.inference import tagger_columns, tagger_resources
            cols += [c for c in tagger_columns(self.taggers) if c not in cols]
            self.resources = tagger_resources(self.taggers)  # {"GPU": 1} for taggers on CUDA
        self.corrections_config = None
        if corrections is not None:   # resolved and hashed here (client side); tasks carry paths + sha256
            from jetdask.corrections import setup_analysis
            cols += setup_analysis(self, corrections, systematics, disable, cols)
        self.columns = cols
        self._pileup_corr = None

    def output_summary(self) -> str:
        """One line: histograms x variations x categories and the bins per data set."""
        n_syst = len(self.corrections_config.syst_names) if self.corrections_config else 1
        n_disc = 3 + 3 * len(self.taggers)
        n_sf = 4 + 3 * sum("@" not in t.name for t in self.taggers)    # no sf_ for distorted-input variants
        bins = [20] * n_disc + [b for _, b, *_ in INPUTS.values()]
        from jetdask.corrections.size import describe
        return describe(n_syst, bins, n_sf if self.corrections_config else 0)

    def provenance(self) -> dict:
        """What the run records (ledger, metadata.json): the correction files' sha256, names, versions."""
        return {"corrections": self.corrections_config.provenance()} if self.corrections_config else {}

    # -- helpers ------------------------------------------------------------------
    def _golden_json(self):
        if self.lumi_mask_path and self._golden is None:
            with open(self.lumi_mask_path) as f:
                self._golden = json.load(f)
        return self._golden

    def _weights(self, events, is_data):
        if is_data or "genWeight" not in events.fields:
            return np.ones(len(events))
        w = np.asarray(events.genWeight, dtype=np.float64)
        if self.pileup and "Pileup" in events.fields:
            if self._pileup_corr is None:
                import correctionlib
                cset = correctionlib.CorrectionSet.from_file(self.pileup)
                self._pileup_corr = cset[self.pileup_correction] if self.pileup_correction else \
                    next(iter(cset.values()))
            w = w * self._pileup_corr.evaluate(np.asarray(events.Pileup.nTrueInt, dtype=np.float64), "nominal")
        return w

    @staticmethod
    def _hist(name, bins, lo, hi, label):
        return (hist.Hist.new.StrCat(["mumu", "ee"], name="channel")
                .StrCat(["b", "c", "light", "data"], name="flavour")
                .Reg(bins, lo, hi, name=name, label=label).Weight(label="Jets"))

    def process(self, events, chunk):
        is_data = bool(chunk.metadata.get("is_data", False))
        golden = self._golden_json() if is_data else None
        pd = chunk.metadata.get("primary_dataset") if is_data else None
        if self.corrections_config is not None:   # corrections and systematic variations
            from jetdask.corrections import dy
            if is_data:
                return dy.process_data(self, events, chunk, select, cutflow_hist, golden, pd)
            return dy.process_mc(self, events, chunk, select, select_jets, cutflow_hist, pd)
        sel, leptons, jets, channel, cut, all_channels, jet_mask, *_ = select(events, golden, self.cuts, pd)
        weight = self._weights(sel, is_data)

        out = {"cutflow": cutflow_hist(cut, all_channels)}

        if self.taggers and len(sel):
            from jetdask.inference import tagger_pass
            sel = tagger_pass(sel, self.taggers, jet_mask, is_data=is_data)
            jets = sel.Jet[jet_mask]

        flav_num, data_label = jet_flavour(jets, is_data)
        flat_flav = np.asarray(ak.flatten(flav_num))
        flav = np.full(len(flat_flav), "data", dtype=object) if data_label else \
            FLAVOUR_NAMES[np.clip(np.abs(flat_flav), 0, 5)]
        jw = np.asarray(ak.flatten(ak.broadcast_arrays(weight, jets.pt)[0]))
        jch = np.asarray(ak.flatten(ak.broadcast_arrays(channel, jets.pt)[0]))

        def fill(name, values, bins=20, lo=0.0, hi=1.0, label=None):
            h = self._hist("value", bins, lo, hi, label or name)
            values = np.asarray(values, dtype=np.float64)
            if hi == 1.0:  # a discriminant of exactly 1 belongs in the last bin, not the overflow
                values = np.where(values == 1.0, np.nextafter(1.0, 0.0), values)
            h.fill(channel=jch, flavour=flav, value=values, weight=jw)
            out[name] = h

        self.fill_jets(jets, fill)
        counters = {"selected_events": int(len(sel)), "selected_jets": int(len(jw)),
                    "sumw_selected": float(weight.sum())}
        return Result(hists=out, counters=counters)

    def fill_jets(self, jets, fill):
        """Every per-jet histogram: ``fill(name, flat values, bins, lo, hi, label)``."""
        for disc, values in official_discriminants(jets).items():
            fill(f"DeepJet_{disc}", ak.flatten(values), label=f"DeepJet {disc}")
        for t in self.taggers:  # only after a tagger pass (histograms merge by name: empty chunks add none)
            if t.name not in jets.fields:
                continue
            scores = jets[t.name]
            for disc in ("BvsL", "CvsB", "CvsL"):
                if disc in scores.fields:
                    fill(f"{t.name}_{disc}", ak.flatten(scores[disc]), label=f"{t.name} {disc}")
        for name, (field, bins, lo, hi, label) in INPUTS.items():
            if field in jets.fields:
                fill(name, ak.flatten(jets[field]), bins, lo, hi, label)
