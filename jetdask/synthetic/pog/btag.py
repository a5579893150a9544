"""``btagging.json.gz``: DeepJet shape and fixed-working-point SFs, as the official BTV files.

* ``deepJet_shape`` ``(systematic, flavor, abseta, pt, discriminant)``: central = the injected
  truth (:mod:`jetdask.synthetic.truth`); variations ``up_``/``down_`` x :data:`BL_SYSTS` for b
  (5) and light (0) jets only, :data:`C_SYSTS` for c (4) jets only (as in the official files, a
  variation evaluated for a flavour that lacks it raises), each a relative shift of the central.
* ``deepJet_comb`` (b, c) and ``deepJet_incl`` (light) ``(systematic, working_point, flavor,
  abseta, pt)`` with ``central, up, down, up_correlated, down_correlated, up_uncorrelated,
  down_uncorrelated``; the light SF is the truth ``s`` for L, M and T.
* ``deepJet_wp_values`` ``(working_point)``: :data:`jetdask.synthetic.truth.WP_VALUES`.
"""
from __future__ import annotations

import numpy as np
from correctionlib import schemav2 as cs

from .. import truth
from ..calibration import JES_SOURCES
from .common import category, integer, multibinning, real, string

DISC_EDGES = np.array([0.0, 0.05, 0.1, 0.2, 0.3, 0.45, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0])
BL_SYSTS = ("hf", "lf", "hfstats1", "hfstats2", "lfstats1", "lfstats2", "jes") + tuple(f"jes{s}" for s in JES_SOURCES)
C_SYSTS = ("cferr1", "cferr2")
WP_SYSTS = ("central", "up", "down", "up_correlated", "down_correlated", "up_uncorrelated", "down_uncorrelated")
_JES_SHARE = {"jes": 1.0, **{f"jes{s}": w for s, w in zip(JES_SOURCES, (0.6, 0.5, 0.4, 0.3))}}


def _grid():
    """(abseta, pt, discriminant) bin centres as broadcastable arrays, pT at its lower edge bin."""
    eta = 0.5 * (truth.ABSETA_EDGES[1:] + truth.ABSETA_EDGES[:-1])
    pt = 0.5 * (truth.PT_EDGES[1:] + truth.PT_EDGES[:-1])
    d = 0.5 * (DISC_EDGES[1:] + DISC_EDGES[:-1])
    return eta[:, None, None], pt[None, :, None], d[None, None, :]


def relative_shift(flavour: int, syst: str, pt, d) -> np.ndarray:
    """Relative size of a shape-SF variation (up = central x (1 + shift), down = x (1 - shift))."""
    lpt = np.log(pt / 20.0) / np.log(50.0)
    if flavour == 4:
        return {"cferr1": 0.06 + 0.10 * d, "cferr2": 0.04 * (1.0 - 2.0 * d)}[syst] + 0.0 * lpt
    heavy = flavour == 5
    table = {
        "hf": (0.01 + 0.04 * (1.0 - d)) if heavy else (0.005 + 0.03 * d),
        "lf": (0.01 + 0.03 * (1.0 - d) ** 2) if heavy else (0.01 + 0.04 * d),
        "hfstats1": 0.02 * (2.0 * d - 1.0) if heavy else 0.004 + 0.0 * d,
        "hfstats2": 0.015 * (1.0 - np.abs(2.0 * d - 1.0)) if heavy else 0.003 + 0.0 * d,
        "lfstats1": 0.005 + 0.0 * d if heavy else 0.03 * (2.0 * d - 1.0),
        "lfstats2": 0.004 + 0.0 * d if heavy else 0.02 * (1.0 - np.abs(2.0 * d - 1.0)),
    }
    if syst in table:
        return table[syst] * (1.0 + 0.5 * lpt)
    return _JES_SHARE[syst] * (0.01 + 0.01 * lpt) * (1.0 - d if heavy else d + 0.2)


def central(flavour: int, strength: float) -> np.ndarray:
    """Central shape SF on the (abseta, pt, discriminant) grid: the injected truth."""
    eta, pt, d = _grid()
    eta, pt, d = np.broadcast_arrays(eta, pt, d)
    return truth.injected_sf(np.full(eta.shape, flavour if flavour in (4, 5) else 0), pt, eta, d, strength)


