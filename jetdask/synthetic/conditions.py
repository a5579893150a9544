"""Detector/sample conditions: what makes data-like files differ from MC-like ones.

A :class:`Conditions` is built from the file kind and the mismodelling
strength ``X = mismodel >= 0``. MC-like files always use the nominal values;
data-like files change, physically motivated:

* **track impact-parameter resolution**: the smearing is ``1 + 0.3 X`` times
  the MC one while the quoted error is unchanged, so ``Sip2d/3d`` values and
  significances (and PFCands ``d0``/``dz``) are wider;
* **SV flight-distance resolution**: likewise ``1 + 0.3 X`` (SV ``dxy``/``d3d``
  and their significances);
* **SV reconstruction efficiency**: ``1 - 0.15 X`` times MC (fewer ``JetSVs``,
  smaller ``nsv``, more jets in the DeepCSV "no vertex" category);
* **charm-jet fraction**: ``1 + 0.25 X`` times MC, taken from the light jets;
* **pile-up**: mean number of interactions ``1 + 0.05 X`` times MC (more
  vertices, larger rho and isolation sums).

Official tagger scores are computed from the (distorted) inputs in the same
way for both kinds, so a data/MC difference in the inputs propagates to the
scores consistently. With ``X = 0`` data-like and MC-like files are drawn from
identical distributions (they differ only in event ids, random numbers and the
absence of generator/truth branches in data).
"""
from __future__ import annotations

from dataclasses import dataclass

KINDS = ("mc", "data")


@dataclass(frozen=True)
class Conditions:
    """Per-file generation settings derived from ``kind`` and ``mismodel``."""

    is_data: bool
    mismodel: float = 0.0
    ip_smear: float = 1.0
    sv_smear: float = 1.0
    sv_efficiency: float = 1.0
    charm_fraction: float = 1.0
    pileup: float = 1.0

    @classmethod
    def for_kind(cls, kind: str, mismodel: float = 0.0) -> Conditions:
        """Conditions of an ``"mc"`` or ``"data"`` file at strength ``mismodel``."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        x = float(mismodel)
        if not x >= 0.0:
            raise ValueError(f"mismodel must be >= 0, got {mismodel!r}")
        if kind == "mc":
            return cls(is_data=False, mismodel=x)
        return cls(
            is_data=True,
            mismodel=x,
            ip_smear=1.0 + 0.3 * x,
            sv_smear=1.0 + 0.3 * x,
            sv_efficiency=max(0.0, 1.0 - 0.15 * x),
            charm_fraction=1.0 + 0.25 * x,
            pileup=1.0 + 0.05 * x,
        )
