"""The jetdask checkpoint format: writing it (:func:`save_checkpoint`) and reading it back checked
(:func:`load_checkpoint`).

A jetdask checkpoint is a dict saved with ``torch.save`` and loaded with
``torch.load(path, weights_only=True)``, holding exactly::

      state_dict    dict[str, Tensor]   model.state_dict()
      model_class   str                 a registered model name (jetdask.models.model_class): "DeepJet",
                                        or a class registered with jetdask.models.register_model
      model_kwargs  dict                constructor arguments (model.config)
      layout        str                 input layout name ("deepjet", "deepcsv", "part", ...)
      classes       list[str]           output class names, in output order
      scaler        dict | None         scaler dict (:mod:`.scaler`) or None
      epoch         int                 training epoch of these weights
      metadata      dict                free JSON-like data (training sample, git hash, ...)

Models of :mod:`jetdask.models` return logits, so a tagger's ``softmax`` defaults to True for
checkpoints. A bare ``state_dict`` file is read too, with ``model_class`` (and ``model_kwargs``)
given in the tagger spec; the scaler format is :mod:`.scaler`'s.

Reading goes through :mod:`.modelfiles`, which refuses anything that would run code.
"""
from __future__ import annotations

import os

import numpy as np

from ..atomicwrite import atomic_path
from . import modelfiles
from .modelfiles import CHECKPOINT_KEYS

__all__ = ["CHECKPOINT_KEYS", "save_checkpoint", "load_checkpoint", "build_model", "is_torchscript"]


def plain(obj):
    """JSON-like copy (tuples -> lists, numpy -> python) so that ``weights_only`` loading accepts it."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def save_checkpoint(path: str, model, *, layout: str | None = None, classes=None, scaler: dict | None = None,
                    epoch: int = 0, metadata: dict | None = None, model_class: str | None = None,
                    model_kwargs: dict | None = None) -> str:
    """Write ``model`` (a :mod:`jetdask.models` module) as a jetdask checkpoint; returns ``path``.

    ``layout``, ``classes``, ``model_class`` and ``model_kwargs`` default to the model's
    ``layout``/``classes`` class attributes, its class name and ``model.config``.
    """
    import torch
    ckpt = {
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "model_class": model_class or type(model).__name__,
        "model_kwargs": plain(model_kwargs if model_kwargs is not None else getattr(model, "config", {})),
        "layout": layout or model.layout,
        "classes": list(classes or model.classes),
        "scaler": plain(scaler) if scaler is not None else None,
        "epoch": int(epoch),
        "metadata": plain(metadata or {}),
    }
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    return path


def load_checkpoint(path: str, map_location="cpu") -> dict:
    """A jetdask checkpoint as a dict (``torch.load(..., weights_only=True)``); checks the keys,
    the model class (registered names only) and its arguments; ModelFileError otherwise."""
    ckpt = modelfiles.check_checkpoint(modelfiles.read_torch(path), path)
    modelfiles.resolve(ckpt["model_class"], ckpt["model_kwargs"], path)
    return ckpt


def build_model(model_class: str, model_kwargs: dict | None = None, state_dict: dict | None = None):
    """Instantiate a registered model class with checked arguments and load its weights (strict)."""
    return modelfiles.build_model(model_class, model_kwargs, state_dict)


def is_torchscript(path: str) -> bool:
    """Whether ``path`` is a TorchScript archive (by its content, not its name)."""
    return modelfiles.file_kind(path) == "torchscript"
