"""jetdask: columnar PFNano flavour-tagging workflows on dask.distributed.

``import jetdask`` stays light: torch, dask-jobqueue and matplotlib are imported
only by the modules that use them.
"""
from . import config as _config  # registers defaults under ``jetdask.``
from .errors import JetdaskError

__version__ = "0.1.0"
__all__ = ["JetdaskError", "__version__"]
