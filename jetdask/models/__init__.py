"""Flavour-tagging models: plain ``torch.nn.Module`` classes, and the registry of known classes.

Every class has the class attributes ``layout`` (the input layout of
:mod:`jetdask.inference.layouts` it reads: ``"deepjet"``, ``"deepcsv"`` or
``"part"``) and ``classes`` (output nodes, in order), returns *logits* (the
inference step applies the softmax), and records its constructor arguments in
``self.config`` so that :func:`jetdask.inference.registry.save_checkpoint` can
store them beside the weights.

=============================  ==========  ==========================================
class                          layout      inputs (per jet)
=============================  ==========  ==========================================
:class:`DeepCSV`               deepcsv     (65,) flat DeepCSV inputs
:class:`DeepJet`               deepjet     global (15,), cpf (25,16), npf (25,6), sv (4,12)
:class:`ParticleTransformer`   part        features (C,P), vectors (4,P), mask (1,P)
:class:`ParticleNet`           pn          points (2,P), features (C,P), mask (1,P)
=============================  ==========  ==========================================

Default sizes are the nominal ones (DeepJet ~250k parameters); every width is a
constructor argument so that tests can build tiny configurations.

**Registry.** A checkpoint names its model class by a registered name, never by a module
path: :func:`model_class` knows jetdask's own classes and those a user registers in their
own code (``register_model("MyNet", MyNet)``) before loading; the checker of
:mod:`.schema` refuses arguments the class does not declare. A ``module:Class`` string is refused.
"""
from __future__ import annotations

from ..errors import ModelFileError

CLASSES = ("b", "bb", "lepb", "c", "uds", "g")

_MODULES = {"DeepCSV": "deepcsv", "DeepJet": "deepjet", "ParticleTransformer": "particle_transformer",
            "ParticleNet": "particle_net"}

_user: dict = {}


def register_model(name: str, cls) -> type:
    """Make ``cls`` loadable from checkpoints that name it ``name``; returns ``cls``.

    Call it in your own code (the analysis file, the training script) before loading.
    Jetdask's own names cannot be taken; registering the same class again is a no-op.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"model name must be an identifier (no module path), got {name!r}")
    if not isinstance(cls, type):
        raise TypeError(f"register_model({name!r}, ...) takes a class, got {type(cls).__name__}")
    if name in _MODULES:
        raise ValueError(f"{name!r} is a jetdask model; register yours under another name")
    old = _user.get(name)
    if old is not None and old is not cls:
        raise ValueError(f"model name {name!r} is already registered for {old.__module__}.{old.__qualname__}")
    _user[name] = cls
    return cls


def unregister_model(name: str) -> None:
    """Forget a class registered with :func:`register_model` (no error if it was not)."""
    _user.pop(name, None)


def registered_models() -> dict:
    """``{name: class}`` of user-registered classes (jetdask's own are in ``_MODULES``)."""
    return dict(_user)


def known_names() -> list:
    """Every model name the registry resolves: jetdask's models and the registered ones."""
    return sorted(set(_MODULES) | set(_user))


def canonical_name(name) -> str:
    """``name`` if the registry resolves it; refuses anything else."""
    if not isinstance(name, str):
        raise ModelFileError(f"model class must be a name, got {type(name).__name__}")
    if name in _MODULES or name in _user:
        return name
    if ":" in name or "." in name:
        raise ModelFileError(f"model class {name!r} is a module path, not a registered model name; "
                             f"known: {known_names()} (register yours with jetdask.models.register_model)")
    raise ModelFileError(f"unknown model class {name!r}; known: {known_names()} "
                         "(register yours with jetdask.models.register_model)")


def model_class(name: str) -> type:
    """The registered class called ``name`` (``"DeepJet"``, ``"DeepCSV"``, ``"ParticleTransformer"``
    or a user-registered name); :class:`~jetdask.errors.ModelFileError` for anything else."""
    import importlib
    name = canonical_name(name)
    if name in _user:
        return _user[name]
    return getattr(importlib.import_module(f".{_MODULES[name]}", __name__), name)


def __getattr__(name):
    if name in _MODULES:
        return model_class(name)
    raise AttributeError(f"module 'jetdask.models' has no attribute {name!r}")


__all__ = ["CLASSES", "model_class", "register_model", "unregister_model", "registered_models",
           "canonical_name", "known_names", *_MODULES]
