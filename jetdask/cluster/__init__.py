"""Clusters: one entry point, ``start_cluster(kind, **options) -> distributed.Client``.

``kind`` is ``"local"`` (a LocalCluster with real worker processes), ``"slurm"`` or
``"htcondor"`` (dask-jobqueue, TLS by default, adaptive unless ``jobs=`` is given),
``"gateway"`` (a dask-gateway cluster at an analysis facility, :mod:`jetdask.cluster.gateway`),
or a scheduler address (``tcp://host:port``, ``tls://host:port``; TLS files from dask's
configuration or a profile's ``tls`` section, :mod:`jetdask.cluster.address`).
"""
from __future__ import annotations

from .local import close_cluster, start_local, worker_memory_limits

__all__ = ["start_cluster", "close_cluster", "worker_memory_limits"]


def start_cluster(kind: str = "local", **options):
    """A ``distributed.Client`` on a new cluster of ``kind`` or at a scheduler address (see the module)."""
    from ..errors import ConfigError
    if kind == "local":
        return start_local(**options)
    if "://" in kind:
        from .address import connect_address
        return connect_address(kind, **options)
    if kind == "gateway":
        from .gateway import start_gateway
        return start_gateway(**options)
    if kind in ("slurm", "htcondor"):
        from .batch import start_batch
        return start_batch(kind, **options)
    raise ConfigError(f"unknown cluster kind {kind!r}; expected local, slurm, htcondor, gateway or an address",
                      "cluster")
