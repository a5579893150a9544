"""Tagger specs, the checkpoint format, scalers and the per-process model cache.

A :class:`Tagger` is a small picklable description (name, model file, layout,
classes, scaler, device, distortion); an analysis holding taggers ships to the
workers cheaply and every worker process loads each model once
(:func:`load_model`, cached by ``(path, mtime, device, class, kwargs)``). The
model object itself is never pickled.

Model files (read by :mod:`.modelfiles`, which refuses anything that would run code):

* **ONNX** (``*.onnx``): run by onnxruntime (:mod:`.onnx_backend`); layout in the spec,
  classes in the spec (default: the six DeepJet classes for the ``deepjet-cmssw`` layouts);
  outputs used as they are (``softmax=False`` unless the spec says otherwise);
* **TorchScript** (``torch.jit.save``): detected from the archive content; layout
  and classes must be given in the spec; outputs are used as they are
  (``softmax=False`` unless the spec says otherwise);
* **jetdask checkpoint** (:func:`save_checkpoint`): a dict loaded with
  ``torch.load(path, weights_only=True)`` holding exactly::

      state_dict    dict[str, Tensor]   model.state_dict()
      model_class   str                 a registered model name (jetdask.models.model_class): "DeepJet",
                                        or a class registered with jetdask.models.register_model
      model_kwargs  dict                constructor arguments (model.config)
      layout        str                 input layout name ("deepjet", "deepcsv", "part", ...)
      classes       list[str]           output class names, in output order
      scaler        dict | None         scaler dict (format below) or None
      epoch         int                 training epoch of these weights
      metadata      dict                free JSON-like data (training sample, git hash, ...)

  models of :mod:`jetdask.models` return logits, so ``softmax`` defaults to True;
* a bare ``state_dict`` file: ``model_class`` (and ``model_kwargs``) in the spec.

Scaler (JSON file or dict), per input name, per feature (feature axis of the input)::

    {"inputs": {"cpf": {"mean": [...], "std": [...], "default": [...] or 0.0}, ...}}

Valid entries become ``(x - mean) / std``; invalid ones (padding, empty slots, -999,
non-finite) become ``default`` (0 when absent). Inputs not listed are left as converted.
"""
from __future__ import annotations

import dataclasses
import json
import os
import threading
from typing import Any

import numpy as np

from ..atomicwrite import atomic_path
from . import modelfiles
from .distortions import Distortion, parse_distortion
from .layouts import Converted, Layout, get_layout
from .modelfiles import CHECKPOINT_KEYS, check_tagger  # noqa: F401  (re-exported)

# ----------------------------------------------------------------------------- checkpoints

