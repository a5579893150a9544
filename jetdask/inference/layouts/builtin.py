"""The built-in layouts: ``deepjet``, ``deepcsv``, ``part`` and ``pn`` (see the package docstring)."""
from __future__ import annotations

from .jagged import JaggedLayout
from .slots import SlotInput, SlotLayout
from .specs import InputSpec

CPF_FEATURES = ("puppiw", "VTX_ass", "drminsv", "ptrel", "quality", "chi2", "BtagPf_trackDeltaR",
                "BtagPf_trackEtaRel", "BtagPf_trackJetDistVal", "BtagPf_trackPPar",
                "BtagPf_trackPParRatio", "BtagPf_trackPtRel", "BtagPf_trackSip2dSig",
                "BtagPf_trackSip3dSig", "BtagPf_trackSip2dVal", "BtagPf_trackSip3dVal")
NPF_FEATURES = ("puppiw", "deltaR", "drminsv", "HadFrac", "ptrel", "isGamma")
SV_FEATURES = ("mass", "pt", "ntracks", "chi2", "normchi2", "dxy", "dxysig", "d3d", "d3dsig",
               "costhetasvpv", "deltaR", "enratio")
DEEPJET_GLOBALS = ("pt", "eta", "DeepJet_nCpfcand", "DeepJet_nNpfcand", "DeepJet_nsv", "DeepJet_npv",
                   "DeepCSV_trackSumJetEtRatio", "DeepCSV_trackSumJetDeltaR", "DeepCSV_vertexCategory",
                   "DeepCSV_trackSip2dValAboveCharm", "DeepCSV_trackSip2dSigAboveCharm",
                   "DeepCSV_trackSip3dValAboveCharm", "DeepCSV_trackSip3dSigAboveCharm",
                   "DeepCSV_jetNSelectedTracks", "DeepCSV_jetNTracksEtaRel")
DEEPJET_GLOBAL_INT = ("DeepJet_nCpfcand", "DeepJet_nNpfcand", "DeepJet_nsv", "DeepJet_npv",
                      "DeepCSV_vertexCategory", "DeepCSV_jetNSelectedTracks", "DeepCSV_jetNTracksEtaRel")
#: -1 in the ``*AboveCharm`` variables means "no track above the charm threshold" (a default, not a value).
ABOVE_CHARM = tuple((f"DeepCSV_trackSip{d}{k}AboveCharm", (-1.0,)) for d in ("2d", "3d") for k in ("Val", "Sig"))

DEEPJET = SlotLayout("deepjet", (
    SlotInput(InputSpec("glob", DEEPJET_GLOBALS, integer=DEEPJET_GLOBAL_INT), sentinels=ABOVE_CHARM),
    SlotInput(InputSpec("cpf", CPF_FEATURES, 25, integer=("VTX_ass", "quality")),
              "DeepJet_Cpfcan_{feature}_{slot}", "DeepJet_nCpfcand"),
    SlotInput(InputSpec("npf", NPF_FEATURES, 25, integer=("isGamma",)),
              "DeepJet_Npfcan_{feature}_{slot}", "DeepJet_nNpfcand"),
    SlotInput(InputSpec("sv", SV_FEATURES, 4, integer=("ntracks",)), "DeepJet_sv_{feature}_{slot}",
              "DeepJet_nsv"),
))

CSV_TRACK = ("trackDecayLenVal", "trackDeltaR", "trackJetDistVal", "trackPtRatio", "trackPtRel",
             "trackSip2dSig", "trackSip3dSig")
DEEPCSV_FEATURES = tuple(
    ["DeepCSV_flightDistance2dSig", "DeepCSV_flightDistance2dVal", "DeepCSV_flightDistance3dSig",
     "DeepCSV_flightDistance3dVal"]
    + [f"DeepCSV_{t}_{i}" for t in CSV_TRACK for i in range(6)]
    + [f"DeepCSV_trackEtaRel_{i}" for i in range(4)]
    + ["DeepCSV_trackJetPt", "DeepCSV_trackSip2dSigAboveCharm", "DeepCSV_trackSip2dValAboveCharm",
       "DeepCSV_trackSip3dSigAboveCharm", "DeepCSV_trackSip3dValAboveCharm", "DeepCSV_trackSumJetDeltaR",
       "DeepCSV_trackSumJetEtRatio", "DeepCSV_vertexCategory", "DeepCSV_vertexEnergyRatio",
       "DeepCSV_vertexJetDeltaR", "DeepCSV_vertexMass", "DeepCSV_jetNSecondaryVertices",
       "DeepCSV_jetNSelectedTracks", "DeepCSV_jetNTracksEtaRel", "DeepCSV_vertexNTracks"])
#: Track slot ``i`` of DeepCSV is empty where ``i >= jetNSelectedTracks`` (``jetNTracksEtaRel`` for trackEtaRel).
DEEPCSV_COUNTS = tuple([(f"DeepCSV_{t}_{i}", "DeepCSV_jetNSelectedTracks", i) for t in CSV_TRACK for i in range(6)]
                       + [(f"DeepCSV_trackEtaRel_{i}", "DeepCSV_jetNTracksEtaRel", i) for i in range(4)])
DEEPCSV = SlotLayout("deepcsv", (SlotInput(InputSpec(
    "x", DEEPCSV_FEATURES, integer=("DeepCSV_vertexCategory", "DeepCSV_jetNSecondaryVertices",
                                    "DeepCSV_jetNSelectedTracks", "DeepCSV_jetNTracksEtaRel",
                                    "DeepCSV_vertexNTracks")),
    feature_counts=DEEPCSV_COUNTS, sentinels=ABOVE_CHARM),))

PART_FEATURES = ("log_pt", "log_e", "log_ptrel", "log_erel", "deta", "dphi", "dr", "charge", "is_electron",
                 "is_muon", "is_photon", "is_ch_hadron", "is_ne_hadron", "d0", "d0_sig", "dz", "dz_sig",
                 "puppi", "lost_inner_hits", "pv_assoc", "btagSip3dSig")
PART = JaggedLayout("part", jets="Jet", candidates="pfcands", groups=(("features", PART_FEATURES),),
                    max_length=50, sort_by="pt", vectors="vectors")

PN_FEATURES = ("log_pt", "log_e", "log_ptrel", "log_erel", "deta", "dphi", "dr", "charge", "is_electron",
               "is_muon", "is_photon", "is_ch_hadron", "is_ne_hadron", "d0", "d0_sig", "dz", "dz_sig", "puppi")
#: ParticleNet-style inputs on AK4 jets: points (deta, dphi) for the k-nearest-neighbour graph, features, mask.
PN = JaggedLayout("pn", jets="Jet", candidates="pfcands",
                  groups=(("points", ("deta", "dphi")), ("features", PN_FEATURES)), max_length=50, sort_by="pt")

BUILTIN = (DEEPJET, DEEPCSV, PART, PN)
