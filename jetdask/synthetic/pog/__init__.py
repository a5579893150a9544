"""Synthetic correction files in the structure of the official CMS POG JSON files.

Built with :mod:`correctionlib.schemav2` from the truth of the synthetic world
(:mod:`jetdask.synthetic.truth`, :mod:`jetdask.synthetic.calibration`), validated by
correctionlib, and written by ``jetdask sample`` beside ``fileset.json``:

* ``btagging.json.gz`` (:mod:`.btag`): ``deepJet_shape``, ``deepJet_comb``, ``deepJet_incl``,
  ``deepJet_wp_values``;
* ``puWeights.json.gz`` (:mod:`.pileup`): ``Collisions18_UltraLegacy_goldenJSON``;
* ``jet_jerc.json.gz`` (:mod:`.jerc`): the compound L1L2L3Res, JES uncertainties (Total and
  regrouped sources), JER resolution and scale factor, and ``JERSmear`` (``HashPRNG``);
* ``corrections.yaml`` (:mod:`.write`): the corrections config naming them and every variation.
"""
from .write import write_corrections

__all__ = ["write_corrections"]
