"""What the figures say: the CMS label mode, display names of taggers and distortions, numbers.

The label mode is chosen from the data (table-driven, :func:`label_text`): a private study
is never labelled "Preliminary" unless the user asks for it, synthetic events never as CMS
data. Display names: histogram keys such as ``DeepJet_nominal@fgsm0.05_BvsL`` become
``("DeepJet nominal", "FGSM, ε = 0.05", "BvsL")``; a ``names`` mapping (from ``jetdask plot
--name KEY=TEXT`` or the caller) overrides the tagger part.
"""
from __future__ import annotations

import re

from ..errors import ConfigError

LABEL_MODES = ("auto", "private", "preliminary", "simulation", "wip")

# (mode, has_data, synthetic) -> text after "CMS"; None: refused (ConfigError)
_LABELS = {
    ("auto", True, False): "Private work",
    ("auto", True, True): "Simulation Private work",
    ("auto", False, False): "Simulation Private work",
    ("auto", False, True): "Simulation Private work",
    ("preliminary", True, False): "Preliminary",
    ("preliminary", True, True): None,
    ("preliminary", False, False): "Simulation Preliminary",
    ("preliminary", False, True): None,
    ("simulation", True, False): None,
    ("simulation", True, True): "Simulation",
    ("simulation", False, False): "Simulation",
    ("simulation", False, True): "Simulation",
    ("wip", True, False): "Work in progress",
    ("wip", True, True): "Simulation Work in progress",
    ("wip", False, False): "Simulation Work in progress",
    ("wip", False, True): "Simulation Work in progress",
}


def label_text(mode: str | None, has_data: bool, synthetic: bool) -> str:
    """Text after "CMS" for label ``mode`` (see ``LABEL_MODES``; ``private`` = ``auto``).

    Refused (ConfigError): "Preliminary" on synthetic events, "Simulation" alone with real data.
    """
    mode = (mode or "auto").lower().replace("-", "")
    mode = {"private": "auto", "privatework": "auto", "workinprogress": "wip"}.get(mode, mode)
    key = (mode, bool(has_data), bool(synthetic))
    if key not in _LABELS:
        raise ConfigError(f"unknown label mode {mode!r}; use one of {', '.join(LABEL_MODES)}", "--label")
    text = _LABELS[key]
    if text is None:
        what = "synthetic events" if synthetic else "real collision data"
        raise ConfigError(f"label mode {mode!r} does not apply to {what}", "--label")
    return text


def data_label(synthetic: bool) -> str:
    """Legend entry of the data points."""
    return "Synthetic data" if synthetic else "Data"


# -- display names -----------------------------------------------------------------------
DISCRIMINANT_LABELS = {"BvsL": "b vs light", "CvsB": "c vs b", "CvsL": "c vs light", "BvsAll": "b vs all",
                       "BvsC": "b vs c"}
DISTORTION_LABELS = {"fgsm": r"FGSM, $\epsilon$ = {v}", "pgd": r"PGD, $\epsilon$ = {v}",
                     "noise": r"noise, $\sigma$ = {v}"}
OFFICIAL = {"DeepJet": "DeepJet (NanoAOD)", "DeepCSV": "DeepCSV (NanoAOD)"}


def split_name(name: str) -> tuple[str, str]:
    """``"nominal@fgsm0.01_BvsL"`` -> ``("nominal@fgsm0.01", "BvsL")``; no discriminant -> ``(name, "")``."""
    if "_" in name:
        tagger, disc = name.rsplit("_", 1)
        if disc in DISCRIMINANT_LABELS or re.fullmatch(r"[A-Z][a-z]*vs[A-Z][A-Za-z]*", disc):
            return tagger, disc
    return name, ""


def distortion_label(tag: str) -> str:
    """``"fgsm0.05"`` -> ``"FGSM, $\\epsilon$ = 0.05"``; unknown tags as they are."""
    m = re.fullmatch(r"([A-Za-z]+)([0-9.eE+-]+)", tag)
    if m and m.group(1).lower() in DISTORTION_LABELS:
        return DISTORTION_LABELS[m.group(1).lower()].replace("{v}", m.group(2))
    return tag


def tagger_parts(tagger: str, names: dict | None = None) -> tuple[str, str]:
    """(tagger display name, distortion display name or "") of a tagger key ``base@distortion``."""
    base, _, dist = tagger.partition("@")
    names = names or {}
    shown = names.get(base) or OFFICIAL.get(base) or base.replace("_", " ")
    return shown, distortion_label(dist) if dist else ""


def _tagger_text(tagger: str, names: dict | None, with_distortion: str) -> str:
    """A name in ``names`` as given; else the tagger's display name, and its inputs' distortion
    as ``with_distortion`` places them (``{shown}``, ``{dist}``)."""
    names = names or {}
    if tagger in names:
        return names[tagger]
    shown, dist = tagger_parts(tagger, names)
    return with_distortion.format(shown=shown, dist=dist) if dist else shown


def tagger_label(tagger: str, names: dict | None = None) -> str:
    """One-line display name: ``"DeepJet nominal, FGSM, ε = 0.05 inputs"``."""
    return _tagger_text(tagger, names, "{shown} ({dist} inputs)")


def tagger_title(tagger: str, names: dict | None = None) -> str:
    """Panel title: the tagger's display name, and the distortion of its inputs on a second line."""
    return _tagger_text(tagger, names, "{shown}\n{dist} inputs")


def xlabel_for(name: str, axis_label: str | None = None) -> str:
    """x-axis title of histogram ``name``: ``"BvsL discriminant"`` for a tagger's discriminant (the
    tagger is named in the panel), else the axis label when it says more than the axis name."""
    tagger, disc = split_name(name)
    if disc:
        return f"{disc} discriminant"
    if axis_label and axis_label not in ("value", name):
        return axis_label
    return name.removeprefix("input_").replace("_", " ")


CHANNEL_NAMES = {"mumu": r"$\mu\mu$", "ee": "ee", "emu": r"e$\mu$", "mue": r"$\mu$e", "mu": r"$\mu$",
                 "e": "e", "tautau": r"$\tau\tau$"}


def channel_text(channel: str | None, categories=()) -> str:
    """Panel text of ``channel``: its display name (``mumu`` -> μμ); for the sum (``all``) the
    histogram's own ``categories`` joined with " + " ("" when it has no channel axis)."""
    cats = [str(c) for c in categories if str(c) not in ("all", "sum")]
    if channel in (None, "all", "sum"):
        return " + ".join(CHANNEL_NAMES.get(c, c) for c in cats)
    return CHANNEL_NAMES.get(channel, channel)


def file_stem(*parts: str) -> str:
    """A file-name-safe stem: ``@`` becomes ``-at-``; anything odd becomes ``_``."""
    s = "_".join(p for p in parts if p)
    s = s.replace("@", "-at-")
    return re.sub(r"[^A-Za-z0-9._+-]", "_", s)


# -- numbers -----------------------------------------------------------------------------
P_FLOOR = 1e-10


def p_text(p: float | None) -> str:
    """``"p = 0.43"``, ``"p = 3.2e-04"``, ``"p < 1e-10"`` (never ``p = 0``)."""
    if p is None:
        return "p = n/a"
    if p < P_FLOOR:
        return f"p < {P_FLOOR:.0e}"
    return f"p = {p:.2f}" if p >= 0.01 else f"p = {p:.1e}"
