"""Defaults through ``dask.config`` under the ``jetdask.`` namespace.

The defaults live in ``config.yaml`` beside this module (one comment per key).
Users override them in their own dask config files, with environment variables
(``DASK_JETDASK__CHUNK_SIZE=50000``) or ``dask.config.set({"jetdask.retries": 5})``.
Nothing is written into the user's config directory.
"""
from __future__ import annotations

import os
from importlib.resources import files as _files

import dask.config
import yaml

from .errors import ConfigError

_defaults = yaml.safe_load(_files("jetdask").joinpath("config.yaml").read_text())   # package data

dask.config.update_defaults(_defaults)


def get(key: str, override=None):
    """``jetdask.<key>`` from dask.config unless ``override`` is given; sizes in bytes and durations
    in seconds, however they were written (``"2GiB"``, ``"60s"``, or numbers)."""
    from .config_schema import normalise
    return normalise(key, override if override is not None else dask.config.get(f"jetdask.{key}"))


def default(key: str):
    """``jetdask.<key>`` as jetdask ships it (``config.yaml``, whatever the user's dask config says),
    normalised as :func:`get` normalises it: the one place code takes a default of this config from."""
    from .config_schema import normalise
    node = _defaults["jetdask"]
    for part in key.split("."):
        node = node[part]
    return normalise(key, node)


def read_yaml(path: str, key: str) -> dict:
    """The mapping a YAML file holds (``{}`` for an empty file): the one reader of jetdask's YAML
    files. Invalid YAML, or something other than a mapping, is a :class:`ConfigError` naming
    ``path`` and the configuration ``key`` that gave it."""
    with open(path) as f:
        try:
            raw = yaml.safe_load(f) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path} is not valid YAML: {' '.join(str(err).split())}", key) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of keys, not {type(raw).__name__}", key)
    return raw


def read_user_config(source) -> dict:
    """A user's YAML/JSON config as a dict (a copy): from a path, a dict, or ``None`` (empty).

    A missing file or invalid YAML is a :class:`ConfigError` naming ``config``.
    """
    import copy
    if source is None:
        return {}
    if isinstance(source, dict):
        return copy.deepcopy(source)
    path = os.fspath(source)
    if not os.path.exists(path):
        raise ConfigError(f"config file {path!r} not found", "config")
    return read_yaml(path, "config")


def _type_name(types) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true/false", list: "a list",
             dict: "a mapping", type(None): "null"}
    return " or ".join(dict.fromkeys(names.get(t, t.__name__) for t in types))


def check_type(value, types: tuple, key: str):
    """``value`` if it is one of ``types`` (an integer where a float is allowed: as a float; a bool
    only where bool is listed); else a :class:`ConfigError` naming ``key``."""
    if isinstance(value, bool) and bool not in types:
        raise ConfigError(f"expected {_type_name(types)}, got {value!r}", key)
    if float in types and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, types):
        raise ConfigError(f"expected {_type_name(types)}, got {type(value).__name__} {value!r}", key)
    return value


def schema_with_defaults(types: dict, path: str, prefix: str = "") -> dict:
    """A tool's schema for :func:`merge_schema`: ``types`` (``name -> types``, or a nested dict for a
    section) paired with the defaults of its packaged YAML ``path``, the one place they are written.
    That file holds every key of ``types`` and no other (a :class:`ConfigError` naming the key)."""
    return _pair(types, read_yaml(path, "defaults"), path, prefix)


def _pair(types: dict, defaults, path: str, prefix: str) -> dict:
    if not isinstance(defaults, dict) or set(defaults) != set(types):
        missing = sorted(set(types) ^ set(defaults if isinstance(defaults, dict) else ()))
        raise ConfigError(f"{path} must give a default for every key of the schema and no other", prefix + (
            missing[0] if missing else ""))
    return {name: _pair(t, defaults[name], path, f"{prefix}{name}.") if isinstance(t, dict)
            else (t, defaults[name]) for name, t in types.items()}


def merge_schema(schema: dict, given, prefix: str = "") -> dict:
    """A tool's YAML (preprocessing, training) on its schema: every key of ``schema`` (``name ->
    (types, default)``, or a nested schema) with the ``given`` value or the default, type-checked;
    an unknown key is a :class:`ConfigError` naming it, with the closest known one."""
    import copy

    from .suggest import did_you_mean
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise ConfigError(f"expected a mapping, got {type(given).__name__}", prefix or "config")
    unknown = [k for k in given if k not in schema]
    if unknown:
        k = unknown[0]
        hint = did_you_mean(str(k), schema) or f"; known keys: {', '.join(schema)}"
        raise ConfigError(f"unknown key{hint}", f"{prefix}{k}")
    out = {}
    for name, spec in schema.items():
        key = f"{prefix}{name}"
        if isinstance(spec, dict):
            out[name] = merge_schema(spec, given.get(name), key + ".")
            continue
        types, default = spec
        value = given[name] if name in given else copy.deepcopy(default)
        out[name] = check_type(value, types, key)
    return out
