"""b-tag shape scale factors: per-jet SF with the official per-flavour availability, event product.

A shape-SF file defines each variation only for some flavours (``cferr*`` for c jets; ``hf``,
``lf``, ``*stats*`` and ``jes*`` for b and light jets); evaluating it for another flavour raises.
:class:`ShapeSF` learns the availability once per worker by probing the file, evaluates a
variation only on the jets of the flavours that define it, and gives every other jet its
central SF. In a JES-shifted pass the JES-matched ``up_jes<Source>`` / ``down_jes<Source>`` is
the central value (``up_jes``/``down_jes`` for the Total), evaluated at the shifted pT.
"""
from __future__ import annotations

import numpy as np

from .evaluate import CorrectionError, Evaluator, segment_prod
from .systematics import BTAG_SYST

FLAVOURS = (0, 4, 5)
_AVAILABLE: dict = {}


def shape_systematic(variation: str) -> str:
    """The shape-SF ``systematic`` to evaluate in a pass of ``variation`` (a syst-axis name)."""
    if variation == "nominal":
        return "central"
    side = "up" if variation.endswith("Up") else "down"
    base = variation[: -len("Up")] if side == "up" else variation[: -len("Down")]
    if base in BTAG_SYST:
        return f"{side}_{BTAG_SYST[base]}"
    if base == "jesTotal":
        return f"{side}_jes"
    if base.startswith("jes"):
        return f"{side}_{base}"
    return "central"


class ShapeSF:
    """The shape SF of a corrections config's ``btag`` block."""

    def __init__(self, cfg):
        block = cfg.blocks["btag"]
        self.ev = Evaluator(block["file"], block["shape"])
        self.discriminant = block.get("discriminant", "btagDeepFlavB")
        self._key = (block["file"].path, block["file"].sha256, block["shape"])

    def available(self, systematic: str) -> frozenset:
        """Flavours for which ``systematic`` is defined (probed once per process)."""
        key = self._key + (systematic,)
        if key not in _AVAILABLE:
            ok = []
            for f in FLAVOURS:
                try:
                    self.ev(None, systematic=systematic, flavor=np.array([f]), abseta=np.array([0.5]),
                            pt=np.array([50.0]), discriminant=np.array([0.5]))
                    ok.append(f)
                except CorrectionError:
                    pass
            _AVAILABLE[key] = frozenset(ok)
        return _AVAILABLE[key]

    def jet_sf(self, systematic: str, flavour, abseta, pt, disc, counters: dict | None = None) -> np.ndarray:
        """Per-jet SF: ``systematic`` where the jet's flavour defines it, central elsewhere."""
        flavour = np.asarray(flavour, dtype=np.int64)
        kw = {"abseta": np.asarray(abseta, dtype=np.float64), "pt": np.asarray(pt, dtype=np.float64),
              "discriminant": np.asarray(disc, dtype=np.float64)}
        out = self.ev(counters, systematic="central", flavor=flavour, **kw)
        if systematic == "central":
            return out
        avail = self.available(systematic)
        if not avail:
            raise CorrectionError(f"{self.ev.ref.path}: {self.ev.name!r} defines {systematic!r} for no flavour",
                                  self.ev.ref.path, self.ev.name)
        sel = np.isin(flavour, list(avail))
        if sel.any():
            out[sel] = self.ev(None, systematic=systematic, flavor=flavour[sel],
                               **{k: v[sel] for k, v in kw.items()})
        return out

    def event_sf(self, systematic: str, counts, flavour, abseta, pt, disc, counters=None) -> np.ndarray:
        """Product of the per-jet SFs of each event's jets (``counts`` jets per event)."""
        return segment_prod(self.jet_sf(systematic, flavour, abseta, pt, disc, counters), counts)
