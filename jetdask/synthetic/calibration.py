"""Jet calibration, pile-up profile and theory weights of the synthetic world (the truth that the
synthetic correction files of :mod:`jetdask.synthetic.pog` encode).

* **JEC**: the stored ``Jet_pt`` is calibrated; the raw pT (``Jet_rawFactor``) is what the
  L1 (pile-up offset ``area x rho x K1``) and L2 (``a(eta) + B / pT``, binned in eta)
  corrections turn back into it: ``pT = a(eta) * pT1 + B`` with ``pT1 = raw - area rho K1``.
  L3Absolute and L2L3Residual are 1. Data and MC use the same calibration.
* **JER**: relative resolution ``sigma(pT) = 0.05 + 0.9 / sqrt(pT)`` (the GenJet matching of
  :func:`jetdask.synthetic.jets.gen_jets`); data-like jets are smeared on top by
  ``sqrt(SF^2 - 1) sigma``, with the true scale factor ``SF(|eta|) = 1 + mismodel x JER_SF_SHIFT``.
* **JES uncertainties** (relative, symmetric): regrouped sources and their quadrature sum
  (plus :data:`JES_OTHER`) as Total.
* **pile-up**: true interactions ~ Gamma(10, 3.2 x scale), data scale ``1 + 0.05 mismodel``
  (as :mod:`jetdask.synthetic.conditions`); the up/down profiles shift the data scale by
  +-4.6 % (the minimum-bias cross-section uncertainty).
* **theory weights** (MC): ``LHEScaleWeight`` (9, NanoAOD order ``(muR, muF)`` =
  (0.5,0.5) (0.5,1) (0.5,2) (1,0.5) (1,1) (1,2) (2,0.5) (2,1) (2,2)) and ``PSWeight`` (4:
  ISR 2, FSR 2, ISR 0.5, FSR 0.5) depend on the Z pT and the number of hadronic jets.
"""
from __future__ import annotations

import numpy as np

# --- JEC
L1_K = 0.85                      # GeV of offset per unit area and unit rho
L2_B = 3.0                       # GeV
L2_ETA_EDGES = np.round(np.linspace(-5.2, 5.2, 27), 6)   # 26 bins of 0.4


def l2_slope(eta) -> np.ndarray:
    """``a(eta)``, constant inside each bin of :data:`L2_ETA_EDGES` (value at the bin centre)."""
    centres = 0.5 * (L2_ETA_EDGES[1:] + L2_ETA_EDGES[:-1])
    i = np.clip(np.searchsorted(L2_ETA_EDGES, np.asarray(eta, dtype=np.float64), side="right") - 1,
                0, len(centres) - 1)
    return 1.10 + 0.04 * np.abs(centres[i])


def jec_factor(raw_pt, eta, area, rho) -> np.ndarray:
    """The full L1L2L3Res factor at raw pT (independent formula of the compound correction)."""
    raw_pt = np.asarray(raw_pt, dtype=np.float64)
    c1 = np.maximum(0.0001, 1.0 - np.asarray(area) * np.asarray(rho) * L1_K / raw_pt)
    pt1 = raw_pt * c1
    c2 = l2_slope(eta) + L2_B / pt1
    return c1 * c2


def raw_factor(pt, eta, area, rho) -> np.ndarray:
    """``Jet_rawFactor`` (``1 - raw/pT``) of calibrated jets (pT > 15 GeV)."""
    pt = np.asarray(pt, dtype=np.float64)
    pt1 = (pt - L2_B) / l2_slope(eta)
    raw = pt1 + np.asarray(area) * np.asarray(rho) * L1_K
    return 1.0 - raw / pt


# --- JER
JER_ABSETA_EDGES = np.array([0.0, 0.8, 1.6, 2.5, 5.2])
JER_SF_SHIFT = np.array([0.08, 0.10, 0.12, 0.15])        # true SF - 1 at mismodel 1
JER_SF_UNC = np.array([0.03, 0.035, 0.045, 0.06])


def resolution(pt) -> np.ndarray:
    """Relative jet pT resolution."""
    return 0.05 + 0.9 / np.sqrt(np.asarray(pt, dtype=np.float64))


def jer_bin(eta) -> np.ndarray:
    return np.clip(np.searchsorted(JER_ABSETA_EDGES, np.abs(np.asarray(eta, dtype=np.float64)), side="right") - 1,
                   0, len(JER_SF_SHIFT) - 1)


def jer_sf(eta, mismodel: float) -> np.ndarray:
    """True JER scale factor (data resolution / MC resolution)."""
    return 1.0 + float(mismodel) * JER_SF_SHIFT[jer_bin(eta)]


