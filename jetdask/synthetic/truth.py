"""The b-tagging mismodelling the generator injects, and the scale factor (SF) that undoes it.

Truth for scale-factor closure and pull tests: data = MC x SF, where SF is a product over
jets (the event weight of a b-tag *shape* SF). Only light jets (``hadronFlavour`` 0) are
mismodelled; b and c jets have SF 1. The light-jet SF is a step in the official shape-SF
discriminant ``Jet_btagDeepFlavB`` at the loose working point :data:`WP_VALUES` ``["L"]``:

* ``s(pT, |eta|) = 1 + strength * LIGHT_SHIFT[pT bin][|eta| bin]`` at and above the L cut;
* ``(1 - s f) / (1 - f)`` below it, with ``f`` = :data:`LIGHT_FRACTION_ABOVE_L` (the MC fraction
  of light jets at or above L in that bin), so that the SF keeps each bin's light-jet yield.

Both are constant inside each (pT, |eta|) bin of :data:`PT_EDGES` x :data:`ABSETA_EDGES`
(pT beyond the last edge uses the last bin); so the fixed-working-point light SF is exactly
``s`` for L, M and T (:func:`light_mistag_sf_wp`).

**How it is injected** (:func:`event_acceptance`): the generator rejects events. A jet is
*eligible* when it is not a lepton jet, pT > 20 GeV and |eta| < 2.5; ``M_j`` is the largest SF
of the jet's (pT, |eta|) bin (``s`` for light jets, 1 otherwise). A data-like event is kept with
probability ``prod_j SF_j / M_j``, an MC-like event with ``prod_j 1 / M_j``: both carry the same
kinematic factor ``prod 1/M_j``, and data = MC x ``prod SF_j`` event by event. The data
luminosity written in the fileset accounts for the MC acceptance (see
:func:`jetdask.synthetic.sample.generate_sample`), so MC normalised with ``xsec x lumi / sum w``
needs no further correction. ``strength`` 0 keeps every event (files as without injection).

``f`` was measured once on 200 000 MC-like events (seed 11, :func:`measure_light_fraction`);
it only fixes the SF below L, and the SF is defined by these constants whatever their accuracy.
"""
from __future__ import annotations

import numpy as np

#: fixed working points (cuts on btagDeepFlavB), also written as ``deepJet_wp_values``
WP_VALUES = {"L": 0.05, "M": 0.30, "T": 0.70}
PT_EDGES = np.array([20.0, 30.0, 50.0, 70.0, 100.0, 140.0, 200.0, 300.0, 1000.0])
ABSETA_EDGES = np.array([0.0, 0.8, 1.6, 2.5])
ELIGIBLE_PT, ELIGIBLE_ABSETA = 20.0, 2.5

#: light SF above L at strength 1, minus 1: [pT bin][|eta| bin]
LIGHT_SHIFT = np.array([[0.06 + 0.015 * i + 0.03 * j for j in range(3)] for i in range(8)])

#: MC fraction of eligible light jets with btagDeepFlavB >= L: [pT bin][|eta| bin]
LIGHT_FRACTION_ABOVE_L = np.array([
    [0.1014, 0.0968, 0.0913],
    [0.1131, 0.1079, 0.1072],
    [0.1247, 0.1253, 0.1159],
    [0.1301, 0.1382, 0.1271],
    [0.1578, 0.1365, 0.1407],
    [0.1338, 0.1499, 0.1501],
    [0.1950, 0.1835, 0.1594],
    [0.1803, 0.1712, 0.1777],
])


def bins(pt, abseta) -> tuple[np.ndarray, np.ndarray]:
    """(pT bin, |eta| bin) indices; values outside the edges go to the first/last bin."""
    pt = np.asarray(pt, dtype=np.float64)
    abseta = np.abs(np.asarray(abseta, dtype=np.float64))
    ipt = np.clip(np.searchsorted(PT_EDGES, pt, side="right") - 1, 0, len(PT_EDGES) - 2)
    ieta = np.clip(np.searchsorted(ABSETA_EDGES, abseta, side="right") - 1, 0, len(ABSETA_EDGES) - 2)
    return ipt, ieta


def light_sf_above(pt, abseta, strength: float) -> np.ndarray:
    """``s``: the light SF at and above the L cut."""
    ipt, ieta = bins(pt, abseta)
    return 1.0 + float(strength) * LIGHT_SHIFT[ipt, ieta]


