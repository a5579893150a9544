"""Light-jet scale factors from the DY+jets region: derive, export, apply, compare.

Modules, one job each::

    sources        systematic sources and how their shifts combine (groups, envelopes)
    registry       the sources of a run's syst axis, from the systematics registry
    inputs         a run's sf_* histograms -> data / MC light / MC non-light arrays
    ratio          SF = (data - MC non-light) / MC light and its statistical uncertainty
    workingpoints  WP cuts: correction file, given, or MC mistag rates; snapped to bin edges
    measure        fixed-WP and shape SF tables with every variation
    derive         the Python API over a run directory (derive, SFResult)
    export         correctionlib JSON in the POG structure (<tagger>_incl, _shape, _wp_values)
    efficiency     MC tagging efficiencies per dataset (correctionlib.convert.from_histogram)
    weights        method 1a fixed-WP event weights
    templates      per-flavour templates with Up/Down variations, written to ROOT
    compare        tagger comparison table and figure
    closure        data/MC agreement before and after the derived SFs
    pulls          pulls against a known truth; the synthetic pull study
    cli            ``jetdask sf``

Usage::

    from jetdask.scalefactors import derive
    res = derive("runs/dy")
    res.write("sf.json")
"""
from .derive import SFResult, derive, derive_region, summary
from .measure import SFTable, derive_shape, derive_wp

__all__ = ["SFResult", "SFTable", "derive", "derive_region", "derive_shape", "derive_wp", "summary"]
