"""The public driver: plans a run, runs its chunks, records every outcome, writes the output.

:class:`Runner` owns the run directory (ledger, outputs); what is recorded of each attempt
(ledger, retry history, counts, progress) goes through one
:class:`~jetdask.engine.recorder.Recorder`, which asks the failure policy
(:mod:`jetdask.engine.policy`) for the action. The loop on dask.distributed is
:mod:`jetdask.engine.dispatcher`, the serial loop (``serial=True``) is below.
"""
from __future__ import annotations

import collections
import contextlib
import logging
import os
import random
import sqlite3
import statistics
import threading
import time
import uuid
from typing import Any, cast

from .. import config
from ..chunk import Chunk
from ..config_schema import validate as validate_config
from ..errors import ConfigError
from ..fileset import Fileset, load_fileset
from ..plugin import Analysis
from ..result import Result
from . import binding, policy
from .diskspace import disk_full
from .ledger import Ledger
from .lock import RunLock
from .outputs import RunOutput, finalize
from .protocol import OPEN_STATES, AttemptKind, ChunkState, Requeue
from .recorder import Recorder
from .runplan import RunPlanning
from .task import run_chunk

log = logging.getLogger(__name__)


class Runner(RunPlanning):
    """Run ``analysis`` over ``fileset`` into ``run_dir``.

    ``client``: a ``distributed.Client`` (any cluster); ``None`` starts a
    LocalCluster; ``serial=True`` runs the chunk tasks in this process (debugging).
    """

    def __init__(self, analysis: Analysis, fileset=None, run_dir: str = "jetdask-run", client=None, *,
                 chunk_size: int | None = None, retries: int | None = None, split_floor: int | None = None,
                 max_inflight: int | None = None, progress: bool = True, serial: bool = False,
                 memory_limit: int | None = None, workers: int | None = None, allow_analysis_change: bool = False):
        self.analysis = analysis
        self.run_dir = os.path.abspath(run_dir)
        validate_config()                                                      # before anything is created
        self.fileset = load_fileset(fileset) if fileset is not None else None
        os.makedirs(self.run_dir, exist_ok=True)
        try:
            self.ledger = Ledger(os.path.join(self.run_dir, "ledger.sqlite"))
        except Exception as err:   # e.g. a ledger to create or migrate on a full disk: one line naming it
            full = disk_full(err, self.run_dir, "the ledger could not be written")
            if full is None:
                raise
            raise full from None
        self._run_lock = RunLock(self.run_dir)
        self.chunk_size = int(chunk_size or self.ledger.get_meta("chunk_size") or config.get("chunk-size"))
        self.retries = int(config.get("retries", retries))
        self.split_floor = int(config.get("split-floor", split_floor))
        self.max_inflight = max_inflight
        self.progress = progress
        self.serial = serial
        self.memory_limit = memory_limit
        self.n_workers = workers
        self.client = client
        self._own_client = False
        self._token = uuid.uuid4().hex[:8]
        self.stats: collections.Counter[str] = collections.Counter()
        self._plan_homes: dict[str, str] = {}  # file path -> worker that planning left it open on
        self._open_seconds: list[float] = []   # what opening each file took at planning
        self._limits = policy.Limits(self.retries, self.split_floor, float(config.get("retry-backoff")),
                                     float(config.get("retry-backoff-max")))
        self._rng = random.Random()
        self._allow_change = allow_analysis_change
        try:
            self._check_fileset()
            # the directory belongs to one analysis (engine/binding.py): refused here, recorded under the lock
            self._identity, self._identity_changes = binding.check(self.ledger, analysis, self.run_dir,
                                                                   allow_analysis_change)
        except BaseException:
            self.ledger.close()
            raise

    # -- setup ---------------------------------------------------------------
    def _check_fileset(self) -> None:
        stored = self.ledger.get_meta("fileset") or self.ledger.get_meta("fileset_planning")
        if self.fileset is None:
            if stored is None:
                raise ConfigError(f"{self.run_dir} is not a jetdask run directory and no fileset was given", "fileset")
            self.fileset = load_fileset(stored)
        elif stored is not None and stored != self.fileset.to_dict():
            raise ConfigError(f"{self.run_dir} was made with another fileset; use a new run directory", "run_dir")
        self.metadata = {d.name: dict(d.metadata) for d in self.fileset}

    def _fileset(self) -> Fileset:
        if self.fileset is None:   # pragma: no cover - set by the constructor (_check_fileset)
            raise RuntimeError("the runner has no fileset")
        return self.fileset

    def _ensure_client(self):
        if self.serial or self.client is not None:
            return
        from ..cluster import start_cluster
        self.client = start_cluster("local", **({"n_workers": self.n_workers} if self.n_workers else {}))
        self._own_client = True

    def close(self):
        """Release the ledger and the run lock, and close the cluster if this runner started it."""
        if self._own_client and self.client is not None:
            from ..cluster import close_cluster
            close_cluster(self.client)
            self.client = None
        while self._run_lock.held:
            self._run_lock.release()
        self.ledger.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _bind(self) -> None:
        """Record the analysis this directory's results come from (the run-lock holder)."""
        if self._identity_changes and self.progress:
            from .progress import say
            say(f"{self.run_dir}: analysis change accepted ({'; '.join(self._identity_changes)})")
        binding.record(self.ledger, self._identity, self._identity_changes)
        self._identity_changes = []

    @contextlib.contextmanager
    def _lock_run(self):
        """Own the run directory (``RUN/run.lock``) while the block runs; RunLockedError if busy.

        However the block ends (done, Ctrl-C, a lost cluster, a full disk), no chunk is left
        ``running`` in the ledger; a full disk becomes one :class:`~jetdask.errors.DiskFullError`
        naming the directory (the ledger's own writes are SQLite errors that name no file)."""
        try:
            with self._run_lock:
                if self._run_lock.depth == 1:
                    self.ledger.begin_writing()
                try:
                    yield
                except BaseException:
                    self._reset_running()
                    raise
                finally:
                    if self._run_lock.depth == 1:
                        self.ledger.end_writing()
        except Exception as err:
            what = "the ledger could not be written" if isinstance(err, sqlite3.Error) else "a write of the run failed"
            full = disk_full(err, self.run_dir, what)
            if full is None or full is err:
                raise
            raise full from None

    def _reset_running(self) -> None:
        """Chunks in flight when the run stopped: pending again (best effort: the disk may be full,
        and ``jetdask status`` reads a ``running`` chunk of a run nobody runs as pending anyway)."""
        try:
            self.ledger.reset_running()
        except Exception as err:  # noqa: BLE001 - the error that stopped the run is the one to report
            log.debug("jetdask: the chunks in flight could not be reset to pending: %r", err)

    # -- public entry points -------------------------------------------------------
    def run(self) -> RunOutput:
        """Plan (or resume) and run every chunk not done yet; failed chunks stay failed."""
        with self._lock_run():
            self._bind()
            self._ensure_client()
            feed = self._plan_start()
            return self._execute(self.ledger.chunks((ChunkState.PENDING,), self.metadata), feed)

    def resubmit(self) -> RunOutput:
        """Run only what is not done: failed chunks, never-finished chunks, unreadable files."""
        with self._lock_run():
            self._bind()
            self._ensure_client()
            feed = self._plan_start()
            self._replan_failed_files()
            self.ledger.clear_history(ChunkState.FAILED)      # a failed chunk gets a full budget again
            return self._execute(self.ledger.chunks(OPEN_STATES, self.metadata), feed)

    def submit(self, resubmit: bool = False) -> "RunHandle":
        """Start the run in a background thread (notebooks): see :class:`RunHandle`."""
        return RunHandle(self, resubmit)

    def partial_result(self) -> dict[str, Result]:
        """The histograms stored so far, per dataset (while the run goes on; earlier runs on the
        directory included), read from the ledger as ``finalize`` reads them: the loop decodes
        no result, and a call costs O(files + chunks not folded yet)."""
        led = Ledger(self.ledger.path, readonly=True)
        try:
            return led.merged()
        finally:
            led.close()

    # -- the loop --------------------------------------------------------------------
    def _options(self) -> dict[str, Any]:
        return {"split_floor": self.split_floor, "memory_limit": self.memory_limit,
                "array_dir": os.path.join(self.run_dir, "arrays"),
                "bisect": bool(config.get("bisect-failures")),
                "bisect_min_events": int(config.get("bisect-min-events")),
                "encode": not self.serial}   # workers encode results (histcodec): the client stores bytes

    def _execute(self, chunks: list[Chunk], feed=None) -> RunOutput:
        from .progress import Progress
        self.progress_bar = Progress.for_run(self, chunks, planning=len(feed) if feed else 0)
        self.recorder = Recorder(self.ledger, self._limits, self.progress_bar, self.stats,
                                 memory_text=self._memory_limit_text, rng=self._rng)
        finished = False
        try:
            if self.serial:
                self._loop_serial(chunks)
            else:
                self._loop_distributed(chunks, feed)
            finished = True
        finally:
            self.progress_bar.close(finished)
            if feed is not None:
                feed.close()
        return finalize(self.run_dir, self.ledger, {      # what plots need, beside the histograms
            "analysis": getattr(self.analysis, "label", None), "fileset": self._fileset().to_dict(),
            "analysis_kwargs": self.ledger.get_meta("analysis_kwargs") or getattr(self.analysis, "_spec_kwargs", {}),
            "analysis_identity": self.ledger.get_meta(binding.META_KEY), "duplicate_files": self.ledger.duplicates(),
            "provenance": self.ledger.get_meta("provenance")})

    def _loop_serial(self, chunks: list[Chunk]) -> None:
        todo = _SerialQueue(chunks)
        while todo.items:
            chunk = todo.items.popleft()
            self.recorder.start([chunk])
            out = run_chunk(self.analysis, chunk, self._options())
            action, again = self.recorder.settle(chunk, policy.Attempt(AttemptKind(out.status)), out)
            todo.put(again, action)

    def _loop_distributed(self, chunks: list[Chunk], feed=None) -> None:
        import cloudpickle

        from .dispatcher import Dispatcher
        from .port import ClusterPort
        cluster = getattr(self.client, "cluster", None)
        target = len(self.client.nthreads())
        scale = (lambda: cluster.scale(target)) if (self._own_client and cluster is not None and target) else None
        port = ClusterPort(self.client, self._token, cloudpickle.dumps(self.analysis), self._options(),
                           resources=getattr(self.analysis, "resources", None))
        Dispatcher(
            self.recorder, port, token=self._token,
            per_thread=int(config.get("inflight-per-thread")), max_inflight=self.max_inflight,
            homes=self._plan_homes, no_worker_timeout=float(config.get("no-worker-timeout")), scale=scale,
            batch_seconds=float(config.get("batch-seconds")),
            open_seconds=statistics.median_high(self._open_seconds) if self._open_seconds else None, feed=feed
        ).run(chunks)

    def _memory_limit_text(self) -> str:
        from ..cluster.local import worker_memory_limits
        try:
            lims = sorted(set(worker_memory_limits(self.client).values()) - {None, 0})
        except (OSError, TimeoutError, RuntimeError, AttributeError) as err:   # gone with the cluster; serial
            log.debug("jetdask: the workers' memory limits could not be read: %r", err)
            return "limit unknown"
        return "worker limit " + ", ".join(f"{x / 2**30:.2f} GiB" for x in lims) if lims else "no limit set"


