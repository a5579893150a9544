"""The per-process model cache: :func:`load_model` loads each tagger's model once per worker process.

The cache key is ``(path, mtime, device, model_class, model_kwargs)``; a rewritten file is
loaded again. Scalers read from files are cached by ``(path, mtime)``. ``stats`` counts loads
and hits.
"""
from __future__ import annotations

import dataclasses
import json
import os
import threading
from typing import Any

from . import modelfiles
from .checkpoint import plain
from .layouts import Layout, get_layout
from .scaler import Scaler
from .tagger import Tagger


@dataclasses.dataclass
class LoadedModel:
    """A tagger's model as loaded on this process: the module and what it needs around it."""
    module: Any
    layout: Layout
    classes: tuple
    scaler: Scaler | None
    softmax: bool
    device: Any
    config: dict
    backend: str = "torch"


def default_device() -> str:
    """``"cuda"`` when torch sees a GPU, else ``"cpu"``."""
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
    key = (path, mtime, device, t.model_class, json.dumps(plain(t.model_kwargs), sort_keys=True))
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


def clear_cache() -> None:
    """Forget every loaded model and scaler of this process."""
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
