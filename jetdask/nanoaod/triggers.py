"""HLT bits and the primary-dataset overlap rule for collision data.

CMS writes an event into every primary dataset (PD) whose triggers it fired, so one collision
can be in ``DoubleMuon``, ``SingleMuon`` and ``EGamma`` at once. Summing several PDs counts it
once only if each PD is given a rank and an event is taken from a PD only when it fired none of
the triggers of the PDs ranked before it:

=================  ==================================  ==========================================
PD (rank order)    taken when it fired                 and did not fire
=================  ==================================  ==========================================
``DoubleMuon``     a double-muon trigger               (first: nothing vetoed)
``SingleMuon``     a single-muon trigger               a double-muon trigger
``DoubleEG``       a double-electron trigger           any muon trigger
``SingleElectron`` a single-electron trigger           any muon or double-electron trigger
``EGamma``         a single- or double-e trigger       any muon trigger
=================  ==================================  ==========================================

(``EGamma`` replaces DoubleEG + SingleElectron from 2018 on; a run uses one or the other.)
The PD of a dataset comes from its fileset metadata ``primary_dataset``; data without it are
taken as an unskimmed stream (no overlap rule), MC never has one. A trigger branch missing
from a file counts as not fired.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError

SINGLE_MUON = ("HLT_IsoMu24", "HLT_IsoMu27")
DOUBLE_MUON = ("HLT_Mu17_TrkIsoVVL_Mu8_TrkIsoVVL_DZ", "HLT_Mu17_TrkIsoVVL_Mu8_TrkIsoVVL_DZ_Mass8",
               "HLT_Mu17_TrkIsoVVL_Mu8_TrkIsoVVL_DZ_Mass3p8")
SINGLE_ELECTRON = ("HLT_Ele32_WPTight_Gsf", "HLT_Ele27_WPTight_Gsf")
DOUBLE_ELECTRON = ("HLT_Ele23_Ele12_CaloIdL_TrackIdL_IsoVL", "HLT_Ele23_Ele12_CaloIdL_TrackIdL_IsoVL_DZ")

PD_TRIGGERS = {"DoubleMuon": DOUBLE_MUON, "SingleMuon": SINGLE_MUON, "DoubleEG": DOUBLE_ELECTRON,
               "SingleElectron": SINGLE_ELECTRON, "EGamma": SINGLE_ELECTRON + DOUBLE_ELECTRON}
PD_ORDER = ("DoubleMuon", "SingleMuon", "DoubleEG", "SingleElectron", "EGamma")


def fired(events, names) -> np.ndarray:
    """OR of the HLT bits ``names`` (``"HLT_IsoMu24"``) per event; missing branches are not fired."""
    hlt = events.HLT if "HLT" in events.fields else None
    out = np.zeros(len(events), dtype=bool)
    for name in names:
        short = name[len("HLT_"):]
        if hlt is not None and short in hlt.fields:
            out |= np.asarray(hlt[short], dtype=bool)
    return out


def overlap_rule(pd: str, order=PD_ORDER, pd_triggers=None) -> tuple[tuple, tuple]:
    """(triggers of which one must fire, triggers of which none may fire) for events of PD ``pd``.

    Policy only (no events): the PDs ranked before ``pd`` in ``order`` supply the vetoes,
    except that EGamma and DoubleEG/SingleElectron never veto each other (one era has one or
    the other).
    """
    table = PD_TRIGGERS if pd_triggers is None else pd_triggers
    if pd not in table or pd not in order:
        raise ConfigError(f"unknown primary dataset {pd!r}; known: {', '.join(o for o in order if o in table)}",
                          "metadata.primary_dataset")
    eg = {"EGamma"}, {"DoubleEG", "SingleElectron"}
    veto: list = []
    for other in order[:list(order).index(pd)]:
        if (pd in eg[0] and other in eg[1]) or (pd in eg[1] and other in eg[0]):
            continue
        veto += [t for t in table[other] if t not in veto and t not in table[pd]]
    return tuple(table[pd]), tuple(veto)


def primary_dataset_mask(events, pd: str | None, order=PD_ORDER, pd_triggers=None) -> np.ndarray:
    """Events that this PD contributes under the overlap rule (all events when ``pd`` is None)."""
    if pd is None:
        return np.ones(len(events), dtype=bool)
    need, veto = overlap_rule(pd, order, pd_triggers)
    return fired(events, need) & ~fired(events, veto)
