"""``puWeights.json.gz``: one correction ``(NumTrueInteractions, weights)`` as the LUM POG file."""
from __future__ import annotations

from correctionlib import schemav2 as cs

from .. import calibration
from .common import category, real, string

NAME = "Collisions18_UltraLegacy_goldenJSON"


def build(mismodel: float) -> cs.CorrectionSet:
    w = calibration.pileup_weights(mismodel)
    edges = [float(e) for e in calibration.PU_EDGES]
    data = category("weights", {k: cs.Binning(nodetype="binning", input="NumTrueInteractions", edges=edges,
                                              content=[float(x) for x in v], flow="clamp")
                                for k, v in w.items()})
    corr = cs.Correction(name=NAME, version=1,
                         description="pile-up weight: data / MC true-interaction profile (synthetic)",
                         inputs=[real("NumTrueInteractions"), string("weights", "nominal, up or down")],
                         output=real("weight"), data=data)
    return cs.CorrectionSet(schema_version=2, description="synthetic LUM-format pile-up weights (jetdask)",
                            corrections=[corr])
