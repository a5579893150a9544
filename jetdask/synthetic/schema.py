"""Branch names and NanoAOD types of the synthetic files.

Types follow the real PFNano files (``pfnano.root``): floats are float32,
indices/counts/IDs int32, a few flags uint8 or bool, event ids uint32/uint64.
Every field not listed in a collection's table of explicit types is float32.
The DeepJet input table (25 charged x 16, 25 neutral x 6, 4 SV x 12 features
plus counts and ``Jet_FlavSplit``) is built from the feature lists below so
that the names match the PFNano DeepJet extension exactly.
"""
from __future__ import annotations

import numpy as np

N_CPF, N_NPF, N_SV = 25, 25, 4

CPF_FEATURES = (
    ("puppiw", "float32"), ("VTX_ass", "int32"), ("drminsv", "float32"), ("ptrel", "float32"),
    ("quality", "int32"), ("chi2", "float32"), ("BtagPf_trackDeltaR", "float32"),
    ("BtagPf_trackEtaRel", "float32"), ("BtagPf_trackJetDistVal", "float32"),
    ("BtagPf_trackPPar", "float32"), ("BtagPf_trackPParRatio", "float32"),
    ("BtagPf_trackPtRel", "float32"), ("BtagPf_trackSip2dSig", "float32"),
    ("BtagPf_trackSip3dSig", "float32"), ("BtagPf_trackSip2dVal", "float32"),
    ("BtagPf_trackSip3dVal", "float32"),
)
NPF_FEATURES = (
    ("puppiw", "float32"), ("deltaR", "float32"), ("drminsv", "float32"), ("HadFrac", "float32"),
    ("ptrel", "float32"), ("isGamma", "int32"),
)
SV_FEATURES = tuple((f, "float32") for f in (
    "mass", "pt", "ntracks", "chi2", "normchi2", "dxy", "dxysig", "d3d", "d3dsig",
    "costhetasvpv", "deltaR", "enratio"))
DEEPJET_COUNTS = ("nCpfcand", "nNpfcand", "nsv", "npv")

#: Generator/truth content written only in MC-like files: fields per collection,
#: whole collections and scalar branches.
MC_ONLY = {
    "Jet": ("hadronFlavour", "partonFlavour", "nBHadrons", "nCHadrons", "genJetIdx", "FlavSplit"),
    "Muon": ("genPartFlav",),
    "Electron": ("genPartFlav",),
}
MC_ONLY_COLLECTIONS = ("GenJet", "LHEScaleWeight", "PSWeight")  # the last two: bare jagged branches
MC_ONLY_SCALARS = ("genWeight", "Pileup_nTrueInt", "Pileup_nPU")


def strip_truth(collections: dict, scalars: dict) -> tuple:
    """Copies of ``collections``/``scalars`` without generator and truth content (data-like files)."""
    cols = {}
    for name, (counts, fields) in collections.items():
        if name in MC_ONLY_COLLECTIONS:
            continue
        drop = MC_ONLY.get(name, ())
        cols[name] = (counts, {k: v for k, v in fields.items() if k not in drop})
    return cols, {k: v for k, v in scalars.items() if k not in MC_ONLY_SCALARS}


def deepjet_fields(is_mc: bool) -> dict:
    """``{field: dtype}`` of the DeepJet extension (without the ``Jet_`` prefix), in PFNano order."""
    out = {f"DeepJet_{c}": "int32" for c in DEEPJET_COUNTS}
    if is_mc:
        out["FlavSplit"] = "int32"
    for prefix, feats, n in (("Cpfcan", CPF_FEATURES, N_CPF), ("Npfcan", NPF_FEATURES, N_NPF),
                             ("sv", SV_FEATURES, N_SV)):
        for i in range(n):
            for f, t in feats:
                out[f"DeepJet_{prefix}_{f}_{i}"] = t
    return out


_I, _U8, _B = "int32", "uint8", "bool"

