"""The driver: plans a run, submits chunk tasks to dask.distributed, records every outcome.

Policy, by outcome of a chunk task (see :mod:`jetdask.engine.task`):

* ``done``: the result is stored in the ledger in the same transaction as the
  state, and added to the live partial result;
* ``split`` (memory estimate over budget) and ``memory`` (``MemoryError``):
  the chunk is replaced by its two halves, down to ``split_floor`` events;
* ``transient``: resubmitted under a new task key, at most ``retries`` times;
* ``failed``: recorded with its reason; the run goes on;
* the worker died (``KilledWorker``): dask charges every task that was on the
  dead worker, so the chunk is only a *suspect*. Suspects are rerun one at a
  time with nothing else in flight; a suspect that completes is innocent, one
  that kills its worker alone is the culprit: it is bisected (memory) down to
  the floor and then failed with a memory reason. Innocent chunks are never
  marked failed.

Every attempt has its own task key (``submit`` returns the existing future for
a key still held). The loop keeps at most ``max_inflight`` tasks in flight and
prefers the worker that already has a chunk's file open.
"""
from __future__ import annotations

import collections
import contextlib
import os
import threading
import time
import uuid
from typing import Any

from .. import config
from ..plugin import Analysis
from ..chunk import Chunk
from ..errors import ConfigError
from ..fileset import load_fileset
from .ledger import Ledger
from .lock import RunLock
from .outputs import RunOutput, finalize
from .planning import plan
from ..result import Result
from .task import Outcome, run_chunk, run_chunk_pickled


