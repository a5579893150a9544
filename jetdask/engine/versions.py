"""The workers run the client's jetdask: a worker with another version is refused before any
chunk runs there, with one line naming it and both versions.

Checked twice: on every worker present when a run starts (:func:`check_workers`, a probe that
does not rely on the worker's jetdask code, so any version answers), and on every worker that
joins later, when the run's plugin is set up there (its ``ready`` report carries the worker's
version, :func:`check_ready`; a worker whose jetdask predates the report is refused too).
"""
from __future__ import annotations

import logging

from ..errors import JetdaskError

log = logging.getLogger(__name__)


class VersionMismatchError(JetdaskError):
    """A worker's jetdask is not the client's (another image, environment or checkout)."""

    def __init__(self, worker: str, worker_version: str | None, client_version: str):
        super().__init__(worker, worker_version, client_version)
        self.worker = worker
        self.worker_version = worker_version
        self.client_version = client_version

    def __str__(self) -> str:
        theirs = f"jetdask {self.worker_version}" if self.worker_version else "no jetdask (or one too old to tell)"
        return (f"worker {self.worker} runs {theirs}, this client jetdask {self.client_version}: refused before "
                f"any chunk ran; install the same jetdask on the workers (the cluster's image or environment)")


def client_version() -> str:
    from .. import __version__
    return __version__


def mismatches(mine: str, theirs: dict) -> dict:
    """Workers (address -> version) whose version differs from ``mine``; a pure function."""
    return {w: v for w, v in sorted(theirs.items()) if v != mine}


def _probe():
    def jetdask_version():      # nested: shipped by value, runs whatever jetdask the worker has
        try:
            import jetdask
        except ImportError:
            return None
        return getattr(jetdask, "__version__", None)
    return jetdask_version


def check_workers(client) -> None:
    """Every worker there now runs the client's jetdask; else :class:`VersionMismatchError`."""
    try:
        theirs = client.run(_probe(), on_error="return")
    except Exception as err:  # noqa: BLE001 - the cluster is going away; the run finds out itself
        log.debug("jetdask: the workers' versions could not be read: %r", err)
        return
    theirs = {w: v for w, v in theirs.items() if not isinstance(v, BaseException)}
    bad = mismatches(client_version(), theirs)
    if bad:
        worker, version = next(iter(bad.items()))
        raise VersionMismatchError(worker, version, client_version())


def check_ready(msg: dict) -> bool:
    """True when a worker's ``ready`` report (the run's plugin is set up there) names the client's
    version; else :class:`VersionMismatchError`."""
    if msg.get("version") != client_version():
        raise VersionMismatchError(str(msg.get("worker")), msg.get("version"), client_version())
    return True
