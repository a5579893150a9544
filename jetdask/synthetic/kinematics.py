"""Small four-vector kernels on numpy arrays (hand-written, no event loop).

Conventions: momenta in GeV, angles in radians, ``phi`` in ``[-pi, pi)``.
These are the pieces the generator needs: conversions between (pt, eta, phi,
m) and Cartesian components, a Lorentz boost of many vectors by many
velocities, and azimuthal differences.
"""
from __future__ import annotations

import numpy as np


def wrap_phi(phi: np.ndarray) -> np.ndarray:
    """Map angles into ``[-pi, pi)``."""
    return (phi + np.pi) % (2.0 * np.pi) - np.pi


def delta_phi(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Signed ``a - b`` wrapped into ``[-pi, pi)``."""
    return wrap_phi(a - b)


def to_cartesian(pt, eta, phi, mass):
    """(px, py, pz, E) from (pt, eta, phi, m)."""
    px = pt * np.cos(phi)
    py = pt * np.sin(phi)
    pz = pt * np.sinh(eta)
    energy = np.sqrt(px * px + py * py + pz * pz + mass * mass)
    return px, py, pz, energy


def from_cartesian(px, py, pz, energy):
    """(pt, eta, phi, m) from (px, py, pz, E); m is clipped at 0."""
    pt = np.hypot(px, py)
    eta = np.arcsinh(np.divide(pz, pt, out=np.zeros_like(pz), where=pt > 0))
    phi = np.arctan2(py, px)
    m2 = energy * energy - (px * px + py * py + pz * pz)
    return pt, eta, phi, np.sqrt(np.clip(m2, 0.0, None))


def boost(px, py, pz, energy, bx, by, bz):
    """Lorentz-boost four-vectors by velocity (bx, by, bz) (|b| < 1).

    Used to take Z decay products from the Z rest frame to the lab.
    """
    b2 = bx * bx + by * by + bz * bz
    gamma = 1.0 / np.sqrt(1.0 - b2)
    bp = bx * px + by * py + bz * pz
    gamma2 = np.divide(gamma - 1.0, b2, out=np.zeros_like(b2), where=b2 > 0)
    k = gamma2 * bp + gamma * energy
    return px + k * bx, py + k * by, pz + k * bz, gamma * (energy + bp)
