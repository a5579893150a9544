"""Clusters: one entry point, ``start_cluster(kind, **options) -> distributed.Client``.

``kind`` is ``"local"`` (a LocalCluster with real worker processes), ``"slurm"`` or
``"htcondor"`` (dask-jobqueue, TLS by default, adaptive unless ``jobs=`` is given), or a
scheduler address (``tcp://host:port``, ``tls://host:port``).
"""
from __future__ import annotations

from .local import close_cluster, connect, start_local, worker_memory_limits

__all__ = ["start_cluster", "close_cluster", "worker_memory_limits"]


def start_cluster(kind: str = "local", **options):
    from ..errors import ConfigError
    if kind == "local":
        return start_local(**options)
    if "://" in kind:
        return connect(kind, **options)
    if kind in ("slurm", "htcondor"):
        from .batch import start_batch
        return start_batch(kind, **options)
    raise ConfigError(f"unknown cluster kind {kind!r}; expected local, slurm, htcondor or an address", "cluster")