def light_sf_below(pt, abseta, strength: float) -> np.ndarray:
    """The light SF below the L cut, ``(1 - s f) / (1 - f)``."""
    ipt, ieta = bins(pt, abseta)
    f = LIGHT_FRACTION_ABOVE_L[ipt, ieta]
    s = 1.0 + float(strength) * LIGHT_SHIFT[ipt, ieta]
    return (1.0 - s * f) / (1.0 - f)


def light_mistag_sf(pt, abseta, discriminant, strength: float) -> np.ndarray:
    """Per-jet light SF (data = MC x SF) at ``discriminant`` = btagDeepFlavB."""
    d = np.asarray(discriminant, dtype=np.float64)
    return np.where(d >= WP_VALUES["L"], light_sf_above(pt, abseta, strength),
                    light_sf_below(pt, abseta, strength))


def light_mistag_sf_wp(wp: str, pt, abseta, strength: float) -> np.ndarray:
    """The exact fixed-working-point light SF (efficiency ratio data/MC above the cut of ``wp``)."""
    if wp not in WP_VALUES:
        raise ValueError(f"working point must be one of {sorted(WP_VALUES)}, got {wp!r}")
    return light_sf_above(pt, abseta, strength)


def injected_sf(hadron_flavour, pt, abseta, discriminant, strength: float) -> np.ndarray:
    """Per-jet SF of every flavour: the light SF for ``hadron_flavour`` 0, 1 for b and c."""
    light = np.asarray(hadron_flavour) == 0
    return np.where(light, light_mistag_sf(pt, abseta, discriminant, strength), 1.0)


def jet_bound(hadron_flavour, pt, abseta, strength: float) -> np.ndarray:
    """``M_j``: the largest SF a jet of this flavour can have in its (pT, |eta|) bin."""
    light = np.asarray(hadron_flavour) == 0
    if float(strength) == 0.0:
        return np.ones(len(light))
    s = light_sf_above(pt, abseta, strength)
    below = light_sf_below(pt, abseta, strength)
    return np.where(light, np.maximum(s, below), 1.0)


def event_acceptance(jet_event, n_events: int, eligible, hadron_flavour, pt, abseta, discriminant,
                     strength: float, is_data: bool) -> np.ndarray:
    """Per-event keep probability: ``prod_j SF_j / M_j`` (data) or ``prod_j 1 / M_j`` (MC) over
    the eligible jets ``j`` (flat jet arrays, ``jet_event`` the event index of each)."""
    if float(strength) == 0.0:
        return np.ones(n_events)
    eligible = np.asarray(eligible, dtype=bool)
    bound = jet_bound(hadron_flavour, pt, abseta, strength)
    factor = 1.0 / bound
    if is_data:
        factor = factor * injected_sf(hadron_flavour, pt, abseta, discriminant, strength)
    logs = np.where(eligible, np.log(factor), 0.0)
    return np.exp(np.bincount(np.asarray(jet_event), weights=logs, minlength=n_events))


def eligible_jets(pt, eta, is_lepton_jet) -> np.ndarray:
    """Jets the injected SF acts on: not a lepton jet, pT > 20 GeV, |eta| < 2.5."""
    return (~np.asarray(is_lepton_jet, dtype=bool)) & (np.asarray(pt) > ELIGIBLE_PT) & \
        (np.abs(np.asarray(eta)) < ELIGIBLE_ABSETA)


def measure_light_fraction(n_events: int = 200_000, seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """(fraction of eligible light jets at or above L, number of such jets) per (pT, |eta|) bin,
    from freshly simulated MC-like events (how :data:`LIGHT_FRACTION_ABOVE_L` was obtained)."""
    from . import batch
    from .conditions import Conditions

    above = np.zeros((len(PT_EDGES) - 1, len(ABSETA_EDGES) - 1))
    total = np.zeros_like(above)
    step = 10_000
    for i, start in enumerate(range(0, n_events, step)):
        n = min(step, n_events - start)
        b = batch.simulate(np.random.default_rng(np.random.SeedSequence([seed, 0, 1, i])), n, 1 + start,
                           Conditions.for_kind("mc"))
        _, f = b.collections["Jet"]
        ok = eligible_jets(f["pt"], f["eta"], b.extras["jet_is_lepton"]) & (f["hadronFlavour"] == 0)
        ipt, ieta = bins(f["pt"][ok], np.abs(f["eta"][ok]))
        np.add.at(total, (ipt, ieta), 1.0)
        np.add.at(above, (ipt, ieta), (f["btagDeepFlavB"][ok] >= WP_VALUES["L"]).astype(float))
    return above / np.maximum(total, 1.0), total
