"""Preprocessing of PFNano jets for flavour-tagging training, as jetdask runs.

One YAML (``default.yaml`` documents every key) drives two passes over the simulated
datasets of a fileset, each an ordinary, resumable jetdask run:

``pass1-hists``   clean + label + split every jet; (pT, eta) histograms per class and
                  split; per-chunk moments of every feature (training split, defaulted
                  entries excluded) -> ``weights.json`` and ``scaler.json`` on the client
``pass2-shards``  the same selection; per-jet weight, placeholders for defaulted entries;
                  parquet shards per split written by the workers

then, on the client, ``tensors/<split>/features.npy`` (+ ``label``, ``weight``, ``ids``,
``defaulted``, ``columns.json``), ``summary.json`` and PNG plots. With ``layout: NAME`` the
passes convert the jets with that inference layout instead and write its inputs and
missing-masks (``tensors/<split>/<input>.npy``, ``<input>.valid.npy``): what ``jetdask train``
reads.

Modules (one job each): :mod:`.config` (schema, validation), :mod:`.clean` (selection
steps), :mod:`.label` (FlavSplit / hadron-parton labels, schemes), :mod:`.defaults`
(NaN/inf/sentinel/empty-slot handling), :mod:`.reweight` (histograms -> weights),
:mod:`.split` (hash split), :mod:`.scale` (exact moment merging, ``scaler.json``),
:mod:`.shards` (parquet -> ``.npy``), :mod:`.layout_tensors` (``layout:``: tensors and scaler
through an inference layout), :mod:`.summary`, :mod:`.passes` (pass analyses), :mod:`.driver`
(``preprocess``), :mod:`.pipeline` (re-exports both), :mod:`.cli` (``jetdask preprocess``).

Python::

    from jetdask.preprocessing import preprocess
    out = preprocess("prep.yaml", "fileset.json", "runs/prep", serial=False, workers=2)
    out.complete, out.tensors["train"]["n"], out.scaler["Jet_pt"]
"""
from .config import load_config
from .pipeline import HistogramPass, PreprocessOutput, ShardPass, preprocess

__all__ = ["load_config", "preprocess", "PreprocessOutput", "HistogramPass", "ShardPass"]