def shape_correction(strength: float) -> cs.Correction:
    edges = [truth.ABSETA_EDGES, truth.PT_EDGES, DISC_EDGES]
    inputs = ["abseta", "pt", "discriminant"]
    _, pt, d = _grid()
    by_syst: dict[str, dict] = {"central": {}}
    for fl in (5, 4, 0):
        by_syst["central"][fl] = multibinning(inputs, edges, central(fl, strength).ravel())
    for fl, systs in ((5, BL_SYSTS), (0, BL_SYSTS), (4, C_SYSTS)):
        c = central(fl, strength)
        for syst in systs:
            shift = np.broadcast_to(relative_shift(fl, syst, pt, d), c.shape)
            for side, sign in (("up", 1.0), ("down", -1.0)):
                shifted = (c * (1 + sign * shift)).ravel()
                by_syst.setdefault(f"{side}_{syst}", {})[fl] = multibinning(inputs, edges, shifted)
    return cs.Correction(
        name="deepJet_shape", version=1,
        description="DeepJet reshaping SF (synthetic: the SF that undoes the generator's injected mismodelling)",
        inputs=[string("systematic"), integer("flavor", "hadron flavour 0, 4, 5"), real("abseta"), real("pt"),
                real("discriminant", "btagDeepFlavB")],
        output=real("weight"),
        data=category("systematic", {s: category("flavor", {int(f): v for f, v in fl.items()})
                                     for s, fl in by_syst.items()}))


def _wp_values(flavour: int, strength: float) -> tuple[np.ndarray, np.ndarray]:
    """(central, total relative uncertainty) on the (abseta, pt) grid."""
    eta = 0.5 * (truth.ABSETA_EDGES[1:] + truth.ABSETA_EDGES[:-1])[:, None]
    pt = 0.5 * (truth.PT_EDGES[1:] + truth.PT_EDGES[:-1])[None, :]
    eta, pt = np.broadcast_arrays(eta, pt)
    ipt = np.arange(len(truth.PT_EDGES) - 1)[None, :] + 0 * eta
    if flavour == 0:
        return truth.light_sf_above(pt, eta, strength), 0.05 + 0.01 * ipt + 0.02 * eta
    unc = (0.02 + 0.004 * ipt) * (1.5 if flavour == 4 else 1.0)
    return np.ones_like(pt), unc


def wp_correction(name: str, flavours: tuple, strength: float) -> cs.Correction:
    edges = [truth.ABSETA_EDGES, truth.PT_EDGES]
    inputs = ["abseta", "pt"]
    split = {"": 1.0, "_correlated": 0.8, "_uncorrelated": 0.6}
    out = {}
    for syst in WP_SYSTS:
        per_wp = {}
        for wp in truth.WP_VALUES:
            per_fl = {}
            for fl in flavours:
                c, unc = _wp_values(fl, strength)
                if syst == "central":
                    v = c
                else:
                    side, _, part = syst.partition("_")
                    v = c * (1.0 + (1.0 if side == "up" else -1.0) * split["_" + part if part else ""] * unc)
                per_fl[int(fl)] = multibinning(inputs, edges, v.ravel())
            per_wp[wp] = category("flavor", per_fl)
        out[syst] = category("working_point", per_wp)
    what = "light-flavour (inclusive)" if flavours == (0,) else "b and c (combination)"
    return cs.Correction(
        name=name, version=1, description=f"DeepJet fixed-working-point SF, {what} (synthetic truth)",
        inputs=[string("systematic"), string("working_point"), integer("flavor"), real("abseta"), real("pt")],
        output=real("weight"), data=category("systematic", out))


def wp_values_correction() -> cs.Correction:
    return cs.Correction(
        name="deepJet_wp_values", version=1, description="btagDeepFlavB cut of each working point",
        inputs=[string("working_point")], output=real("wp"),
        data=category("working_point", {k: float(v) for k, v in truth.WP_VALUES.items()}))


def build(strength: float) -> cs.CorrectionSet:
    return cs.CorrectionSet(schema_version=2, description="synthetic BTV-format b-tagging SFs (jetdask)",
                            corrections=[shape_correction(strength), wp_correction("deepJet_comb", (5, 4), strength),
                                         wp_correction("deepJet_incl", (0,), strength), wp_values_correction()])
