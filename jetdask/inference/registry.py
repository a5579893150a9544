"""Tagger specs, the checkpoint format, scalers and the per-process model cache, in one import.

Each has its own module; this one gathers their public names (``from jetdask.inference.registry
import Tagger, load_model`` keeps working):

=================  ===================================================================
:mod:`.tagger`     :class:`Tagger` specs, :func:`tagger_resources`
:mod:`.checkpoint` the jetdask checkpoint format: :func:`save_checkpoint`, :func:`load_checkpoint`
:mod:`.scaler`     :class:`Scaler`, :func:`fit_scaler`
:mod:`.cache`      :func:`load_model`, loaded once per process, :func:`clear_cache`, ``stats``
:mod:`.modelfiles` reading model files without running their code, :func:`check_tagger`
=================  ===================================================================

Model files (read by :mod:`.modelfiles`, which refuses anything that would run code):

* **ONNX** (``*.onnx``): run by onnxruntime (:mod:`.onnx_backend`); layout in the spec,
  classes in the spec (default: the six DeepJet classes for the ``deepjet-cmssw`` layouts);
  outputs used as they are (``softmax=False`` unless the spec says otherwise);
* **TorchScript** (``torch.jit.save``): detected from the archive content; layout
  and classes must be given in the spec; outputs are used as they are
  (``softmax=False`` unless the spec says otherwise);
* **jetdask checkpoint** (:mod:`.checkpoint`): models of :mod:`jetdask.models` return logits,
  so ``softmax`` defaults to True;
* a bare ``state_dict`` file: ``model_class`` (and ``model_kwargs``) in the spec.
"""
from .cache import LoadedModel, clear_cache, default_device, load_model, stats
from .checkpoint import build_model, is_torchscript, load_checkpoint, save_checkpoint
from .modelfiles import CHECKPOINT_KEYS, check_tagger
from .scaler import Scaler, fit_scaler
from .tagger import RESERVED_NAMES, Tagger, tagger_resources

__all__ = ["Tagger", "tagger_resources", "RESERVED_NAMES", "save_checkpoint", "load_checkpoint", "build_model",
           "is_torchscript", "CHECKPOINT_KEYS", "Scaler", "fit_scaler", "LoadedModel", "load_model",
           "default_device", "clear_cache", "stats", "check_tagger"]
