"""Corrections and systematic uncertainties: correctionlib files in the official CMS POG format.

Layers, one job each::

    loader       files by path (local or root://), read once per worker, cached by path + sha256
    evaluate     one correction on flat arrays: inputs by name, clamps counted, errors with context
    config       corrections.yaml: which files, corrections and variations (checked on the client)
    systematics  the one registry of sources; the fixed ``syst`` histogram axis
    jets         JEC from raw pT, JES shifts, reproducible JER smearing (HashPRNG)
    weights      pile-up and theory (muR/muF, ISR/FSR) weights
    btag         b-tag shape SFs with the per-flavour availability of the official files
    fill         histograms with a syst axis: one bin lookup, one weighted count per variation
    dy           the DY+jets study with all of the above (called by analyses/dy_jets.py)
    normalise    plotting-time scales per variation (theory sums, b-tag normalisation)

Users: ``DYJets(corrections="corrections.yaml")`` or ``jetdask run ... --corrections FILE``;
see ``docs/tutorials/corrections.md``.
"""
from __future__ import annotations

#: branches the corrections read (optional: a file without them fails only if a correction needs them)
COLUMNS = ("Jet_rawFactor", "Jet_area", "Jet_genJetIdx", "GenJet_pt", "fixedGridRhoFastjetAll",
           "Pileup_nTrueInt", "LHEScaleWeight", "PSWeight", "Jet_hadronFlavour", "genWeight")


def setup_analysis(analysis, corrections: str, systematics=None, disable=(), columns=()) -> list[str]:
    """Load ``corrections`` into ``analysis.corrections_config``; the extra columns it needs."""
    from ..errors import ConfigError
    from .config import load_config

    if getattr(analysis, "pileup", None):
        raise ConfigError("give the pile-up weights either as pileup= or in the corrections config, not both",
                          "pileup")
    cfg = load_config(corrections, disable=tuple(disable or ()), systematics=systematics)
    analysis.corrections_config = cfg
    wanted = [f"optional:{c}" for c in COLUMNS]
    if cfg.has("btag"):
        wanted.append(f"optional:Jet_{cfg.blocks['btag'].get('discriminant', 'btagDeepFlavB')}")
    return [c for c in dict.fromkeys(wanted) if c not in columns]
