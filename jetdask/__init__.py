"""jetdask: columnar PFNano flavour-tagging workflows on dask.distributed.

``import jetdask`` stays light: the engine, torch, dask-jobqueue and matplotlib
are imported only when used.
"""
import sys as _sys

if "multiprocessing" in _sys.modules:   # first, in a worker process that a LocalCluster spawned: the
    import multiprocessing as _mp  # terminal's Ctrl-C reaches it too, but stopping is the client's
    if _mp.current_process().name.startswith("Dask Worker process"):    # (see jetdask.engine.interrupts)
        import signal as _signal
        _signal.signal(_signal.SIGINT, _signal.SIG_IGN)

from . import config as _config  # noqa: F401 - registers the defaults under ``jetdask.``
from ._version import __version__
from .errors import JetdaskError

_LAZY = {
    "Analysis": "plugin", "analysis": "plugin", "load_analysis": "plugin",
    "Result": "result", "Runner": "engine.runner", "Chunk": "chunk",
    "load_fileset": "fileset", "load_output": "engine.outputs", "start_cluster": "cluster",
}

__all__ = ["JetdaskError", "__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib
        mod = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(mod, name)
    raise AttributeError(f"module 'jetdask' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
