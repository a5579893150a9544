"""The light-jet SF of one selection, with its statistical uncertainty: pure numpy.

Per bin the inputs are weighted sums (values and variances) of six independent pieces:
data tagged/untagged (``dt``, ``du``), MC non-light tagged/untagged (``nt``, ``nu``), MC light
tagged/untagged (``lt``, ``lu``). "Tagged" is whatever subset is measured: above a working-
point cut, or one discriminant bin for the shape SF ("untagged" is then the rest).

* ``norm="pretag"``: MC is first scaled to the data yield of the bin,
  ``k = (dt + du) / (nt + nu + lt + lu)``, so the SF is a ratio of efficiencies:
  ``SF = (dt - k nt) / (k lt)``;
* ``norm="lumi"``: MC as normalised by cross section and luminosity: ``SF = (dt - nt) / lt``.

The statistical uncertainty is linear propagation with the analytic gradient, split into the
data part and the MC part. A bin whose data has no entry in the measured subset uses the
variance of one entry there (a zero count is not a zero uncertainty).
"""
from __future__ import annotations

import dataclasses

import numpy as np

NORMS = ("pretag", "lumi")
PIECES = ("dt", "du", "nt", "nu", "lt", "lu")


@dataclasses.dataclass
class Pieces:
    """Values and variances of the six pieces (arrays of one shape)."""
    values: dict     # piece -> array
    variances: dict  # piece -> array

    def __post_init__(self):
        missing = [p for p in PIECES if p not in self.values or p not in self.variances]
        if missing:
            raise ValueError(f"missing pieces {missing}")


@dataclasses.dataclass
class Ratio:
    sf: np.ndarray          # NaN where undefined
    stat_data: np.ndarray
    stat_mc: np.ndarray
    defined: np.ndarray     # bool
    no_data: np.ndarray     # bool: no data entry in the bin at all
    no_light: np.ndarray    # bool: no MC light jet in the measured subset
    expected_light: np.ndarray  # MC light jets in the measured subset, as normalised (k lt)


def scale_factor(values: dict, norm: str = "pretag") -> np.ndarray:
    """The SF alone (no uncertainty); NaN where undefined."""
    return _sf(values, norm)[0]


def _sf(v: dict, norm: str):
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    dt, du, nt, nu, lt, lu = (np.asarray(v[p], dtype=float) for p in PIECES)
    with np.errstate(divide="ignore", invalid="ignore"):
        if norm == "pretag":
            d, m = dt + du, nt + nu + lt + lu
            k = d / m
        else:
            d, m = dt + du, None
            k = np.ones_like(dt)
        sf = (dt - k * nt) / (k * lt)
    defined = np.isfinite(sf) & (lt > 0) & ((dt + du) > 0)
    return np.where(defined, sf, np.nan), defined, k, d, m


def ratio(p: Pieces, norm: str = "pretag") -> Ratio:
    """SF, its data and MC statistical uncertainties and the reasons a bin is undefined."""
    v = {k: np.asarray(x, dtype=float) for k, x in p.values.items()}
    var = {k: np.asarray(x, dtype=float).copy() for k, x in p.variances.items()}
    var["dt"] = np.where(v["dt"] == 0, np.maximum(var["dt"], 1.0), var["dt"])
    sf, defined, k, d, m = _sf(v, norm)
    dt, lt = v["dt"], v["lt"]
    with np.errstate(divide="ignore", invalid="ignore"):
        if norm == "pretag":
            du = v["du"]
            grad = {"dt": m * du / (d * d * lt), "du": -dt * m / (d * d * lt),
                    "nt": dt / (d * lt) - 1.0 / lt, "nu": dt / (d * lt),
                    "lt": dt / (d * lt) - sf / lt, "lu": dt / (d * lt)}
        else:
            zero = np.zeros_like(dt)
            grad = {"dt": 1.0 / lt, "du": zero, "nt": -1.0 / lt, "nu": zero, "lt": -sf / lt, "lu": zero}
        stat_data = np.sqrt(sum(grad[p] ** 2 * var[p] for p in ("dt", "du")))
        stat_mc = np.sqrt(sum(grad[p] ** 2 * var[p] for p in ("nt", "nu", "lt", "lu")))
    nan = np.full_like(dt, np.nan)
    with np.errstate(invalid="ignore"):
        expected = np.where(lt > 0, np.nan_to_num(k * lt, nan=0.0, posinf=0.0), 0.0)
    return Ratio(sf, np.where(defined, stat_data, nan), np.where(defined, stat_mc, nan), defined,
                 (v["dt"] + v["du"]) <= 0, lt <= 0, expected)


def split(values, variances, index: int):
    """``(tagged, untagged)`` value and variance sums of a with-flow discriminant axis (last
    axis: underflow, the bins, overflow) at edge ``index``: tagged = bins ``index..`` and the
    overflow; untagged = the underflow (undefined scores) and the bins below."""
    values, variances = np.asarray(values, float), np.asarray(variances, float)
    cut = index + 1
    return ((values[..., cut:].sum(-1), variances[..., cut:].sum(-1)),
            (values[..., :cut].sum(-1), variances[..., :cut].sum(-1)))


def one_bin(values, variances, index: int):
    """``(bin, rest)`` value and variance sums of visible bin ``index`` of a with-flow axis; the
    underflow goes with the first bin and the overflow with the last (as correctionlib's clamp)."""
    values, variances = np.asarray(values, float), np.asarray(variances, float)
    n = values.shape[-1] - 2
    lo = 0 if index == 0 else index + 1
    hi = n + 2 if index == n - 1 else index + 2
    vb, wb = values[..., lo:hi].sum(-1), variances[..., lo:hi].sum(-1)
    return (vb, wb), (values.sum(-1) - vb, variances.sum(-1) - wb)
