"""Jagged layouts: padded ``(N, C, P)`` inputs from a per-jet candidate list.

:class:`JaggedLayout` takes any jet collection, its candidate-list field, named groups of
features and a maximum length, and gives ``(N, C, P)`` per group plus ``mask (N,1,P)`` (and
optionally the four-vectors), e.g. ParticleNet on AK8 jets::

    JaggedLayout("pn_ak8", jets="FatJet", groups={"points": ["deta", "dphi"],
                 "features": ["log_pt", "log_e", "deta", "dphi", "charge"]}, max_length=50)

A feature is a built-in derived name (:data:`DERIVED`), a field of the candidate
(``"btagSip3dSig"``), of its linked record (``"pfcand.dz"``; a bare name not on the
candidate is looked up on ``p4``), or a picklable ``fn(ctx) -> flat array`` (see
:class:`CandidateContext`). Padding uses a numpy scatter on flat offsets: no loop over jets.
Missing entries: padding slots and non-finite values of a real candidate.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Mapping

import numpy as np

from .access import Records
from .specs import Converted, InputSpec, Layout


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
        from ...nanoaod.events import GROUP_LINKS
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

    def missing(self) -> list:
        return [f"padding beyond the candidates (at most {self.max_length}), non-finite values"]
