"""Defaults through ``dask.config`` under the ``jetdask.`` namespace.

The defaults live in ``config.yaml`` beside this module (one comment per key).
Users override them in their own dask config files, with environment variables
(``DASK_JETDASK__CHUNK_SIZE=50000``) or ``dask.config.set({"jetdask.retries": 5})``.
Nothing is written into the user's config directory.
"""
from __future__ import annotations

import os

import dask.config
import yaml

_fn = os.path.join(os.path.dirname(__file__), "config.yaml")
with open(_fn) as _f:
    _defaults = yaml.safe_load(_f)

dask.config.update_defaults(_defaults)


def get(key: str, override=None):
    """``jetdask.<key>`` from dask.config unless ``override`` is given."""
    if override is not None:
        return override
    return dask.config.get(f"jetdask.{key}")