def data_smear(rng, pt, eta, mismodel: float) -> np.ndarray:
    """Multiplicative smearing of data-like jets: ``max(0, 1 + sqrt(SF^2 - 1) sigma N(0,1))``."""
    n = len(pt)
    z = rng.standard_normal(n)
    sf = jer_sf(eta, mismodel)
    return np.maximum(0.0, 1.0 + np.sqrt(np.maximum(sf * sf - 1.0, 0.0)) * resolution(pt) * z)


# --- JES uncertainties (relative)
JES_SOURCES = ("Absolute", "FlavorQCD", "RelativeBal", "BBEC1")
JES_OTHER = 0.004
JES_PT_EDGES = np.array([10, 15, 20, 25, 30, 40, 50, 60, 80, 100, 130, 170, 220, 300, 400, 600, 1000, 2000, 7000.0])
JES_ETA_EDGES = np.round(np.linspace(-5.2, 5.2, 27), 6)


def jes_source(name: str, eta, pt) -> np.ndarray:
    """Relative uncertainty of one regrouped source at (eta, pT)."""
    eta = np.abs(np.asarray(eta, dtype=np.float64))
    pt = np.asarray(pt, dtype=np.float64)
    if name == "Absolute":
        return 0.006 + 0.15 / pt + 0.0 * eta
    if name == "FlavorQCD":
        return 0.004 + 0.25 / pt + 0.001 * eta
    if name == "RelativeBal":
        return 0.002 + 0.004 * eta + 0.0 * pt
    if name == "BBEC1":
        return np.where(eta < 1.3, 0.002, 0.006) + 0.05 / pt
    raise KeyError(name)


def jes_total(eta, pt) -> np.ndarray:
    return np.sqrt(sum(jes_source(s, eta, pt) ** 2 for s in JES_SOURCES) + JES_OTHER ** 2)


# --- pile-up
PU_SHAPE, PU_SCALE = 10.0, 3.2
PU_MINBIAS_UNC = 0.046
PU_EDGES = np.arange(0.0, 101.0)


def pileup_profile(scale: float) -> np.ndarray:
    """Probability of each :data:`PU_EDGES` bin for Gamma(10, 3.2 x scale) (last bin + overflow)."""
    from scipy.stats import gamma
    cdf = gamma.cdf(PU_EDGES, PU_SHAPE, scale=PU_SCALE * scale)
    p = np.diff(cdf)
    p[-1] += 1.0 - cdf[-1]
    return p


def pileup_weights(mismodel: float) -> dict:
    """``{"nominal"|"up"|"down": weights per PU_EDGES bin}`` = data profile / MC profile."""
    data_scale = 1.0 + 0.05 * float(mismodel)
    mc = pileup_profile(1.0)
    out = {}
    for name, k in (("nominal", 1.0), ("up", 1.0 + PU_MINBIAS_UNC), ("down", 1.0 - PU_MINBIAS_UNC)):
        d = pileup_profile(data_scale * k)
        out[name] = np.where(mc > 1e-12, d / np.maximum(mc, 1e-12), 1.0)
    return out


# --- theory weights
SCALE_POINTS = ((0.5, 0.5), (0.5, 1.0), (0.5, 2.0), (1.0, 0.5), (1.0, 1.0), (1.0, 2.0), (2.0, 0.5), (2.0, 1.0),
                (2.0, 2.0))
PS_POINTS = (("isr", 2.0), ("fsr", 2.0), ("isr", 0.5), ("fsr", 0.5))


def theory_weights(rng, z_pt, n_jets) -> tuple[np.ndarray, np.ndarray]:
    """``(LHEScaleWeight (n, 9), PSWeight (n, 4))`` per event from the Z pT and hadronic jet count."""
    z_pt = np.asarray(z_pt, dtype=np.float64)
    nj = np.asarray(n_jets, dtype=np.float64)
    n = len(z_pt)
    hard = np.log1p(z_pt / 20.0)
    scale = np.empty((n, len(SCALE_POINTS)))
    for k, (mur, muf) in enumerate(SCALE_POINTS):
        lr, lf = np.log2(mur), np.log2(muf)
        scale[:, k] = (1.0 + lr * (-0.03 - 0.02 * nj) + lf * (0.015 - 0.01 * hard)
                       + (abs(lr) + abs(lf)) * 0.004 * rng.standard_normal(n))
    ps = np.empty((n, len(PS_POINTS)))
    for k, (kind, mu) in enumerate(PS_POINTS):
        sign = 1.0 if mu > 1 else -1.0
        size = 1.0 if mu > 1 else 0.6
        if kind == "isr":
            shift = sign * size * (0.06 * np.tanh(z_pt / 40.0 - 0.8))
        else:
            shift = sign * size * (0.025 * (nj - 2.0))
        ps[:, k] = 1.0 + shift + 0.005 * rng.standard_normal(n)
    return np.clip(scale, 0.5, 1.5), np.clip(ps, 0.5, 1.5)
