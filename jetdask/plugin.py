"""The analysis plugin API.

An analysis declares the branches it reads and a per-chunk function::

    class Dimuon(jetdask.Analysis):
        columns = ["Muon", "optional:genWeight"]

        def process(self, events, chunk):
            h = hist.Hist.new.Reg(60, 60, 120, name="mass").Weight()
            ...
            return jetdask.Result(hists={"mass": h}, counters={"selected": n})

or, in a notebook cell, a function with the decorator::

    @jetdask.analysis(columns=["Muon"])
    def dimuon(events, chunk):
        ...

``chunk.dataset`` and ``chunk.metadata`` (``is_data``, ``xsec``, user keys)
tell the function what it runs on. Analyses must be stateless (they are
shipped to the workers); heavy state such as models is loaded per worker.
Histograms are merged per dataset by the engine, so an analysis does not need a
dataset axis. Arrays in ``Result.arrays`` are written to parquet by the worker.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from types import MappingProxyType
from typing import Callable, Mapping, Sequence

from .errors import ConfigError, JetdaskError
from .result import Result


def ships_by_value(module_name: str, module_file: str | None) -> bool:
    """Whether an analysis defined in this module goes to the workers by value (its code in the
    pickle): yes unless the workers can import it as installed code (jetdask itself, a module of
    an installed distribution or the standard library). A module found on the notebook's
    ``sys.path`` (``analyses/``, a home directory) is not on workers that do not share that
    filesystem (a gateway's, a facility's)."""
    if module_name == "__main__" or not module_file:      # __main__ is shipped by value anyway
        return False
    if module_name == "jetdask" or module_name.startswith("jetdask."):
        return False
    import sysconfig
    parts = os.path.normpath(os.path.abspath(module_file)).split(os.sep)
    if "site-packages" in parts or "dist-packages" in parts:
        return False
    stdlib = os.path.normpath(sysconfig.get_paths()["stdlib"]) + os.sep
    return not os.path.abspath(module_file).startswith(stdlib)


def _ship_module(module_name: str) -> None:
    module = sys.modules.get(module_name)
    if module is not None and ships_by_value(module_name, getattr(module, "__file__", None)):
        import cloudpickle
        cloudpickle.register_pickle_by_value(module)


class Analysis:
    """Base class: set ``columns`` and implement ``process``.

    ``resources``: dask resources every chunk task of this analysis needs (``{"GPU": 1}`` for
    taggers on CUDA, see :func:`jetdask.inference.tagger_resources`); ``{}`` = none.
    A subclass defined outside installed code is shipped to the workers by value
    (:func:`ships_by_value`).
    """

    columns: Sequence[str] = ()
    name: str | None = None
    resources: Mapping[str, float] = MappingProxyType({})   # read-only: a subclass sets its own

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _ship_module(cls.__module__)

    def process(self, events, chunk) -> Result:  # pragma: no cover - interface
        """The analysis of one chunk: ``events`` (the events view), ``chunk`` (:class:`~jetdask.Chunk`)."""
        raise NotImplementedError

    def __call__(self, events, chunk) -> Result:
        return self.process(events, chunk)

    @property
    def label(self) -> str:
        """The name in progress messages and run metadata (``name``, else the class name)."""
        return self.name or type(self).__name__


class FunctionAnalysis(Analysis):
    def __init__(self, fn: Callable, columns: Sequence[str], name: str | None = None):
        self.fn = fn
        self.columns = list(columns)
        self.name = name or getattr(fn, "__name__", "analysis")

    def process(self, events, chunk):
        return self.fn(events, chunk)


def analysis(columns: Sequence[str], name: str | None = None):
    """Decorator turning ``fn(events, chunk) -> Result`` into an :class:`Analysis`."""
    def wrap(fn):
        _ship_module(getattr(fn, "__module__", "") or "")
        return FunctionAnalysis(fn, columns, name)
    return wrap


def _exec_file(path: str):
    """Import an analysis file; a syntax or import error is a ConfigError ``FILE:LINE: message``."""
    import traceback
    modname = "jetdask_user_" + os.path.splitext(os.path.basename(path))[0]
    mspec = importlib.util.spec_from_file_location(modname, path)
    module = importlib.util.module_from_spec(mspec)
    sys.modules[modname] = module
    try:
        mspec.loader.exec_module(module)
    except SyntaxError as err:
        sys.modules.pop(modname, None)
        raise ConfigError(f"{err.filename or path}:{err.lineno}: {type(err).__name__}: {err.msg}", "analysis") from None
    except Exception as err:  # noqa: BLE001 - anything the file raises while it is imported
        sys.modules.pop(modname, None)
        frames = traceback.extract_tb(err.__traceback__)
        mine = [f for f in frames if os.path.abspath(f.filename) == os.path.abspath(path)] or frames[-1:]
        where = f"{mine[-1].filename}:{mine[-1].lineno}" if mine else path
        raise ConfigError(f"{where}: {type(err).__name__}: {err}", "analysis") from None
    return module


def _analyses_in(module) -> list[str]:
    """Names of the analyses (``Analysis`` subclasses and instances) a module defines, else all its public names."""
    found = [k for k, v in vars(module).items() if not k.startswith("_") and v is not Analysis
             and (isinstance(v, Analysis) or (isinstance(v, type) and issubclass(v, Analysis)))]
    return found or [k for k in vars(module) if not k.startswith("_")]


def load_analysis(spec: str, **kwargs) -> Analysis:
    """Load ``path/to/file.py:Name`` or ``package.module:Name`` (class or instance).

    A class is instantiated with ``kwargs`` (JSON-able values: the run directory
    records spec and kwargs so that ``jetdask resubmit`` can rebuild the analysis). Modules loaded from a path are
    shipped to the workers by value (cloudpickle), so the workers do not need
    the file on their ``sys.path``.
    """
    if ":" not in spec:
        raise ConfigError(f"expected FILE.py:NAME or module:NAME, got {spec!r}", "analysis")
    target, name = spec.rsplit(":", 1)
    if target.endswith(".py"):
        if not os.path.exists(target):
            raise ConfigError(f"analysis file {target!r} not found", "analysis")
        module = _exec_file(target)
        import cloudpickle
        cloudpickle.register_pickle_by_value(module)
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as err:
            raise ConfigError(f"cannot import {target!r}: {err}", "analysis") from None
    try:
        obj = getattr(module, name)
    except AttributeError:
        from .suggest import did_you_mean
        raise ConfigError(f"{target!r} has no {name!r}{did_you_mean(name, _analyses_in(module))}", "analysis") from None
    if isinstance(obj, type):
        try:
            obj = obj(**kwargs)
        except JetdaskError:
            raise                       # already names its input (a tagger file, a key)
        except TypeError as err:
            raise ConfigError(f"{spec}: bad arguments ({err}); check --kwargs", "analysis") from None
        except Exception as err:  # noqa: BLE001 - the analysis refused its arguments (a tagger file, ...)
            raise ConfigError(f"{spec}: {type(err).__name__}: {err}", "analysis") from None
    if not isinstance(obj, Analysis):
        raise ConfigError(f"{spec} is not a jetdask.Analysis", "analysis")
    obj._spec = spec
    obj._spec_kwargs = dict(kwargs)
    return obj
