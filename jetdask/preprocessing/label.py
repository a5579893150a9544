"""Target classes of jets from the truth branches.

Fine flavour codes are those of the PFNano DeepJet table (``Jet_FlavSplit``)::

    0 g    1 ud    2 s    400 c    410 cc    411 gcc (g -> cc)
    500 b  510 bb  511 gbb (g -> bb)    520 leptonic b    521 leptonic b via c
    600 tau    1000 undefined (no generator match)

**With** ``Jet_FlavSplit`` the code is read as is. **Without** it (plain NanoAOD, older
PFNano) the code is derived from ``Jet_hadronFlavour``, ``Jet_partonFlavour``,
``Jet_nBHadrons`` and, when present, ``Jet_nCHadrons`` (:func:`codes_from_hadron`):

* hadronFlavour 5: ``nBHadrons >= 2`` -> 511 gbb if partonFlavour is 21 (gluon splitting)
  else 510 bb; otherwise 500 b. Leptonic b decays cannot be told apart without the
  generator leptons, so 520/521 never occur on this path (they are inside 500);
* hadronFlavour 4: ``nCHadrons >= 2`` -> 411 gcc if partonFlavour is 21 else 410 cc;
  otherwise (or without ``nCHadrons``) 400 c;
* hadronFlavour 0: ``|partonFlavour|`` 1 or 2 -> 1 ud, 3 -> 2 s, 21 -> 0 g;
  0 (no parton match) and anything else (a c/b parton without the hadron, leptons)
  -> 1000 undefined. Taus cannot be identified on this path.

A **scheme** maps class names to lists of codes; codes in no class are *dropped* (class
index -1). Built-in schemes (``labels.scheme``):

``deepjet`` (default, the six DeepJet outputs): b [500], bb [510, 511], lepb [520, 521],
          c [400, 410, 411], uds [1, 2], g [0]. So g->bb joins bb, cc and g->cc join c
          (as in the DeepJet training); tau (600) and undefined (1000) are dropped.
``deepcsv``: b [500, 520, 521], bb [510, 511], c [400, 410, 411], udsg [0, 1, 2].
``bcl``:   b [500, 510, 511, 520, 521], c [400, 410, 411], udsg [0, 1, 2].

``labels.classes: {name: [codes], ...}`` defines a custom scheme (e.g. to keep taus).
Class indices follow the order of the classes in the scheme.
"""
from __future__ import annotations

import awkward as ak
import numpy as np

CODES = {0: "g", 1: "ud", 2: "s", 400: "c", 410: "cc", 411: "gcc", 500: "b", 510: "bb", 511: "gbb",
         520: "lepb", 521: "lepb_c", 600: "tau", 1000: "undefined"}
UNDEFINED = 1000

SCHEMES: dict[str, dict[str, list[int]]] = {
    "deepjet": {"b": [500], "bb": [510, 511], "lepb": [520, 521], "c": [400, 410, 411], "uds": [1, 2], "g": [0]},
    "deepcsv": {"b": [500, 520, 521], "bb": [510, 511], "c": [400, 410, 411], "udsg": [0, 1, 2]},
    "bcl": {"b": [500, 510, 511, 520, 521], "c": [400, 410, 411], "udsg": [0, 1, 2]},
}

TRUTH_FIELDS = ("FlavSplit", "hadronFlavour", "partonFlavour", "nBHadrons", "nCHadrons")


def columns(collection: str = "Jet") -> list[str]:
    """Branches the labelling may read (all optional: data files lack them)."""
    return [f"optional:{collection}_{f}" for f in TRUTH_FIELDS]


def codes_from_hadron(hadron, parton, n_b, n_c=None) -> np.ndarray:
    """FlavSplit-like codes from hadron/parton flavour and hadron counts (flat numpy arrays)."""
    hadron = np.asarray(hadron, dtype=np.int64)
    parton = np.asarray(parton, dtype=np.int64)
    n_b = np.asarray(n_b, dtype=np.int64)
    n_c = np.zeros_like(hadron) if n_c is None else np.asarray(n_c, dtype=np.int64)
    apf = np.abs(parton)
    gluon = parton == 21
    return np.select(
        [(hadron == 5) & (n_b >= 2) & gluon, (hadron == 5) & (n_b >= 2), hadron == 5,
         (hadron == 4) & (n_c >= 2) & gluon, (hadron == 4) & (n_c >= 2), hadron == 4,
         (apf == 1) | (apf == 2), apf == 3, gluon],
        [511, 510, 500, 411, 410, 400, 1, 2, 0], UNDEFINED).astype(np.int32)


def _flat(x) -> np.ndarray:
    return np.asarray(ak.to_numpy(ak.flatten(x, axis=None)))


def flavour_codes(jets, source: str = "auto") -> tuple[np.ndarray, str]:
    """Flat per-jet fine codes of a jagged jet collection, and the path used (``flavsplit``/``hadron``).

    ``source``: ``auto`` (FlavSplit when the collection has it), ``flavsplit`` or ``hadron``.
    """
    fields = set(ak.fields(jets))
    if source in ("auto", "flavsplit") and "FlavSplit" in fields:
        return _flat(jets.FlavSplit).astype(np.int32), "flavsplit"
    if source == "flavsplit":
        raise ValueError("labels.source is flavsplit but the jets have no FlavSplit branch")
    need = {"hadronFlavour", "partonFlavour", "nBHadrons"}
    missing = need - fields
    if missing:
        raise ValueError(f"cannot label jets: no FlavSplit and missing {sorted(missing)} "
                         "(is this a data file? preprocessing needs simulation)")
    n_c = _flat(jets.nCHadrons) if "nCHadrons" in fields else None
    return codes_from_hadron(_flat(jets.hadronFlavour), _flat(jets.partonFlavour), _flat(jets.nBHadrons), n_c), "hadron"


def class_lookup(classes: dict[str, list[int]]) -> dict[int, int]:
    """code -> class index for a scheme."""
    return {int(code): i for i, codes in enumerate(classes.values()) for code in codes}


def class_index(codes: np.ndarray, classes: dict[str, list[int]]) -> np.ndarray:
    """Class index per jet (order of ``classes``), -1 for dropped codes."""
    codes = np.asarray(codes, dtype=np.int64)
    out = np.full(len(codes), -1, dtype=np.int16)
    for code, idx in class_lookup(classes).items():
        out[codes == code] = idx
    return out
