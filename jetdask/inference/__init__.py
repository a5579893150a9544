"""Batched torch inference of several flavour taggers in one pass over a chunk.

=====================  ====================================================
:mod:`.tagger`         :class:`Tagger` specs
:mod:`.checkpoint`     the jetdask checkpoint format (save, load checked)
:mod:`.scaler`         input standardisation (:class:`Scaler`, :func:`fit_scaler`)
:mod:`.cache`          :func:`load_model`: each model loaded once per process
:mod:`.registry`       the names of the four above in one import
:mod:`.layouts`        input layouts (DeepJet, DeepCSV, ParT, ParticleNet-style, user jagged), vectorised
                       conversion; the same conversion feeds the preprocessing (``layout:``)
:mod:`.layout_cmssw`   ``deepjet-cmssw``: production DeepJet input order (CMS ONNX files)
:mod:`.modelfiles`     reading tagger files without running their code
:mod:`.onnx_backend`   ONNX taggers through onnxruntime
:mod:`.batching`       batched prediction, thread control, memory-bounded batch size
:mod:`.distortions`    Gaussian noise and FGSM on the scaled inputs
:mod:`.discriminants`  BvsL, CvsB, CvsL, BvsC (also from official NanoAOD branches)
:mod:`.analysis`       :func:`tagger_pass` (scores written back as jet fields), :class:`InferenceStep`,
                       :class:`TaggerScores`
=====================  ====================================================

Importing this package does not import torch; loading a model does.
"""
from .analysis import InferenceStep, TaggerScores, tagger_columns, tagger_pass
from .cache import load_model
from .checkpoint import load_checkpoint, save_checkpoint
from .discriminants import bvsc, bvsl, cvsb, cvsl, discriminants, official_bvsl, official_discriminants
from .distortions import FGSM, Noise, parse_distortion
from .layout_cmssw import DEEPJET_CMSSW  # registers the "deepjet-cmssw" layouts
from .layouts import (
                      DEEPCSV,
                      DEEPJET,
                      LAYOUTS,
                      PART,
                      PN,
                      InputSpec,
                      JaggedLayout,
                      Layout,
                      SlotLayout,
                      get_layout,
                      register_layout,
)
from .modelfiles import check_tagger
from .scaler import Scaler, fit_scaler
from .tagger import Tagger, tagger_resources

__all__ = ["Tagger", "InferenceStep", "TaggerScores", "tagger_pass", "tagger_columns", "save_checkpoint",
           "load_checkpoint", "load_model", "Scaler", "fit_scaler", "Layout", "SlotLayout", "JaggedLayout",
           "InputSpec", "get_layout", "register_layout", "LAYOUTS", "DEEPJET", "DEEPCSV", "PART", "PN",
           "DEEPJET_CMSSW", "check_tagger", "tagger_resources", "Noise", "FGSM",
           "parse_distortion", "bvsl", "cvsb", "cvsl", "bvsc", "discriminants", "official_bvsl",
           "official_discriminants"]
