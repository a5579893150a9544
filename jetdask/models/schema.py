"""Checks a checkpoint's constructor arguments against what the model class declares.

A class declares its arguments either by its constructor signature (named parameters; ``*args``
and ``**kwargs`` accept nothing from a file) or by a class attribute ``kwargs_schema``
``{name: kind or (kinds...)}`` with kinds among :data:`KINDS`. Values must be JSON-like
(None, bool, numbers, strings, lists, dicts of those). Without a schema, a value must have the
kind of the parameter's default (int and float are both ``"number"``, tuples and lists both
``"list"``; a ``None`` default accepts any JSON-like value). Parameters without a default must
be given.
"""
from __future__ import annotations

import inspect

from ..errors import ModelFileError

KINDS = ("null", "bool", "number", "str", "list", "dict")


def kind(value) -> str | None:
    """The JSON kind of ``value``, or None when it is not JSON-like (at any depth)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (list, tuple)):
        return "list" if all(kind(v) is not None for v in value) else None
    if isinstance(value, dict):
        ok = all(isinstance(k, str) and kind(v) is not None for k, v in value.items())
        return "dict" if ok else None
    return None


def declared(cls) -> dict:
    """``{argument: (kinds or None, required)}`` of ``cls`` (None kinds: any JSON-like value)."""
    schema = getattr(cls, "kwargs_schema", None)
    sig = inspect.signature(cls)
    params = {p.name: p for p in sig.parameters.values()
              if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    out = {}
    if schema is not None:
        for name, kinds in dict(schema).items():
            kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
            bad = [k for k in kinds if k not in KINDS]
            if bad:
                raise TypeError(f"{cls.__qualname__}.kwargs_schema[{name!r}]: unknown kinds {bad}; use {KINDS}")
            p = params.get(name)
            out[name] = (kinds, p is not None and p.default is p.empty)
        return out
    for name, p in params.items():
        if p.default is p.empty:
            out[name] = (None, True)
        else:
            k = kind(p.default)
            out[name] = (None if k in (None, "null") else (k,), False)
    return out


def check_kwargs(cls, kwargs, name: str) -> dict:
    """``kwargs`` as a dict if they fit ``cls`` (see the module docstring); else ModelFileError."""
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, dict):
        raise ModelFileError(f"model_kwargs of {name} must be a dict, got {type(kwargs).__name__}")
    decl = declared(cls)
    unknown = sorted(str(k) for k in kwargs if k not in decl)
    if unknown:
        raise ModelFileError(f"model_kwargs {unknown} are not arguments of {name} (declared: {sorted(decl)})")
    missing = sorted(k for k, (_, required) in decl.items() if required and k not in kwargs)
    if missing:
        raise ModelFileError(f"model_kwargs lack the required arguments {missing} of {name}")
    for key, value in kwargs.items():
        k = kind(value)
        if k is None:
            raise ModelFileError(f"model_kwargs[{key!r}] of {name} is not JSON-like ({type(value).__name__})")
        kinds = decl[key][0]
        if kinds is not None and k not in kinds:
            raise ModelFileError(f"model_kwargs[{key!r}] of {name} is a {k}, expected {' or '.join(kinds)}")
    return dict(kwargs)
