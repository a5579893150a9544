"""Reading tagger files without running code from them.

=================  ===================================================================
file               how it is read
=================  ===================================================================
``*.onnx``         ``onnxruntime.InferenceSession`` (:mod:`.onnx_backend`): a graph of ONNX
                   operators run by onnxruntime's kernels; no Python runs
TorchScript zip    every pickle in the archive is scanned first (:func:`pickle_globals`):
                   only TorchScript classes (``__torch__.*``) and torch's own tensor
                   rebuilders may appear; then ``torch.jit.load``, which compiles the archived
                   TorchScript (not Python) and runs its graph of torch operators
anything else      ``torch.load(weights_only=True)``: tensors and plain containers only. A
                   jetdask checkpoint names a *registered* model class
                   (:func:`jetdask.models.model_class`); its arguments are checked against
                   the class's declared ones (:mod:`jetdask.models.schema`) before the class
                   is instantiated; a bare state dict needs ``model_class`` in the spec
=================  ===================================================================

Every refusal is a :class:`~jetdask.errors.ModelFileError` naming the file, raised before
any of the file's content is executed.
"""
from __future__ import annotations

import os
import pickletools
import zipfile

from ..errors import ModelFileError

#: The keys of a jetdask checkpoint (``torch.save`` of a dict: :func:`jetdask.inference.checkpoint.save_checkpoint`).
CHECKPOINT_KEYS = ("state_dict", "model_class", "model_kwargs", "layout", "classes", "scaler", "epoch",
                   "metadata")

#: ``module`` prefixes a TorchScript archive's pickles may name (``GLOBAL module name``).
TORCHSCRIPT_MODULES = ("__torch__",)
TORCHSCRIPT_GLOBALS = frozenset({("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_parameter"),
                                 ("torch._utils", "_rebuild_qtensor"), ("torch", "device"),
                                 ("collections", "OrderedDict"), ("torch.jit._pickle", "build_intlist"),
                                 ("torch.jit._pickle", "build_tensorlist"), ("torch.jit._pickle", "build_doublelist"),
                                 ("torch.jit._pickle", "build_boollist"), ("torch.jit._pickle", "restore_type_tag")})
_STORAGES = ("FloatStorage", "DoubleStorage", "HalfStorage", "BFloat16Storage", "LongStorage", "IntStorage",
             "ShortStorage", "CharStorage", "ByteStorage", "BoolStorage")


def file_kind(path: str) -> str:
    """``"onnx"`` (by extension), ``"torchscript"`` (a zip with TorchScript code) or ``"torch"``."""
    if path.lower().endswith(".onnx"):
        return "onnx"
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError):
        return "torch"
    return "torchscript" if any(n.endswith("constants.pkl") or "/code/" in n for n in names) else "torch"


def pickle_globals(data: bytes) -> set:
    """``{(module, name)}`` every GLOBAL / INST of a pickle names, read without unpickling.

    A STACK_GLOBAL (protocol 4) takes its names from the stack, which a static scan cannot follow
    for certain: it is reported as ``("?stack", "<last two strings>")``, which no allow-list
    accepts (TorchScript archives are written with protocol 2 and use GLOBAL only).
    """
    out, strings, memo = set(), [], {}
    try:
        for op, arg, _ in pickletools.genops(data):
            if op.name in ("GLOBAL", "INST"):
                mod, name = arg.split(" ", 1)
                out.add((mod, name))
            elif op.name == "STACK_GLOBAL":     # names from the stack: best effort, "?" marks it
                out.add(("?stack", f"{strings[-2]}.{strings[-1]}" if len(strings) >= 2 else "?"))
            elif op.name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING",
                             "BINSTRING", "STRING"):
                strings.append(str(arg))
            elif op.name == "MEMOIZE":
                memo[len(memo)] = strings[-1] if strings else None
            elif op.name in ("BINPUT", "LONG_BINPUT", "PUT"):
                memo[arg] = strings[-1] if strings else None
            elif op.name in ("BINGET", "LONG_BINGET", "GET") and memo.get(arg) is not None:
                strings.append(memo[arg])
    except Exception as err:  # noqa: BLE001 - truncated or not a pickle: pickletools raises anything
        raise ValueError(f"unreadable pickle ({err})") from None
    return out


def _allowed_in_torchscript(mod: str, name: str) -> bool:
    if mod.split(".", 1)[0] in TORCHSCRIPT_MODULES or (mod, name) in TORCHSCRIPT_GLOBALS:
        return True
    return mod == "torch" and name in _STORAGES


def check_torchscript(path: str) -> None:
    """Refuse a TorchScript archive whose pickles name anything but TorchScript classes and tensors."""
    try:
        with zipfile.ZipFile(path) as z:
            members = [n for n in z.namelist() if n.endswith(".pkl")]
            if not any(n.endswith("data.pkl") for n in members):
                raise ModelFileError("zip archive with TorchScript entries but no data.pkl: not TorchScript", path)
            for n in members:
                try:
                    names = pickle_globals(z.read(n))
                except ValueError as err:
                    raise ModelFileError(f"{n}: {err}", path) from None
                bad = sorted(f"{m}.{c}" for m, c in names if not _allowed_in_torchscript(m, c))
                if bad:
                    raise ModelFileError(f"{n} references {bad[:3]}: not a TorchScript model; refused", path)
    except (zipfile.BadZipFile, OSError) as err:
        raise ModelFileError(f"unreadable archive ({err})", path) from None