DEEPCSV_INT = ("DeepCSV_jetNSecondaryVertices", "DeepCSV_jetNSelectedTracks",
               "DeepCSV_jetNTracksEtaRel", "DeepCSV_vertexNTracks")

TYPES = {
    "Jet": {**{k: _I for k in ("jetId", "puId", "nConstituents", "nMuons", "nElectrons", "muonIdx1",
                               "muonIdx2", "electronIdx1", "electronIdx2", "hadronFlavour",
                               "partonFlavour", "nBHadrons", "nCHadrons", "genJetIdx") + DEEPCSV_INT},
            "cleanmask": _U8},
    "Muon": {**{k: _I for k in ("charge", "pdgId", "jetIdx", "nStations", "nTrackerLayers", "tightCharge")},
             **{k: _B for k in ("looseId", "mediumId", "tightId", "mediumPromptId", "softId", "isGlobal",
                                "isTracker", "isPFcand", "highPurity")},
             **{k: _U8 for k in ("pfIsoId", "highPtId", "genPartFlav")}},
    "Electron": {**{k: _I for k in ("charge", "pdgId", "cutBased", "jetIdx", "tightCharge")},
                 **{k: _B for k in ("mvaFall17V2Iso_WP80", "mvaFall17V2Iso_WP90", "mvaFall17V2Iso_WPL",
                                    "mvaFall17V2noIso_WP90", "convVeto")},
                 **{k: _U8 for k in ("lostHits", "genPartFlav")}},
    "JetPFCands": {"pFCandsIdx": _I, "jetIdx": _I},
    "PFCands": {k: _I for k in ("charge", "lostInnerHits", "pdgId", "pvAssocQuality", "trkQuality")},
    "JetSVs": {"jetIdx": _I, "sVIdx": _I},
    "SV": {"ntracks": _U8},
    "GenJet": {"partonFlavour": _I, "hadronFlavour": _U8},
    "event": {"run": "uint32", "luminosityBlock": "uint32", "event": "uint64", "PV_npvs": _I,
              "PV_npvsGood": _I, "Pileup_nPU": _I},
}


_DEEPJET_TYPES = deepjet_fields(True)


def field_dtype(collection: str, field: str) -> np.dtype:
    """NanoAOD dtype of ``field`` in ``collection`` (``"event"`` for scalar branches)."""
    if collection == "Jet" and field.startswith("DeepJet_"):
        return np.dtype(_DEEPJET_TYPES[field])
    if collection == "Jet" and field == "FlavSplit":
        return np.dtype("int32")
    if collection == "event" and (field.startswith("HLT_") or field.startswith("Flag_")):
        return np.dtype(bool)
    return np.dtype(TYPES.get(collection, {}).get(field, "float32"))


#: Collections whose float32 fields are stored with a 10-bit mantissa, like
#: NanoAOD's reduced-precision jet and candidate tables (leptons and event-level
#: floats keep full precision).
REDUCED_PRECISION = ("Jet", "JetPFCands", "PFCands", "JetSVs", "SV", "GenJet")
MANTISSA_BITS = 10


def reduce_precision(values: np.ndarray, bits: int = MANTISSA_BITS) -> np.ndarray:
    """float32 values rounded to ``bits`` mantissa bits (inf and NaN untouched), in place."""
    raw = values.view(np.uint32)
    finite = np.isfinite(values)
    drop = 23 - bits
    rounded = (raw + np.uint32(1 << (drop - 1))) & np.uint32(~((1 << drop) - 1) & 0xFFFFFFFF)
    np.copyto(raw, rounded, where=finite)
    return values


def cast(collection: str, fields: dict) -> dict:
    """Copy of ``fields`` with every array converted to its NanoAOD dtype (and precision)."""
    out = {}
    reduce = collection in REDUCED_PRECISION
    for k, v in fields.items():
        dtype = field_dtype(collection, k)
        a = np.array(v, dtype=dtype, copy=True, order="C")
        if reduce and dtype == np.float32:
            reduce_precision(a)
        out[k] = a
    return out
