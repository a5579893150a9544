"""Input layouts: the branches a tagger reads and their vectorised conversion to tensors.

A layout turns the kept jets of one collection into float32 arrays, one per model
argument (in the model's argument order), plus for each array a boolean ``valid``
array of the same shape: False for padding, empty slots, non-finite values and the
NanoAOD default ``-999``. Invalid entries hold 0 after conversion; a scaler maps
them to its per-feature default and distortions never touch them (nor integer-valued
features). Built-in layouts (``get_layout(name)``):

``deepjet``  ``glob (N,15)``, ``cpf (N,25,16)``, ``npf (N,25,6)``, ``sv (N,4,12)`` from
             the PFNano DeepJet table ``Jet_DeepJet_*``. The 15 globals are those of the
             reference DeepJet: jet pt, eta, nCpfcand, nNpfcand, nsv, npv and the DeepCSV
             tag variables trackSumJetEtRatio, trackSumJetDeltaR, vertexCategory,
             trackSip2dValAboveCharm, trackSip2dSigAboveCharm, trackSip3dValAboveCharm,
             trackSip3dSigAboveCharm, jetNSelectedTracks, jetNTracksEtaRel. Slot i of a
             candidate type is filled when i < nCpfcand / nNpfcand / nsv.
``deepcsv``  ``x (N,65)``: every ``Jet_DeepCSV_*`` input in :data:`DEEPCSV_FEATURES` order.
``part``     ``features (N,21,50)``, ``vectors (N,4,50)`` = (px, py, pz, E), ``mask (N,1,50)``
             from ``Jet.pfcands`` (JetPFCands -> PFCands), candidates sorted by decreasing pT
             and clipped to 50; features in :data:`PART_FEATURES`.

User layouts: :class:`JaggedLayout` takes any jet collection, its candidate-list field,
named groups of features and a maximum length, and gives ``(N, C, P)`` per group plus
``mask (N,1,P)`` (and optionally the four-vectors), e.g. ParticleNet on AK8 jets::

    JaggedLayout("pn", jets="FatJet", groups={"points": ["deta", "dphi"],
                 "features": ["log_pt", "log_e", "deta", "dphi", "charge"]}, max_length=50)

A feature is a built-in derived name (:data:`DERIVED`), a field of the candidate
(``"btagSip3dSig"``), of its linked record (``"pfcand.dz"``; a bare name not on the
candidate is looked up on ``p4``), or a picklable ``fn(ctx) -> flat array`` (see
:class:`CandidateContext`). Padding uses a numpy scatter on flat offsets: no loop over jets.
Layouts are frozen dataclasses: hashable (the conversion of a chunk is shared by every
tagger with an equal layout) and cheap to pickle. ``layout.columns`` lists the branches
(names, collection names or glob patterns) to add to an analysis' ``columns``.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Mapping

import awkward as ak
import numpy as np

SENTINEL = -999.0

# ----------------------------------------------------------------------------- flat access
# ``ak.to_numpy(jets[field])`` costs ~150 us per field on a masked, lazily carried record
# array, i.e. ~0.1 s for the 600 DeepJet branches of a chunk. Here the awkward layout is
# walked once to find, for every kept jet, its position in the underlying ``RecordArray``;
# each field is then one ``numpy.take`` on the field's buffer (~1 us of overhead per field).
# Candidate lists (``jet.pfcands``) and linked records (``cand.pfcand``) are followed the same
# way, so no Python loop over jets runs anywhere. Layout nodes understood: ListOffsetArray,
# ListArray, RegularArray, IndexedArray, IndexedOptionArray, masked arrays, RecordArray,
# NumpyArray; anything else is packed with ``ak.to_packed`` first.

_C = ak.contents


def _unwrap(layout, idx: np.ndarray, valid: np.ndarray | None):
    """Strip indexed/option nodes: (layout, idx, valid) with idx pointing into ``layout``."""
    while True:
        if isinstance(layout, (_C.ByteMaskedArray, _C.BitMaskedArray, _C.UnmaskedArray)):
            layout = layout.to_IndexedOptionArray64()
        if isinstance(layout, (_C.IndexedArray, _C.IndexedOptionArray)):
            inner = np.asarray(layout.index.data)[idx]
            if isinstance(layout, _C.IndexedOptionArray):
                ok = inner >= 0
                valid = ok if valid is None else (valid & ok)
                inner = np.where(ok, inner, 0)
            layout, idx = layout.content, inner
            continue
        return layout, idx, valid


def list_items(layout, idx: np.ndarray, valid: np.ndarray | None):
    """Counts of the lists ``layout[idx]`` and the flat indices of their items in ``layout.content``."""
    layout, idx, valid = _unwrap(layout, idx, valid)
    if isinstance(layout, _C.RegularArray):
        starts = idx * layout.size
        stops = starts + layout.size
    elif isinstance(layout, (_C.ListOffsetArray, _C.ListArray)):
        starts = np.asarray(layout.starts.data)[idx]
        stops = np.asarray(layout.stops.data)[idx]
    else:
        raise TypeError(f"expected a list, found {type(layout).__name__}")
    counts = (stops - starts).astype(np.int64)
    if valid is not None:
        counts = np.where(valid, counts, 0)
    total = int(counts.sum())
    first = np.cumsum(counts) - counts
    items = np.arange(total, dtype=np.int64) + np.repeat(starts.astype(np.int64) - first, counts)
    return counts, layout.content, items


class Records:
    """The records ``layout[idx]`` (entries where ``valid`` is False read as 0)."""

    def __init__(self, layout, idx: np.ndarray, valid: np.ndarray | None = None):
        layout, idx, valid = _unwrap(layout, np.asarray(idx, dtype=np.int64), valid)
        if not isinstance(layout, _C.RecordArray):
            packed = ak.to_layout(ak.to_packed(ak.Array(layout)))
            layout, idx, valid = _unwrap(packed, idx, valid)
            if not isinstance(layout, _C.RecordArray):
                raise TypeError(f"expected records, found {type(layout).__name__}")
        self.layout, self.idx, self.valid = layout, idx, valid
        self._pos = {f: i for i, f in enumerate(layout.fields)}
        self._cache: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.idx)

    @property
    def fields(self) -> list[str]:
        return list(self._pos)

    def has(self, name: str) -> bool:
        return name in self._pos

    def _content(self, name: str):
        try:
            return self.layout.contents[self._pos[name]]
        except KeyError:
            raise KeyError(f"no field {name!r}; fields: {sorted(self._pos)[:20]}...") from None

    def field(self, name: str) -> np.ndarray:
        """The flat numpy values of ``name`` (a field holding one number per record)."""
        out = self._cache.get(name)
        if out is not None:
            return out
        content, idx, valid = _unwrap(self._content(name), self.idx, self.valid)
        if isinstance(content, _C.NumpyArray) and content.data.ndim == 1:
            out = np.asarray(content.data)[idx]
        else:
            out = ak.to_numpy(ak.fill_none(ak.Array(content)[idx], 0))
        if valid is not None:
            out = np.where(valid, out, 0).astype(out.dtype, copy=False)
        self._cache[name] = out
        return out

    def record(self, name: str) -> "Records":
        """The linked record field ``name`` (e.g. ``cand.pfcand``); missing links read as 0."""
        return Records(self._content(name), self.idx, self.valid)

    def lists(self, name: str) -> tuple[np.ndarray, "Records"]:
        """(counts per record, flat records of the items) of the list field ``name``."""
        counts, content, items = list_items(self._content(name), self.idx, self.valid)
        return counts, Records(content, items)

    def take(self, order: np.ndarray) -> "Records":
        return Records(self.layout, self.idx[order], None if self.valid is None else self.valid[order])


def kept_jets(jets: ak.Array, mask=None) -> tuple[Records, np.ndarray, np.ndarray]:
    """(records of the kept jets, indices of the kept jets among all flat jets, jets per event)."""
    layout = ak.to_layout(jets)
    n_events = len(layout)
    counts, content, items = list_items(layout, np.arange(n_events, dtype=np.int64), None)
    if mask is None:
        sel = np.arange(len(items))
    else:
        m = ak.to_numpy(ak.flatten(ak.fill_none(mask, False), axis=1)).astype(bool)
        if len(m) != len(items):
            raise ValueError(f"jet mask has {len(m)} jets, the collection {len(items)}")
        sel = np.flatnonzero(m)
    return Records(content, items[sel]), sel, counts


# ----------------------------------------------------------------------------- specs


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """One model argument: ``(N, F)``, ``(N, slots, F)`` or, channels first, ``(N, F, slots)``."""
    name: str
    features: tuple
    slots: int | None = None
    channels_first: bool = False
    integer: tuple = ()          # names of integer-valued features (never distorted)
    distort: bool = True         # False: masks and four-vectors are never distorted
    scale: bool = True

    @property
    def shape(self) -> tuple:
        f = len(self.features)
        if self.slots is None:
            return (f,)
        return (f, self.slots) if self.channels_first else (self.slots, f)

    @property
    def feature_axis(self) -> int:
        return 1 if (self.slots is not None and self.channels_first) else -1

    def per_feature(self, values) -> np.ndarray:
        """``values`` (one per feature) shaped to broadcast against ``(N, *shape)``."""
        v = np.asarray(values, dtype=np.float32).reshape(-1)
        if self.slots is None or not self.channels_first:
            return v
        return v[:, None]

    def integer_mask(self) -> np.ndarray:
        return self.per_feature([f in self.integer for f in self.features]).astype(bool)


@dataclasses.dataclass
class Converted:
    """Inputs of the kept jets of one chunk: ``arrays[name]`` (float32) and ``valid[name]`` (bool)."""
    specs: tuple
    arrays: dict
    valid: dict
    n: int

    def ordered(self) -> list:
        return [self.arrays[s.name] for s in self.specs]


# ----------------------------------------------------------------------------- layouts


class Layout:
    """Base: ``name``, ``jets`` (collection), ``specs``, ``columns``, ``convert(records)``."""
    name: str
    jets: str = "Jet"

    @property
    def specs(self) -> tuple:  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def columns(self) -> list:  # pragma: no cover - interface
        raise NotImplementedError

    def convert(self, jets: Records) -> Converted:  # pragma: no cover - interface
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class SlotInput:
    """An input made of per-jet branches: ``pattern.format(feature=..., slot=...)`` per value."""
    spec: InputSpec
    pattern: str = "{feature}"
    count: str | None = None        # field with the number of filled slots


@dataclasses.dataclass(frozen=True)
class SlotLayout(Layout):
    """Inputs from fixed per-jet branches (the PFNano DeepJet / DeepCSV tables)."""
    name: str
    inputs: tuple
    jets: str = "Jet"

    @property
    def specs(self) -> tuple:
        return tuple(i.spec for i in self.inputs)

    @property
    def columns(self) -> list:
        out = []
        for inp in self.inputs:
            names = {inp.pattern.format(feature=f, slot=s)
                     for f in inp.spec.features for s in range(inp.spec.slots or 1)}
            if inp.count:
                names.add(inp.count)
            out += sorted(f"{self.jets}_{n}" for n in names)
        return sorted(set(out))

    def convert(self, jets: Records) -> Converted:
        n = len(jets)
        arrays, valid = {}, {}
        for inp in self.inputs:
            spec = inp.spec
            f, s = len(spec.features), spec.slots or 1
            x = np.empty((n, s, f), dtype=np.float32)
            for k in range(s):                      # one strided column write per branch
                for j, feat in enumerate(spec.features):
                    x[:, k, j] = jets.field(inp.pattern.format(feature=feat, slot=k))
            if not spec.slots:
                x = x.reshape(n, f)
            ok = np.isfinite(x)
            ok &= x != SENTINEL
            if inp.count:
                filled = np.arange(s)[None, :] < jets.field(inp.count).astype(np.int64)[:, None]
                ok &= filled[:, :, None]
            np.copyto(x, 0.0, where=~ok)
            arrays[spec.name], valid[spec.name] = x, ok
        return Converted(self.specs, arrays, valid, n)


# ----------------------------------------------------------------------------- candidates


def _wrap_phi(x):
    return (x + np.pi) % (2 * np.pi) - np.pi


class CandidateContext:
    """Flat per-candidate arrays for feature functions (candidates in output order).

    ``cand(path)``: a field of the candidate (``"btagSip3dSig"``, ``"pfcand.dz"``; a bare
    name missing on the candidate is read from the ``p4`` record); ``jet(name)``: the
    jet's field repeated per candidate; ``p4(name)``: candidate kinematics (pt, eta,
    phi, mass); ``feature(name)``: any feature of the layout, cached.
    """

    def __init__(self, cands: Records, jets: Records, counts: np.ndarray, p4: str | None):
        self.cands, self.jets, self.counts, self.p4name = cands, jets, counts, p4
        self.jet_of = np.repeat(np.arange(len(counts)), counts)
        self._cache: dict = {}
        self._p4rec = cands.record(p4) if p4 and cands.has(p4) else (cands if p4 is None else None)

    def _path(self, rec: Records, path: str) -> np.ndarray:
        parts = path.split(".")
        for p in parts[:-1]:
            rec = rec.record(p)
        return rec.field(parts[-1])

    def cand(self, path: str) -> np.ndarray:
        head = path.split(".", 1)[0]
        if self.cands.has(head):
            return self._path(self.cands, path)
        if self._p4rec is not None and self._p4rec.has(head):
            return self._path(self._p4rec, path)
        raise KeyError(f"candidate field {path!r} not found (candidate fields {self.cands.fields}, "
                       f"linked {self.p4name!r})")

    def p4(self, name: str) -> np.ndarray:
        if self._p4rec is None:
            raise KeyError(f"no kinematics record {self.p4name!r} on the candidates (read PFCands?)")
        return self._p4rec.field(name).astype(np.float64)

    def jet(self, name: str) -> np.ndarray:
        return self.jets.field(name).astype(np.float64)[self.jet_of]

    def feature(self, f) -> np.ndarray:
        key = f if isinstance(f, str) else id(f)
        out = self._cache.get(key)
        if out is None:
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                if callable(f):
                    out = np.asarray(f(self))
                elif f in DERIVED:
                    out = np.asarray(DERIVED[f](self))
                else:
                    out = self.cand(f)
            self._cache[key] = out
        return out


def _energy(c):
    pt, eta, m = c.p4("pt"), c.p4("eta"), c.p4("mass")
    return np.sqrt((pt * np.cosh(eta)) ** 2 + m ** 2)


def _jet_energy(c):
    pt, eta, m = c.jet("pt"), c.jet("eta"), c.jet("mass")
    return np.sqrt((pt * np.cosh(eta)) ** 2 + m ** 2)


def _abs_pdg(c):
    return np.abs(c.cand("pdgId"))


def _sig(val, err):
    return np.where(err > 0, val / np.where(err > 0, err, 1.0), 0.0)


#: Built-in candidate features (kinematics from the ``p4`` record, relative to the jet axis).
DERIVED: dict = {
    "pt": lambda c: c.p4("pt"), "eta": lambda c: c.p4("eta"), "phi": lambda c: c.p4("phi"),
    "mass": lambda c: c.p4("mass"), "energy": _energy,
    "px": lambda c: c.p4("pt") * np.cos(c.p4("phi")), "py": lambda c: c.p4("pt") * np.sin(c.p4("phi")),
    "pz": lambda c: c.p4("pt") * np.sinh(c.p4("eta")),
    "log_pt": lambda c: np.log(c.p4("pt")), "log_e": lambda c: np.log(_energy(c)),
    "log_ptrel": lambda c: np.log(c.p4("pt") / c.jet("pt")),
    "log_erel": lambda c: np.log(_energy(c) / _jet_energy(c)),
    "deta": lambda c: c.p4("eta") - c.jet("eta"),
    "dphi": lambda c: _wrap_phi(c.p4("phi") - c.jet("phi")),
    "dr": lambda c: np.hypot(c.p4("eta") - c.jet("eta"), _wrap_phi(c.p4("phi") - c.jet("phi"))),
    "charge": lambda c: c.cand("charge"),
    "is_electron": lambda c: _abs_pdg(c) == 11, "is_muon": lambda c: _abs_pdg(c) == 13,
    "is_photon": lambda c: _abs_pdg(c) == 22, "is_ch_hadron": lambda c: _abs_pdg(c) == 211,
    "is_ne_hadron": lambda c: _abs_pdg(c) == 130,
    "d0": lambda c: np.tanh(c.cand("d0")), "d0_sig": lambda c: _sig(c.cand("d0"), c.cand("d0Err")),
    "dz": lambda c: np.tanh(c.cand("dz")), "dz_sig": lambda c: _sig(c.cand("dz"), c.cand("dzErr")),
    "puppi": lambda c: c.cand("puppiWeight"), "lost_inner_hits": lambda c: c.cand("lostInnerHits"),
    "pv_assoc": lambda c: c.cand("pvAssocQuality"), "trk_quality": lambda c: c.cand("trkQuality"),
    "norm_chi2": lambda c: c.cand("trkChi2"),
}
INTEGER_DERIVED = frozenset({"charge", "is_electron", "is_muon", "is_photon", "is_ch_hadron", "is_ne_hadron",
                             "lost_inner_hits", "pv_assoc", "trk_quality"})
VECTOR_FEATURES = ("px", "py", "pz", "energy")


def _freeze(groups) -> tuple:
    if isinstance(groups, Mapping):
        groups = groups.items()
    return tuple((str(name), tuple(feats)) for name, feats in groups)


def _feature_name(f) -> str:
    return f if isinstance(f, str) else getattr(f, "__name__", repr(f))


@dataclasses.dataclass(frozen=True)
class JaggedLayout(Layout):
    """Padded ``(N, C, P)`` inputs from a per-jet candidate list (see the module docstring)."""
    name: str
    jets: str = "Jet"
    candidates: str = "pfcands"
    groups: tuple = ()
    max_length: int = 50
    sort_by: str | Callable | None = None     # feature; candidates in decreasing order of it
    p4: str | None = "pfcand"                  # record with pt, eta, phi, mass (None: the candidate)
    vectors: str | None = None                 # name of an extra (N,4,P) (px, py, pz, E) input
    mask: str = "mask"
    integer: tuple = ()                        # extra integer-valued feature names
    extra_columns: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "groups", _freeze(self.groups))
        object.__setattr__(self, "integer", tuple(self.integer))
        object.__setattr__(self, "extra_columns", tuple(self.extra_columns))
        if not self.groups:
            raise ValueError("a JaggedLayout needs at least one group of features")

    @property
    def specs(self) -> tuple:
        ints = INTEGER_DERIVED | set(self.integer)
        out = [InputSpec(g, tuple(_feature_name(f) for f in feats), self.max_length, True,
                         tuple(_feature_name(f) for f in feats if _feature_name(f) in ints))
               for g, feats in self.groups]
        if self.vectors:
            out.append(InputSpec(self.vectors, VECTOR_FEATURES, self.max_length, True, (), False, False))
        out.append(InputSpec(self.mask, ("mask",), self.max_length, True, ("mask",), False, False))
        return tuple(out)

    @property
    def columns(self) -> list:
        from ..nanoaod.events import GROUP_LINKS
        cols = [f"{self.jets}_{f}" for f in ("pt", "eta", "phi", "mass")]
        owner = [c for c, o, f in GROUP_LINKS if o == self.jets and f == self.candidates]
        cols += owner or [f"{self.jets}{self.candidates[:1].upper()}{self.candidates[1:]}"]
        if self.p4 == "pfcand":
            cols.append("PFCands")
        return cols + list(self.extra_columns)

    def convert(self, jets: Records) -> Converted:
        n, P = len(jets), self.max_length
        counts, cands = jets.lists(self.candidates)
        ctx = CandidateContext(cands, jets, counts, self.p4)
        offsets = np.cumsum(counts) - counts
        local = np.arange(len(ctx.jet_of)) - np.repeat(offsets, counts)
        if self.sort_by is not None:
            order = np.lexsort((-ctx.feature(self.sort_by), ctx.jet_of))
            ctx = CandidateContext(cands.take(order), jets, counts, self.p4)
        keep = local < P
        slot = ctx.jet_of[keep] * P + local[keep]          # position in an (N, P) grid
        filled = np.zeros(n * P, dtype=bool)
        filled[slot] = True
        arrays, valid = {}, {}
        feats_by_input = [(g, feats) for g, feats in self.groups]
        if self.vectors:
            feats_by_input.append((self.vectors, VECTOR_FEATURES))
        for name, feats in feats_by_input:
            c = len(feats)
            x = np.zeros((n, c, P), dtype=np.float32)
            ok = np.zeros((n, c, P), dtype=bool)
            xf, okf = x.reshape(-1), ok.reshape(-1)
            base = (slot // P) * (c * P) + slot % P
            for k, f in enumerate(feats):
                v = np.asarray(ctx.feature(f), dtype=np.float32)[keep]
                fin = np.isfinite(v)
                xf[base + k * P] = np.where(fin, v, 0.0)
                okf[base + k * P] = fin
            arrays[name], valid[name] = x, ok
        m = filled.reshape(n, 1, P)
        arrays[self.mask], valid[self.mask] = m.astype(np.float32), np.ones_like(m)
        return Converted(self.specs, arrays, valid, n)


# ----------------------------------------------------------------------------- built-ins

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

DEEPJET = SlotLayout("deepjet", (
    SlotInput(InputSpec("glob", DEEPJET_GLOBALS, integer=DEEPJET_GLOBAL_INT)),
    SlotInput(InputSpec("cpf", CPF_FEATURES, 25, integer=("VTX_ass", "quality")),
              "DeepJet_Cpfcan_{feature}_{slot}", "DeepJet_nCpfcand"),
    SlotInput(InputSpec("npf", NPF_FEATURES, 25, integer=("isGamma",)),
              "DeepJet_Npfcan_{feature}_{slot}", "DeepJet_nNpfcand"),
    SlotInput(InputSpec("sv", SV_FEATURES, 4, integer=("ntracks",)), "DeepJet_sv_{feature}_{slot}",
              "DeepJet_nsv"),
))

_CSV_TRACK = ("trackDecayLenVal", "trackDeltaR", "trackJetDistVal", "trackPtRatio", "trackPtRel",
              "trackSip2dSig", "trackSip3dSig")
DEEPCSV_FEATURES = tuple(
    ["DeepCSV_flightDistance2dSig", "DeepCSV_flightDistance2dVal", "DeepCSV_flightDistance3dSig",
     "DeepCSV_flightDistance3dVal"]
    + [f"DeepCSV_{t}_{i}" for t in _CSV_TRACK for i in range(6)]
    + [f"DeepCSV_trackEtaRel_{i}" for i in range(4)]
    + ["DeepCSV_trackJetPt", "DeepCSV_trackSip2dSigAboveCharm", "DeepCSV_trackSip2dValAboveCharm",
       "DeepCSV_trackSip3dSigAboveCharm", "DeepCSV_trackSip3dValAboveCharm", "DeepCSV_trackSumJetDeltaR",
       "DeepCSV_trackSumJetEtRatio", "DeepCSV_vertexCategory", "DeepCSV_vertexEnergyRatio",
       "DeepCSV_vertexJetDeltaR", "DeepCSV_vertexMass", "DeepCSV_jetNSecondaryVertices",
       "DeepCSV_jetNSelectedTracks", "DeepCSV_jetNTracksEtaRel", "DeepCSV_vertexNTracks"])
DEEPCSV = SlotLayout("deepcsv", (SlotInput(InputSpec(
    "x", DEEPCSV_FEATURES, integer=("DeepCSV_vertexCategory", "DeepCSV_jetNSecondaryVertices",
                                    "DeepCSV_jetNSelectedTracks", "DeepCSV_jetNTracksEtaRel",
                                    "DeepCSV_vertexNTracks"))),))

PART_FEATURES = ("log_pt", "log_e", "log_ptrel", "log_erel", "deta", "dphi", "dr", "charge", "is_electron",
                 "is_muon", "is_photon", "is_ch_hadron", "is_ne_hadron", "d0", "d0_sig", "dz", "dz_sig",
                 "puppi", "lost_inner_hits", "pv_assoc", "btagSip3dSig")
PART = JaggedLayout("part", jets="Jet", candidates="pfcands", groups=(("features", PART_FEATURES),),
                    max_length=50, sort_by="pt", vectors="vectors")

LAYOUTS: dict = {"deepjet": DEEPJET, "deepcsv": DEEPCSV, "part": PART}


def get_layout(layout) -> Layout:
    """A :class:`Layout` from a built-in name or a layout object (returned as is)."""
    if isinstance(layout, Layout):
        return layout
    try:
        return LAYOUTS[layout]
    except KeyError:
        raise KeyError(f"unknown layout {layout!r}; built-in: {sorted(LAYOUTS)} "
                       "(pass a Layout object for a user-defined one)") from None
