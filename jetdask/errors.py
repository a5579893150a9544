"""Exception classes that carry their context across process boundaries.

Every constructor argument is passed to ``super().__init__`` so that the
exception pickles and unpickles on a dask worker/client round trip (the
``__cause__`` chain is lost in pickling; context therefore lives in the
attributes and in the message).

The engine decides what to do with a failure by the *class* of the exception,
never by its message text:

* :class:`TransientError` subclasses are retried (bounded);
* :class:`MemoryBudgetError` makes the engine split the chunk;
* everything else is deterministic: the chunk fails, the run goes on.
"""
from __future__ import annotations


class JetdaskError(Exception):
    """Base class of jetdask errors."""


class ConfigError(JetdaskError, ValueError):
    """A user configuration (fileset, YAML, CLI option) is invalid.

    ``key`` names the offending entry, e.g. ``"datasets.DY.files[3]"``.
    """

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message, key)
        self.message = message
        self.key = key

    def __str__(self) -> str:
        return f"{self.key}: {self.message}" if self.key else self.message


class FileAccessError(JetdaskError, OSError):
    """A file could not be opened or read (missing, truncated, corrupt)."""

    def __init__(self, path: str, reason: str, transient: bool = False):
        super().__init__(path, reason, transient)
        self.path = path
        self.reason = reason
        self.transient = transient

    def __str__(self) -> str:
        return f"cannot read {self.path}: {self.reason}"


class MissingColumnError(JetdaskError, KeyError):
    """An analysis asked for a branch that the file does not have."""

    def __init__(self, column: str, path: str | None = None, hint: str = ""):
        super().__init__(column, path, hint)
        self.column = column
        self.path = path
        self.hint = hint

    def __str__(self) -> str:
        where = f" in {self.path}" if self.path else ""
        return f"branch or pattern {self.column!r} not found{where}" + (f"; {self.hint}" if self.hint else "")


class ModelFileError(JetdaskError, ValueError):
    """A tagger file or model spec is refused before any of its content runs.

    Unknown model class, arguments that do not match the class's declared ones, a file
    that is neither a jetdask checkpoint, a state dict, TorchScript nor ONNX, weights that
    do not fit the class. ``path``: the file (or None for a spec without one).
    """

    def __init__(self, reason: str, path: str | None = None):
        super().__init__(reason, path)
        self.reason = reason
        self.path = path

    def __str__(self) -> str:
        return f"tagger file {self.path}: {self.reason}" if self.path else self.reason


class TransientError(JetdaskError):
    """A failure worth retrying as is (network I/O, a lost worker)."""


class TransientFileError(TransientError, FileAccessError):
    """A file could not be read for a reason that may go away (server unreachable, timeout).

    ``entries`` is the ``(start, stop)`` range being read, or ``None`` while opening.
    """

    def __init__(self, path: str, reason: str, entries: tuple | None = None):
        Exception.__init__(self, path, reason, entries)
        self.path = path
        self.reason = reason
        self.transient = True
        self.entries = tuple(entries) if entries is not None else None

    def __str__(self) -> str:
        where = f" [{self.entries[0]}, {self.entries[1]})" if self.entries else ""
        return f"cannot read {self.path}{where} (transient): {self.reason}"


class MemoryBudgetError(JetdaskError, MemoryError):
    """A chunk is estimated or observed to exceed the worker's memory budget."""

    def __init__(self, message: str, estimate: int | None = None, budget: int | None = None):
        super().__init__(message, estimate, budget)
        self.message = message
        self.estimate = estimate
        self.budget = budget

    def __str__(self) -> str:
        return self.message


class ChunkError(JetdaskError):
    """A chunk failed; wraps the original error with the chunk's context.

    Attributes hold plain data only (strings, ints) so the error pickles.
    """

    def __init__(self, chunk_id: str, where: str, error_type: str, message: str,
                 traceback: str = "", kind: str = "deterministic",
                 events: list | None = None):
        super().__init__(chunk_id, where, error_type, message, traceback, kind, events)
        self.chunk_id = chunk_id
        self.where = where
        self.error_type = error_type
        self.message = message
        self.traceback = traceback
        self.kind = kind
        self.events = events or []

    def __str__(self) -> str:
        s = f"{self.where}: {self.error_type}: {self.message}"
        if self.events:
            s += " (events " + ", ".join(f"{r}:{lumi}:{e}" for r, lumi, e in self.events[:5]) + ")"
        return s


class ClusterLostError(JetdaskError):
    """No worker for ``jetdask.no-worker-timeout`` seconds: the run stops (exit code 3), resumable."""

    def __init__(self, timeout: float, n_unfinished: int):
        super().__init__(timeout, n_unfinished)
        self.timeout = timeout
        self.n_unfinished = n_unfinished

    def __str__(self) -> str:
        return (f"the cluster had no worker for {self.timeout:.0f} s (jetdask.no-worker-timeout); "
                f"{self.n_unfinished} chunk(s) not finished are pending again: start workers and run "
                f"`jetdask resubmit RUN_DIR` (or the same `jetdask run`) to go on")


class DiskFullError(JetdaskError):
    """No space left (or quota exceeded) where the run writes: the run stops (exit code 3), resumable.

    ``directory``: where the write failed (the run directory for its ledger, ``RUN/output``,
    the arrays' directory of a worker); ``cause``: what could not be written and why.
    """

    def __init__(self, directory: str, cause: str):
        super().__init__(directory, cause)
        self.directory = directory
        self.cause = cause

    def __str__(self) -> str:
        return (f"no space left in {self.directory}: {self.cause}; the run stopped, nothing done is lost: "
                f"free space there and run the same command again (it computes only what is missing)")


class ReservedCounterError(ConfigError):
    """An analysis returned a counter whose name the engine owns (``events``, ``sumw``)."""

    def __init__(self, analysis: str, names: list, reserved: dict):
        ConfigError.__init__(self, "", "analysis")
        self.args = (analysis, list(names), dict(reserved))
        self.analysis = analysis
        self.names = list(names)
        self.reserved = dict(reserved)
        owned = "; ".join(f"{k!r}: {v}" for k, v in self.reserved.items())
        self.message = (f"{analysis} returned the counter(s) {', '.join(map(repr, self.names))}, whose names the "
                        f"engine owns ({owned}); rename them in the analysis' Result (the engine counts these itself)")


class RunIncompleteError(JetdaskError):
    """Raised by the CLI boundary when some chunks failed (exit code 3)."""

    def __init__(self, n_failed: int, run_dir: str):
        super().__init__(n_failed, run_dir)
        self.n_failed = n_failed
        self.run_dir = run_dir

    def __str__(self) -> str:
        return (f"{self.n_failed} chunk(s) failed; see `jetdask status {self.run_dir}` "
                f"and rerun them with `jetdask resubmit {self.run_dir}`")


class RunLockedError(JetdaskError):
    """Another process holds the run directory (``RUN/run.lock``): one run per directory."""

    def __init__(self, run_dir: str, holder: dict | None = None):
        super().__init__(run_dir, holder)
        self.run_dir = run_dir
        self.holder = holder or {}

    def __str__(self) -> str:
        h = self.holder
        if h:
            import time
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(h.get("started", 0)))
            who = f"process {h.get('pid')} on host {h.get('host')} (since {since})"
        else:
            who = "another process"
        return (f"{self.run_dir} is in use by {who}; wait for it to finish or use another run directory "
                f"(`jetdask status {self.run_dir}` reads it meanwhile)")