def _plain(obj):
    """JSON-like copy (tuples -> lists, numpy -> python) so that ``weights_only`` loading accepts it."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
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
        "model_kwargs": _plain(model_kwargs if model_kwargs is not None else getattr(model, "config", {})),
        "layout": layout or model.layout,
        "classes": list(classes or model.classes),
        "scaler": _plain(scaler) if scaler is not None else None,
        "epoch": int(epoch),
        "metadata": _plain(metadata or {}),
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
    return modelfiles.file_kind(path) == "torchscript"


# ----------------------------------------------------------------------------- scaler

@dataclasses.dataclass(frozen=True)
class Scaler:
    """Per-input, per-feature standardisation and defaults (see the module docstring)."""
    inputs: tuple   # ((name, mean, std, default), ...), arrays as tuples of floats

    @classmethod
    def from_dict(cls, d: dict) -> "Scaler":
        """A scaler from the ``scaler.json`` form: ``{"inputs": {name: {"mean", "std", "default"}}}``."""
        d = d.get("inputs", d)
        rows = []
        for name, p in d.items():
            mean = tuple(float(x) for x in np.atleast_1d(p.get("mean", 0.0)))
            std = tuple(float(x) for x in np.atleast_1d(p.get("std", 1.0)))
            default = tuple(float(x) for x in np.atleast_1d(p.get("default", 0.0)))
            rows.append((name, mean, std, default))
        return cls(tuple(rows))

    @classmethod
    def load(cls, source) -> "Scaler | None":
        """A scaler from a ``scaler.json`` path, its dict, or a scaler (``None`` stays ``None``)."""
        if source is None or isinstance(source, Scaler):
            return source
        if isinstance(source, dict):
            return cls.from_dict(source)
        with open(source) as f:
            return cls.from_dict(json.load(f))

    def to_dict(self) -> dict:
        """The ``scaler.json`` form (:meth:`from_dict` reads it back)."""
        return {"inputs": {n: {"mean": list(m), "std": list(s), "default": list(d)}
                           for n, m, s, d in self.inputs}}

    def apply(self, conv: Converted) -> dict:
        """Scaled copies of the inputs it lists; the other arrays are returned as they are."""
        out = dict(conv.arrays)
        specs = {s.name: s for s in conv.specs}
        for name, mean, std, default in self.inputs:
            if name not in specs:
                raise KeyError(f"scaler input {name!r} is not an input of the layout ({sorted(specs)})")
            spec = specs[name]
            for what, v in (("mean", mean), ("std", std), ("default", default)):
                if len(v) not in (1, len(spec.features)):
                    raise ValueError(f"scaler {what} of {name!r} has {len(v)} values for "
                                     f"{len(spec.features)} features")
            mean, std, default = (spec.per_feature(v) for v in (mean, std, default))
            std = np.where(std > 0, std, 1.0).astype(np.float32)
            with np.errstate(invalid="ignore", over="ignore"):
                x = (conv.arrays[name] - mean) / std
            out[name] = np.where(conv.valid[name], x, default).astype(np.float32)
        return out


def fit_scaler(conv: Converted, inputs=None, default: float = 0.0) -> dict:
    """A scaler dict from converted inputs: mean/std per feature over valid entries only."""
    out = {}
    for spec in conv.specs:
        if not spec.scale or (inputs is not None and spec.name not in inputs):
            continue
        x, ok = conv.arrays[spec.name], conv.valid[spec.name]
        ax = spec.feature_axis % x.ndim
        xm = np.moveaxis(x, ax, -1).reshape(-1, x.shape[ax]).astype(np.float64)
        om = np.moveaxis(ok, ax, -1).reshape(-1, x.shape[ax])
        n = np.maximum(om.sum(0), 1)
        mean = (xm * om).sum(0) / n
        var = (((xm - mean) ** 2) * om).sum(0) / n
        std = np.sqrt(var)
        out[spec.name] = {"mean": mean.tolist(), "std": np.where(std > 0, std, 1.0).tolist(),
                          "default": [default] * x.shape[ax]}
    return {"inputs": out}


# ----------------------------------------------------------------------------- tagger spec

#: Field names that ``vector`` reads as coordinates of a Momentum4D jet record: not tagger names.
RESERVED_NAMES = frozenset({"x", "y", "z", "t", "px", "py", "pz", "E", "e", "energy", "rho", "pt", "phi", "eta",
                            "theta", "mass", "m", "M", "tau", "mt", "Et", "et"})


@dataclasses.dataclass(frozen=True)
class Tagger:
    """A tagger of one pass: picklable description, resolved on the worker by :func:`load_model`.

    ``source``: ONNX file, TorchScript file, jetdask checkpoint or bare ``state_dict`` file.
    ``layout``/``classes``/``model_class``/``model_kwargs``/``scaler``: override (or, for
    TorchScript and bare state dicts, provide) what the checkpoint says. ``device``:
    ``None`` = CUDA when available, else CPU. ``softmax``: apply a softmax to the outputs
    (default: True for jetdask checkpoints, False for TorchScript). ``distortion``: a
    :class:`~jetdask.inference.distortions.Noise` or ``FGSM`` applied to the scaled inputs
    (FGSM needs a torch model). ``output``: the ONNX output to read (default: the first).
    ``device="cuda"`` makes tasks running the tagger ask dask for a ``GPU`` resource
    (:func:`tagger_resources`). The classes registered with :func:`jetdask.models.register_model`
    when the spec is made travel with it to the workers.
    """
    name: str
    source: str
    layout: Any = None
    classes: tuple | None = None
    model_class: str | None = None
    model_kwargs: dict | None = None
    scaler: Any = None
    device: str | None = None
    softmax: bool | None = None
    distortion: Distortion | None = None
    batch_size: int | None = None
    output: str | None = None
    models: tuple = dataclasses.field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if self.models is None:
            from ..models import registered_models
            object.__setattr__(self, "models", tuple(registered_models().items()))
        elif not all(isinstance(m, (tuple, list)) and len(m) == 2 and isinstance(m[0], str) and isinstance(m[1], type)
                     for m in self.models):
            raise ValueError(f"tagger {self.name!r}: models= takes (name, class) pairs")
        else:
            object.__setattr__(self, "models", tuple(tuple(m) for m in self.models))
        if not self.name or self.name in RESERVED_NAMES:
            raise ValueError(f"tagger name {self.name!r} is empty or a four-vector coordinate of the jet "
                             f"records ({sorted(RESERVED_NAMES)})")
        if self.classes is not None:
            object.__setattr__(self, "classes", tuple(self.classes))
        if isinstance(self.distortion, str):
            object.__setattr__(self, "distortion", parse_distortion(self.distortion))

    def variant(self, distortion) -> "Tagger":
        """The same model with ``distortion`` (object or tag ``"noise0.1"``, ``"fgsm0.01"``): ``name@tag``."""
        d = parse_distortion(distortion) if isinstance(distortion, str) else distortion
        return dataclasses.replace(self, name=f"{self.name}@{d.tag}", distortion=d)

    def variants(self, distortions) -> list:
        """``[self, self@d1, self@d2, ...]``."""
        return [self] + [self.variant(d) for d in distortions]


@dataclasses.dataclass
class LoadedModel:
    module: Any
    layout: Layout
    classes: tuple
    scaler: Scaler | None
    softmax: bool
    device: Any
    config: dict
    backend: str = "torch"


def default_device() -> str:
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"


_modules: dict = {}      # (path, mtime_ns, device, model_class, kwargs) -> (module, file info)
_scalers: dict = {}      # (path, mtime_ns) -> Scaler
_lock = threading.Lock()
stats = {"loads": 0, "hits": 0}


def _module(t: Tagger, device: str):
    path = os.path.abspath(t.source)
    try:
        mtime = os.stat(path).st_mtime_ns
    except FileNotFoundError:
        raise FileNotFoundError(f"tagger {t.name!r}: model file {t.source} not found") from None
    key = (path, mtime, device, t.model_class, json.dumps(_plain(t.model_kwargs), sort_keys=True))
    with _lock:
        hit = _modules.get(key)
        if hit is not None:
            stats["hits"] += 1
            return hit
        for k in [k for k in _modules if k[0] == path and k[1] != mtime]:
            del _modules[k]                    # the file changed: drop the stale model
        hit = _modules[key] = _read_model(t, path, device)
        stats["loads"] += 1
        return hit


def _scaler(source) -> Scaler | None:
    if not isinstance(source, str):
        return Scaler.load(source)
    key = (os.path.abspath(source), os.stat(source).st_mtime_ns)
    with _lock:
        if key not in _scalers:
            _scalers[key] = Scaler.load(source)
        return _scalers[key]


def load_model(t: Tagger) -> LoadedModel:
    """The model of ``t`` on its device: loaded once per process and cached (thread safe).

    The cache key is ``(path, mtime, device, model_class, model_kwargs)``: a rewritten
    file is loaded again. Spec overrides (layout, classes, scaler, softmax) are applied
    on top of what the file says.
    """
    import torch
    device = t.device or default_device()
    module, info = _module(t, device)
    layout = t.layout or info.get("layout") or getattr(module, "layout", None)
    classes = t.classes or info.get("classes") or getattr(module, "classes", None)
    if classes is None and layout is not None and not isinstance(layout, Layout):
        from .layout_cmssw import DEFAULT_CLASSES
        classes = DEFAULT_CLASSES.get(layout)
    if layout is None or classes is None:
        raise ValueError(f"tagger {t.name!r}: give layout= and classes= (the model file does not say)")
    layout = get_layout(layout)
    backend = getattr(module, "backend", "torch")
    if backend == "onnx":
        module.check_layout(layout)
    softmax = info["softmax"] if t.softmax is None else bool(t.softmax)
    scaler = _scaler(t.scaler if t.scaler is not None else info.get("scaler"))
    return LoadedModel(module, layout, tuple(classes), scaler, softmax, torch.device(device),
                       info.get("config", {}), backend)


def tagger_resources(taggers) -> dict:
    """dask resources a task running ``taggers`` needs: ``{"GPU": 1}`` when one asks for CUDA, else ``{}``."""
    return {"GPU": 1} if any(str(t.device or "").startswith("cuda") for t in taggers) else {}


def clear_cache() -> None:
    with _lock:
        _modules.clear()
        _scalers.clear()


def _read_model(t: Tagger, path: str, device: str):
    modelfiles.register_models(t.models)
    kind = modelfiles.file_kind(path)
    if kind == "onnx":
        from .batching import torch_threads
        from .onnx_backend import OnnxModel
        return OnnxModel(path, device, torch_threads(), t.output), {"softmax": False, "config": {}}
    if kind == "torchscript":
        module = modelfiles.load_torchscript(path, device)
        info = {"softmax": False, "config": {}}
    else:
        obj = modelfiles.read_torch(path)
        if modelfiles.is_checkpoint(obj):
            ckpt = modelfiles.check_checkpoint(obj, path)
            cls_name = t.model_class or ckpt["model_class"]
            kwargs = t.model_kwargs if t.model_kwargs is not None else ckpt["model_kwargs"]
            module = modelfiles.build_model(cls_name, kwargs, ckpt["state_dict"], path)
            info = {k: ckpt[k] for k in ("layout", "classes", "epoch", "metadata")}
            info["scaler"] = Scaler.load(ckpt["scaler"])
        else:
            if not t.model_class:
                raise ValueError(f"tagger {t.name!r}: {path} is a bare state_dict; give model_class=")
            cls_name = t.model_class
            module = modelfiles.build_model(cls_name, t.model_kwargs or {}, obj, path)
            info = {}
        module = module.to(device)
        info.update(softmax=True, config=dict(getattr(module, "config", {}), model_class=cls_name))
    for p in module.parameters():
        p.requires_grad_(False)
    return module, info
