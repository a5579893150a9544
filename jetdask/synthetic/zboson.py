"""Drell-Yan Z/gamma* -> l+ l- at generator level.

Per event:

* decay channel: Z -> mu mu or Z -> e e with equal probability;
* mass: 88 % Breit-Wigner (M = 91.1876, Gamma = 2.4952 GeV) truncated to
  [60, 120] GeV, 12 % photon-like continuum dN/dm ~ 1/m^2 on [50, 200] GeV
  (the sample is "M-50");
* transverse momentum: 75 % soft Gamma(1.6, 5.5 GeV) core plus a 25 % harder
  5 GeV + Exp(22 GeV) tail (mean about 13 GeV), azimuth uniform;
* rapidity: Gaussian of width 1.9 truncated to |y| < 4.5;
* decay angle: 1 + cos^2(theta*) in the rest frame (sampled exactly by
  inverting the cubic CDF), phi* uniform; both leptons are then boosted to the
  lab frame with the Z velocity.

Everything is vectorised over events; the result is a dict of per-event arrays.
"""
from __future__ import annotations

import numpy as np

from .kinematics import boost, from_cartesian

Z_MASS = 91.1876
Z_WIDTH = 2.4952
MUON_MASS = 0.1056584
ELECTRON_MASS = 0.000511


def _breit_wigner(rng, n, lo, hi):
    """Cauchy (non-relativistic BW) truncated to [lo, hi] by inverse CDF."""
    half = Z_WIDTH / 2.0
    a = np.arctan((lo - Z_MASS) / half)
    b = np.arctan((hi - Z_MASS) / half)
    return Z_MASS + half * np.tan(rng.uniform(a, b, n))


def _continuum(rng, n, lo=50.0, hi=200.0):
    """dN/dm ~ 1/m^2 on [lo, hi]."""
    u = rng.random(n)
    return 1.0 / (1.0 / lo - u * (1.0 / lo - 1.0 / hi))


def _cos_theta_star(rng, n):
    """Sample c in [-1, 1] with density (1 + c^2): root of c^3 + 3c = 8u - 4."""
    q = 8.0 * rng.random(n) - 4.0
    s = np.sqrt(q * q / 4.0 + 1.0)
    return np.cbrt(q / 2.0 + s) + np.cbrt(q / 2.0 - s)


def dilepton_mass(rng, n):
    """Z/gamma* mass per event (GeV)."""
    m = _breit_wigner(rng, n, 60.0, 120.0)
    cont = rng.random(n) < 0.12
    m[cont] = _continuum(rng, int(cont.sum()))
    return m


def z_transverse_momentum(rng, n):
    """Z pT per event (GeV): soft core plus a harder tail."""
    pt = rng.gamma(1.6, 5.5, n)
    tail = rng.random(n) < 0.25
    pt[tail] = 5.0 + rng.exponential(22.0, int(tail.sum()))
    return pt


def z_rapidity(rng, n):
    """Z rapidity per event."""
    y = rng.normal(0.0, 1.9, n)
    bad = np.abs(y) > 4.5
    y[bad] = rng.uniform(-4.5, 4.5, int(bad.sum()))
    return y


def generate(rng, n: int) -> dict:
    """Generator-level Z bosons and their two leptons for ``n`` events.

    Returns a dict with per-event arrays: ``flavour`` (11 or 13), ``mass``,
    ``pt``, ``y``, ``phi`` of the boson, and for the two leptons ``l{1,2}_pt``,
    ``l{1,2}_eta``, ``l{1,2}_phi``, ``l{1,2}_charge``.
    """
    flavour = np.where(rng.random(n) < 0.5, 13, 11)
    lep_mass = np.where(flavour == 13, MUON_MASS, ELECTRON_MASS)
    mass = dilepton_mass(rng, n)
    pt = z_transverse_momentum(rng, n)
    y = z_rapidity(rng, n)
    phi = rng.uniform(-np.pi, np.pi, n)

    mt = np.sqrt(mass * mass + pt * pt)
    e_z = mt * np.cosh(y)
    bx = pt * np.cos(phi) / e_z
    by = pt * np.sin(phi) / e_z
    bz = mt * np.sinh(y) / e_z

    cos_t = _cos_theta_star(rng, n)
    sin_t = np.sqrt(np.clip(1.0 - cos_t * cos_t, 0.0, None))
    phi_s = rng.uniform(-np.pi, np.pi, n)
    p_star = np.sqrt(np.clip(mass * mass / 4.0 - lep_mass * lep_mass, 0.0, None))
    px = p_star * sin_t * np.cos(phi_s)
    py = p_star * sin_t * np.sin(phi_s)
    pz = p_star * cos_t
    e = mass / 2.0

    out = {"flavour": flavour, "mass": mass, "pt": pt, "y": y, "phi": phi}
    charge1 = np.where(rng.random(n) < 0.5, 1, -1)
    for i, sign in ((1, 1.0), (2, -1.0)):
        lx, ly, lz, le = boost(sign * px, sign * py, sign * pz, e, bx, by, bz)
        lpt, leta, lphi, _ = from_cartesian(lx, ly, lz, le)
        out[f"l{i}_pt"] = lpt
        out[f"l{i}_eta"] = leta
        out[f"l{i}_phi"] = lphi
        out[f"l{i}_charge"] = charge1 if i == 1 else -charge1
    return out