class _SerialQueue:
    """The serial loop's queue: chunks put back where the policy's action says."""

    def __init__(self, chunks):
        self.items = collections.deque(chunks)

    def put(self, chunks: list[Chunk], action: policy.Action) -> None:
        if action.requeue == Requeue.FRONT:
            self.items.extendleft(reversed(chunks))
            return
        if action.requeue == Requeue.DELAY and action.delay > 0:
            time.sleep(min(action.delay, 5.0))
        self.items.extend(chunks)


class RunHandle:
    """A run in a background thread: ``.partial()`` while it goes, ``.result()`` at the end."""

    def __init__(self, runner: Runner, resubmit: bool = False):
        self.runner = runner
        self._output: RunOutput | None = None
        self._error = None
        self._hold = runner._lock_run()
        self._hold.__enter__()  # a busy run directory fails here, in the caller's thread
        self._thread = threading.Thread(target=self._target, args=(resubmit,), daemon=True, name="jetdask-run")
        self._thread.start()

    def _target(self, resubmit):
        try:
            self._output = self.runner.resubmit() if resubmit else self.runner.run()
        except BaseException as err:  # noqa: BLE001 - surfaced by result(), in the caller's thread
            self._error = err
        finally:
            self._hold.__exit__(None, None, None)

    def done(self) -> bool:
        """True once the run has ended (a method, as dask's ``Future.done()``)."""
        return not self._thread.is_alive()

    def partial(self) -> dict[str, Result]:
        """The results stored so far, per data set (read from the ledger)."""
        return self.runner.partial_result()

    def result(self, timeout: float | None = None) -> RunOutput:
        """Wait (at most ``timeout`` seconds) for the run to end; its output."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("run still in progress")
        if self._error is not None:
            raise self._error
        return cast(RunOutput, self._output)
