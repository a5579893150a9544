"""Input layouts of CMS production taggers, in the order their ONNX files expect.

``deepjet-cmssw``: the production DeepJet (DeepFlavour) inputs from the PFNano DeepJet
table, in the order CMSSW's DeepFlavour ONNX producer fills its tensors:

* ``glob (N,15)``: jet pt, eta, nCpfcand, nNpfcand, nsv, npv, trackSumJetEtRatio,
  trackSumJetDeltaR, vertexCategory, trackSip2dValAboveCharm, trackSip2dSigAboveCharm,
  trackSip3dValAboveCharm, trackSip3dSigAboveCharm, jetNSelectedTracks, jetNTracksEtaRel;
* ``cpf (N,25,16)``: trackEtaRel, trackPtRel, trackPPar, trackDeltaR, trackPParRatio,
  trackSip2dVal, trackSip2dSig, trackSip3dVal, trackSip3dSig, trackJetDistVal, ptrel,
  drminsv, VTX_ass, puppiw, chi2, quality;
* ``npf (N,25,6)``: ptrel, deltaR, isGamma, HadFrac, drminsv, puppiw;
* ``sv (N,4,12)``: pt, deltaR, mass, ntracks, chi2, normchi2, dxy, dxysig, d3d, d3dsig,
  costhetasvpv, enratio.

As in CMSSW: the jet pt is the *uncorrected* one (``Jet_pt * (1 - Jet_rawFactor)``), slots
beyond the candidate counts hold 0, and a tag-info global that CMSSW defaults to -999 reaches
the model as -999 (it is still marked invalid, so a scaler, if one is given, defaults it).
No scaler: production models take the raw features. ``deepjet-cmssw-v03`` adds the fifth
input of the Run-2 ``DeepFlavourV03_10X_training`` ONNX file, ``jetpt (N,1)`` (uncorrected
jet pt). Both are registered in :data:`jetdask.inference.layouts.LAYOUTS` when
:mod:`jetdask.inference` is imported.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .layouts import LAYOUTS, SENTINEL, Converted, InputSpec, SlotInput, SlotLayout

CMSSW_CPF = ("BtagPf_trackEtaRel", "BtagPf_trackPtRel", "BtagPf_trackPPar", "BtagPf_trackDeltaR",
             "BtagPf_trackPParRatio", "BtagPf_trackSip2dVal", "BtagPf_trackSip2dSig", "BtagPf_trackSip3dVal",
             "BtagPf_trackSip3dSig", "BtagPf_trackJetDistVal", "ptrel", "drminsv", "VTX_ass", "puppiw", "chi2",
             "quality")
CMSSW_NPF = ("ptrel", "deltaR", "isGamma", "HadFrac", "drminsv", "puppiw")
CMSSW_SV = ("pt", "deltaR", "mass", "ntracks", "chi2", "normchi2", "dxy", "dxysig", "d3d", "d3dsig",
            "costhetasvpv", "enratio")
CMSSW_GLOBALS = ("pt", "eta", "DeepJet_nCpfcand", "DeepJet_nNpfcand", "DeepJet_nsv", "DeepJet_npv",
                 "DeepCSV_trackSumJetEtRatio", "DeepCSV_trackSumJetDeltaR", "DeepCSV_vertexCategory",
                 "DeepCSV_trackSip2dValAboveCharm", "DeepCSV_trackSip2dSigAboveCharm",
                 "DeepCSV_trackSip3dValAboveCharm", "DeepCSV_trackSip3dSigAboveCharm",
                 "DeepCSV_jetNSelectedTracks", "DeepCSV_jetNTracksEtaRel")
CMSSW_GLOBAL_INT = ("DeepJet_nCpfcand", "DeepJet_nNpfcand", "DeepJet_nsv", "DeepJet_npv", "DeepCSV_vertexCategory",
                    "DeepCSV_jetNSelectedTracks", "DeepCSV_jetNTracksEtaRel")


@dataclasses.dataclass(frozen=True)
class CmsswSlotLayout(SlotLayout):
    """A :class:`SlotLayout` that feeds what CMSSW feeds: uncorrected jet pt, -999 tag-info defaults."""
    raw_pt: bool = True
    keep_sentinel: tuple = ("glob",)

    @property
    def columns(self) -> list:
        cols = super().columns
        return sorted(set(cols) | {f"{self.jets}_rawFactor"}) if self.raw_pt else cols

    def convert(self, jets) -> Converted:
        conv = super().convert(jets)
        raw = (1.0 - jets.field("rawFactor").astype(np.float32)) if self.raw_pt else None
        for inp in self.inputs:
            spec = inp.spec
            if spec.slots is not None:
                continue
            x = conv.arrays[spec.name]
            for j, feat in enumerate(spec.features):
                col = jets.field(inp.pattern.format(feature=feat, slot=0))
                if raw is not None and feat == "pt":
                    x[:, j] = np.where(conv.valid[spec.name][:, j], x[:, j] * raw, 0.0)
                if spec.name in self.keep_sentinel:
                    x[:, j] = np.where(col == SENTINEL, SENTINEL, x[:, j])
        return conv


_CANDIDATES = (
    SlotInput(InputSpec("cpf", CMSSW_CPF, 25, integer=("VTX_ass", "quality")),
              "DeepJet_Cpfcan_{feature}_{slot}", "DeepJet_nCpfcand"),
    SlotInput(InputSpec("npf", CMSSW_NPF, 25, integer=("isGamma",)), "DeepJet_Npfcan_{feature}_{slot}",
              "DeepJet_nNpfcand"),
    SlotInput(InputSpec("sv", CMSSW_SV, 4, integer=("ntracks",)), "DeepJet_sv_{feature}_{slot}", "DeepJet_nsv"),
)
DEEPJET_CMSSW = CmsswSlotLayout("deepjet-cmssw", (
    SlotInput(InputSpec("glob", CMSSW_GLOBALS, integer=CMSSW_GLOBAL_INT)),) + _CANDIDATES)
DEEPJET_CMSSW_V03 = CmsswSlotLayout("deepjet-cmssw-v03", DEEPJET_CMSSW.inputs + (
    SlotInput(InputSpec("jetpt", ("pt",), scale=False)),))

#: Output classes of the production models, in output order (probb, probbb, problepb, probc, probuds, probg).
DEFAULT_CLASSES = {"deepjet-cmssw": ("b", "bb", "lepb", "c", "uds", "g"),
                   "deepjet-cmssw-v03": ("b", "bb", "lepb", "c", "uds", "g")}

for _layout in (DEEPJET_CMSSW, DEEPJET_CMSSW_V03):
    LAYOUTS.setdefault(_layout.name, _layout)
