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