def load_torchscript(path: str, device: str):
    import warnings

    import torch
    check_torchscript(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)    # torch.jit.load is "deprecated" in 2.1x
            return torch.jit.load(path, map_location=device).eval()
    except RuntimeError as err:
        raise ModelFileError(f"not a loadable TorchScript model: {_first_line(err)}", path) from None


def _first_line(err) -> str:
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    if not lines:
        return type(err).__name__
    first = lines[0]
    cut = first.find(". ")
    return (first[:cut + 1] if 0 < cut < 200 else first[:200])


def read_torch(path: str):
    """``torch.load(path, weights_only=True)``; anything torch refuses becomes a ModelFileError."""
    import pickle

    import torch
    if file_kind(path) == "torchscript":    # torch.load would hand it to torch.jit.load
        raise ModelFileError("a TorchScript archive, not a jetdask checkpoint or state dict", path)
    import warnings
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")          # pickle-protocol notes: the refusal says enough
            return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError, ImportError,
            TypeError, KeyError, IndexError, zipfile.BadZipFile, UnicodeDecodeError) as err:
        raise ModelFileError("not a jetdask checkpoint, state dict, TorchScript or ONNX file; torch refused "
                             f"to read it with weights_only=True ({type(err).__name__}: {_first_line(err)})",
                             path) from None


def resolve(model_class, model_kwargs, path: str | None = None):
    """``(class, kwargs)`` after the registry and the argument check (nothing is instantiated)."""
    from ..models import canonical_name
    from ..models import model_class as get_class
    from ..models.schema import check_kwargs
    try:
        name = canonical_name(model_class)
        cls = get_class(name)
        return cls, check_kwargs(cls, model_kwargs, name)
    except ModelFileError as err:
        raise ModelFileError(err.reason, path) from None


def build_model(model_class, model_kwargs: dict | None = None, state_dict: dict | None = None,
                path: str | None = None):
    """Instantiate a registered model class with checked arguments and load its weights (strict)."""
    cls, kwargs = resolve(model_class, model_kwargs, path)
    model = cls(**kwargs)
    if state_dict is not None:
        if not isinstance(state_dict, dict):
            raise ModelFileError(f"state_dict is a {type(state_dict).__name__}, not a dict of tensors", path)
        try:
            model.load_state_dict(state_dict)
        except RuntimeError as err:
            raise ModelFileError(f"weights do not fit {model_class} with these arguments: {_first_line(err)}",
                                 path) from None
    return model.eval()


def check_checkpoint(obj, path: str) -> dict:
    """A checkpoint dict with defaults filled in; its model class and arguments checked."""
    if not isinstance(obj, dict) or "state_dict" not in obj:
        raise ModelFileError(f"not a jetdask checkpoint (a dict with {', '.join(CHECKPOINT_KEYS)})", path)
    missing = [k for k in ("model_class", "layout", "classes") if k not in obj]
    if missing:
        raise ModelFileError(f"checkpoint lacks {missing}", path)
    ckpt = dict(obj)
    ckpt.setdefault("model_kwargs", {})
    ckpt.setdefault("scaler", None)
    ckpt.setdefault("epoch", 0)
    ckpt.setdefault("metadata", {})
    return ckpt


def is_checkpoint(obj) -> bool:
    return isinstance(obj, dict) and "state_dict" in obj and "model_class" in obj


def inspect_file(path: str, model_class=None, model_kwargs=None) -> dict:
    """What a tagger file is, checked as :func:`load_model` would check it, without building a model.

    ``{"kind": "onnx" | "torchscript" | "checkpoint" | "state_dict", "layout": ..., "classes": ...}``
    (layout/classes only for checkpoints). Refusals raise ModelFileError.
    """
    if not os.path.exists(path):
        raise ModelFileError("not found", path)
    kind = file_kind(path)
    if kind == "onnx":
        return {"kind": "onnx"}
    if kind == "torchscript":
        load_torchscript(path, "cpu")       # scan + compile, as the workers will
        return {"kind": "torchscript"}
    obj = read_torch(path)
    if is_checkpoint(obj):
        ckpt = check_checkpoint(obj, path)
        resolve(model_class or ckpt["model_class"],
                model_kwargs if model_kwargs is not None else ckpt["model_kwargs"], path)
        return {"kind": "checkpoint", "layout": ckpt["layout"], "classes": ckpt["classes"]}
    if model_class is not None:
        resolve(model_class, model_kwargs or {}, path)
    return {"kind": "state_dict"}


def register_models(models) -> None:
    """Register the ``(name, class)`` pairs a :class:`~.tagger.Tagger` carries (names taken stay)."""
    from ..models import register_model
    for name, cls in models or ():
        try:
            register_model(name, cls)
        except ValueError:
            pass                       # another class holds the name in this process: keep it


def check_tagger(t) -> dict:
    """Open tagger ``t``'s file as the workers will (refusing what would run code), without building the model.

    Returns :func:`inspect_file`'s summary; called on the client (``tagger_columns``) so that a
    refused file stops a run before any cluster starts. ONNX files get a session and, when the
    spec names a layout, the input check.
    """
    path = os.path.abspath(t.source)
    if not os.path.exists(path):
        raise ModelFileError(f"tagger {t.name!r}: not found", t.source)
    register_models(t.models)
    info = inspect_file(path, t.model_class, t.model_kwargs)
    if info["kind"] == "state_dict" and not t.model_class:
        raise ModelFileError(f"tagger {t.name!r}: a bare state_dict; give model_class=", t.source)
    if info["kind"] == "onnx":
        from .layouts import get_layout
        from .onnx_backend import OnnxModel
        model = OnnxModel(path, "cpu", 1, t.output)
        if t.layout is not None:
            model.check_layout(get_layout(t.layout))
    return info