class Runner:
    """Run ``analysis`` over ``fileset`` into ``run_dir``.

    ``client``: a ``distributed.Client`` (any cluster); ``None`` starts a
    LocalCluster; ``serial=True`` runs the chunk tasks in this process (debugging).
    """

    def __init__(self, analysis: Analysis, fileset=None, run_dir: str = "jetdask-run", client=None, *,
                 chunk_size: int | None = None, retries: int | None = None, split_floor: int | None = None,
                 max_inflight: int | None = None, progress: bool = True, serial: bool = False,
                 memory_limit: int | None = None, workers: int | None = None):
        self.analysis = analysis
        self.run_dir = os.path.abspath(run_dir)
        os.makedirs(self.run_dir, exist_ok=True)
        self.ledger = Ledger(os.path.join(self.run_dir, "ledger.sqlite"))
        self._run_lock = RunLock(self.run_dir)
        self.fileset = load_fileset(fileset) if fileset is not None else None
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
        self.partial: dict[str, Result] = {}
        self._lock = threading.Lock()
        self.stats = collections.Counter()
        self._plan_homes: dict[str, str] = {}  # file path -> worker that planning left it open on
        self._check_fileset()

    # -- setup ---------------------------------------------------------------
    def _check_fileset(self) -> None:
        stored = self.ledger.get_meta("fileset")
        if self.fileset is None:
            if stored is None:
                raise ConfigError(f"{self.run_dir} is not a jetdask run directory and no fileset was given", "fileset")
            self.fileset = load_fileset(stored)
        elif stored is not None and stored != self.fileset.to_dict():
            raise ConfigError(f"{self.run_dir} was made with another fileset; use a new run directory", "run_dir")
        self.metadata = {d.name: dict(d.metadata) for d in self.fileset}

    def _ensure_client(self):
        if self.serial or self.client is not None:
            return
        from ..cluster import start_cluster
        self.client = start_cluster("local", **({"n_workers": self.n_workers} if self.n_workers else {}))
        self._own_client = True

    def close(self):
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

    def _plan_if_new(self) -> None:
        if self.ledger.get_meta("fileset") is not None:
            n = self.ledger.reset_running()
            if n:
                self.stats["resumed_running"] = n
            return
        p = plan(self.fileset, self.chunk_size, client=None if self.serial else self.client)
        self._note_homes(p)
        self.ledger.add_files(p.files, p.failures)
        self.ledger.add_chunks(p.chunks)
        self.ledger.set_meta("chunk_size", self.chunk_size)
        self.ledger.set_meta("analysis", getattr(self.analysis, "_spec", None))
        self.ledger.set_meta("analysis_kwargs", getattr(self.analysis, "_spec_kwargs", {}))
        self.ledger.set_meta("created", time.time())
        self.ledger.set_meta("fileset", self.fileset.to_dict())  # last: marks planning complete

    def _note_homes(self, p) -> None:
        """Planning left each file open on the worker that inspected it: send its chunks there first."""
        self._plan_homes.update({f["path"]: f["worker"] for f in p.files if f.get("worker")})

    def _replan_failed_files(self) -> None:
        failed = self.ledger.failed_files()
        if not failed:
            return
        from ..fileset import Dataset, FileSpec, Fileset
        sub = Fileset({ds: Dataset(ds, tuple(FileSpec(f["path"], f["tree"]) for f in failed if f["dataset"] == ds),
                                   self.metadata.get(ds, {}))
                       for ds in {f["dataset"] for f in failed}})
        p = plan(sub, self.chunk_size, client=None if self.serial else self.client)
        self._note_homes(p)
        self.ledger.add_files(p.files, p.failures)
        self.ledger.add_chunks(p.chunks)

    @contextlib.contextmanager
    def _lock_run(self):
        """Own the run directory (``RUN/run.lock``) while the block runs; RunLockedError if busy."""
        with self._run_lock:
            if self._run_lock.depth == 1:
                self.ledger.begin_writing()
            try:
                yield
            finally:
                if self._run_lock.depth == 1:
                    self.ledger.end_writing()

    # -- public entry points -------------------------------------------------------
    def run(self) -> RunOutput:
        """Plan (or resume) and run every chunk not done yet; failed chunks stay failed."""
        with self._lock_run():
            self._ensure_client()
            self._plan_if_new()
            return self._execute(self.ledger.chunks(("pending",), self.metadata))

    def resubmit(self) -> RunOutput:
        """Run only what is not done: failed chunks, never-finished chunks, unreadable files."""
        with self._lock_run():
            self._ensure_client()
            self._plan_if_new()
            self._replan_failed_files()
            return self._execute(self.ledger.chunks(("pending", "running", "failed"), self.metadata))

    def submit(self, resubmit: bool = False) -> "RunHandle":
        """Start the run in a background thread (notebooks): see :class:`RunHandle`."""
        return RunHandle(self, resubmit)

    def partial_result(self) -> dict[str, Result]:
        """Copy of the histograms merged so far, per dataset (while the run goes on)."""
        with self._lock:
            return {ds: Result().iadd(r) for ds, r in self.partial.items()}

    # -- the loop --------------------------------------------------------------------
    def _options(self) -> dict[str, Any]:
        return {"split_floor": self.split_floor, "memory_limit": self.memory_limit,
                "array_dir": os.path.join(self.run_dir, "arrays"),
                "bisect": bool(config.get("bisect-failures")),
                "bisect_min_events": int(config.get("bisect-min-events"))}

    def _execute(self, chunks: list[Chunk]) -> RunOutput:
        from .progress import Progress
        total = sum(c.num_entries for c in chunks)
        self.progress_bar = Progress(total, len(chunks), enabled=self.progress,
                                     dashboard=None if self.serial else getattr(self.client, "dashboard_link", None))
        try:
            if self.serial:
                self._loop_serial(chunks)
            else:
                self._loop_distributed(chunks)
        finally:
            self.progress_bar.close()
        return finalize(self.run_dir, self.ledger, {"analysis": getattr(self.analysis, "label", None)})

    def _loop_serial(self, chunks: list[Chunk]) -> None:
        queue = collections.deque(chunks)
        while queue:
            chunk = queue.popleft()
            self.ledger.mark_running(chunk)
            out = run_chunk(self.analysis, chunk, self._options())
            self._handle_outcome(chunk, out, queue, isolated=False)

    def _handle_outcome(self, chunk: Chunk, out: Outcome, queue, isolated: bool, suspects=None) -> None:
        if out.status == "done":
            if not self.ledger.mark_done(chunk, out, out.result):
                return  # already done or split: a late duplicate
            with self._lock:
                self.partial.setdefault(chunk.dataset, Result()).iadd(out.result)
            self.stats["done"] += 1
            self.progress_bar.update(chunk.num_entries, done=True)
        elif out.status in ("split", "memory"):
            if chunk.num_entries > self.split_floor and chunk.num_entries > 1:
                self._split(chunk, out.message or out.error_type, queue, front=True)
            else:
                self._fail(chunk, "memory", out.error_type or "MemoryError",
                           f"{out.message}; chunk of {chunk.num_entries} events at the split floor "
                           f"({self.split_floor}); lower jetdask.split-floor or give workers more memory", out)
        elif out.status == "transient" and self.ledger.attempts(chunk.id) <= self.retries:
            self.stats["retried"] += 1
            queue.append(chunk)
        else:
            kind = "transient" if out.status == "transient" else "error"
            self._fail(chunk, kind, out.error_type, out.message, out)

    def _split(self, chunk: Chunk, reason: str, queue, front: bool) -> None:
        children = chunk.split(2)
        self.ledger.mark_split(chunk, children, reason)
        self.stats["split"] += 1
        if front:
            queue.extendleft(reversed(children))
        else:
            queue.extend(children)

    def _fail(self, chunk: Chunk, kind: str, error_type: str, message: str, out: Outcome | None = None) -> None:
        self.ledger.mark_failed(chunk, kind, error_type, message, out.traceback if out else "", out)
        self.stats["failed"] += 1
        self.progress_bar.update(chunk.num_entries, done=False)

    def _loop_distributed(self, chunks: list[Chunk]) -> None:
        import asyncio

        from distributed import wait

        import cloudpickle

        client = self.client
        options = self._options()
        payload = cloudpickle.dumps(self.analysis)
        queue = collections.deque(chunks)
        suspects: collections.deque[Chunk] = collections.deque()
        inflight: dict[str, tuple[Chunk, bool, Any]] = {}   # key -> (chunk, isolated, worker address)
        futures: dict[str, Any] = {}
        home: dict[str, str] = dict(self._plan_homes)      # file path -> worker address
        load: collections.Counter = collections.Counter()   # worker address -> chunks in flight
        per_thread = int(config.get("inflight-per-thread"))
        self._live_workers = self._workers()

        def capacity(addr):
            return max(1, self._live_workers.get(addr, 1) * per_thread)

        def max_inflight():
            return self.max_inflight or max(1, sum(self._live_workers.values()) * per_thread)

        def pick_worker(chunk: Chunk):
            h = home.get(chunk.path)
            if h in self._live_workers and load[h] < capacity(h):
                return h
            free = [a for a in self._live_workers if load[a] < capacity(a)]
            return min(free, key=lambda a: load[a]) if free else None

        def submit(chunk: Chunk, isolated: bool) -> None:
            self.ledger.mark_running(chunk)
            attempt = self.ledger.attempts(chunk.id)
            key = f"jetdask-{chunk.id}-a{attempt}-{self._token}"
            addr = None if isolated else pick_worker(chunk)
            kw = {"workers": [addr], "allow_other_workers": True} if addr else {}
            fut = client.submit(run_chunk_pickled, payload, chunk, options, key=key, pure=False, retries=0, **kw)
            if addr:
                load[addr] += 1
            inflight[fut.key] = (chunk, isolated, addr)
            futures[fut.key] = fut

        def fill() -> None:
            if suspects:
                if not inflight:
                    submit(suspects.popleft(), isolated=True)
                return
            while queue and len(inflight) < max_inflight():
                submit(queue.popleft(), isolated=False)

        fill()
        last_check = time.monotonic()
        while inflight:
            done_now = [f for f in futures.values() if f.done()]
            if not done_now:
                try:
                    wait(list(futures.values()), timeout=2.0, return_when="FIRST_COMPLETED")
                except (TimeoutError, asyncio.TimeoutError):
                    pass
                done_now = [f for f in futures.values() if f.done()]
            if not done_now or time.monotonic() - last_check > 2.0:
                last_check = time.monotonic()
                self._reassign_lost(futures, inflight, load, suspects)
            for fut in done_now:
                if fut.key not in inflight:
                    continue
                futures.pop(fut.key)
                chunk, isolated, addr = inflight.pop(fut.key)
                if addr:
                    load[addr] -= 1
                self._collect(fut, chunk, isolated, home, queue, suspects)
                fut.release()
            fill()

    def _reassign_lost(self, futures, inflight, load, suspects) -> None:
        """Tasks pinned to a worker that died can wait forever (``no-worker``): make them suspects."""
        current = self._workers()
        gone = set(self._live_workers) - set(current)
        self._live_workers = current
        if not gone:
            return
        self.stats["worker_deaths"] += len(gone)
        for key, (chunk, isolated, addr) in list(inflight.items()):
            if addr in gone and not futures[key].done():
                futures.pop(key).cancel()
                inflight.pop(key)
                load[addr] -= 1
                self.stats["suspects"] += 1
                suspects.append(chunk)

    def _collect(self, fut, chunk: Chunk, isolated: bool, home, queue, suspects) -> None:
        """Turn a finished future into ledger records and the next actions."""
        from distributed.client import FutureCancelledError
        try:
            from distributed import KilledWorker
        except ImportError:  # pragma: no cover
            from distributed.scheduler import KilledWorker

        if fut.status == "finished":
            try:
                out = fut.result()
            except Exception as err:  # the result could not be deserialised
                self._fail(chunk, "error", type(err).__name__, str(err))
                return
            if out.worker_address:
                home[chunk.path] = out.worker_address
            self._handle_outcome(chunk, out, queue, isolated)
            return
        try:
            err = fut.exception()
        except BaseException as e:  # cancelled futures raise here
            err = e
        if isinstance(err, KilledWorker) or fut.status == "lost":
            self._live_workers = self._workers()
            if not isolated:
                self.stats["suspects"] += 1
                suspects.append(chunk)
            elif chunk.num_entries > self.split_floor and chunk.num_entries > 1:
                self._split(chunk, "worker died running this chunk alone", suspects, front=True)
            else:
                self._fail(chunk, "memory", "KilledWorker",
                           f"the worker process died while running this chunk alone (killed for memory: "
                           f"{self._memory_limit_text()}); {chunk.num_entries} events is at the split floor "
                           f"({self.split_floor}); give workers more memory or lower jetdask.split-floor")
        elif isinstance(err, (FutureCancelledError, TimeoutError, OSError)) or fut.status == "cancelled":
            if self.ledger.attempts(chunk.id) <= self.retries:
                self.stats["retried"] += 1
                queue.append(chunk)
            else:
                self._fail(chunk, "transient", type(err).__name__, str(err))
        else:
            self._fail(chunk, "error", type(err).__name__, str(err))

    def _workers(self) -> dict[str, int]:
        try:
            info = self.client.scheduler_info()["workers"]
        except Exception:
            return {}
        return {a: int(w.get("nthreads", 1)) for a, w in info.items()}

    def _memory_limit_text(self) -> str:
        try:
            lims = {w.get("memory_limit") for w in self.client.scheduler_info()["workers"].values()}
            lims = sorted(x for x in lims if x)
            return "worker limit " + ", ".join(f"{x / 2**30:.2f} GiB" for x in lims) if lims else "no limit set"
        except Exception:
            return "limit unknown"


class RunHandle:
    """A run in a background thread: ``.partial()`` while it goes, ``.result()`` at the end."""

    def __init__(self, runner: Runner, resubmit: bool = False):
        self.runner = runner
        self._output = None
        self._error = None
        self._hold = runner._lock_run()
        self._hold.__enter__()  # a busy run directory fails here, in the caller's thread
        self._thread = threading.Thread(target=self._target, args=(resubmit,), daemon=True, name="jetdask-run")
        self._thread.start()

    def _target(self, resubmit):
        try:
            self._output = self.runner.resubmit() if resubmit else self.runner.run()
        except BaseException as err:  # surfaced by result()
            self._error = err
        finally:
            self._hold.__exit__(None, None, None)

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def partial(self) -> dict[str, Result]:
        return self.runner.partial_result()

    def result(self, timeout: float | None = None) -> RunOutput:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("run still in progress")
        if self._error is not None:
            raise self._error
        return self._output
