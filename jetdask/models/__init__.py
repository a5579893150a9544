"""Flavour-tagging models: plain ``torch.nn.Module`` classes.

Every class has the class attributes ``layout`` (the input layout of
:mod:`jetdask.inference.layouts` it reads: ``"deepjet"``, ``"deepcsv"`` or
``"part"``) and ``classes`` (output nodes, in order), returns *logits* (the
inference step applies the softmax), and records its constructor arguments in
``self.config`` so that :func:`jetdask.inference.registry.save_checkpoint` can
store them beside the weights.

=========================  ==========  ==========================================
class                      layout      inputs (per jet)
=========================  ==========  ==========================================
:class:`DeepCSV`           deepcsv     (65,) flat DeepCSV inputs
:class:`DeepJet`           deepjet     global (15,), cpf (25,16), npf (25,6), sv (4,12)
:class:`ParticleTransformer` part      features (C,P), vectors (4,P), mask (1,P)
:class:`ParticleNet`       pn          points (2,P), features (C,P), mask (1,P)
=========================  ==========  ==========================================

Default sizes are the nominal ones (DeepJet ~250k parameters); every width is a
constructor argument so that tests can build tiny configurations.
"""
from __future__ import annotations

CLASSES = ("b", "bb", "lepb", "c", "uds", "g")

_MODULES = {"DeepCSV": "deepcsv", "DeepJet": "deepjet", "ParticleTransformer": "particle_transformer",
            "ParticleNet": "particle_net"}


def model_class(name: str):
    """The model class called ``name`` (``"DeepJet"``, ``"DeepCSV"``, ``"ParticleTransformer"``).

    ``"package.module:Class"`` names a class outside ``jetdask.models``.
    """
    import importlib
    if ":" in name:
        mod, cls = name.rsplit(":", 1)
        return getattr(importlib.import_module(mod), cls)
    if name not in _MODULES:
        raise KeyError(f"unknown model class {name!r}; known: {sorted(_MODULES)}")
    return getattr(importlib.import_module(f".{_MODULES[name]}", __name__), name)


def __getattr__(name):
    if name in _MODULES:
        return model_class(name)
    raise AttributeError(f"module 'jetdask.models' has no attribute {name!r}")


__all__ = ["CLASSES", "model_class", *_MODULES]
