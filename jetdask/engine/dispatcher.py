"""The submit/collect loop on dask.distributed: it never waits on nothing.

One thread-safe queue receives everything the loop reacts to: finished futures
(``add_done_callback``), results fetched by a few threads (:mod:`jetdask.engine.fetch`),
workers joining and leaving with their reason, and chunk tasks reported started
(:mod:`jetdask.engine.departures`). The loop

* keeps ``inflight-per-thread`` tasks per worker thread in flight (one until the first
  result), each pinned to one worker and taking one slot; a task runs a batch of contiguous
  chunks of one file, handed out so that a file stays on the worker that has it open, and
  only an idle worker helps with another's file (:mod:`jetdask.engine.pending`);
* runs a suspect (a chunk whose worker died) alone on one worker, with all of that
  worker's slots, while the other workers go on;
* turns every outcome into the next action through the pure :func:`jetdask.engine.policy.decide`;
* retries transient failures after an exponential backoff with jitter;
* reruns the chunks of a worker that retired gracefully without suspicion;
* adds each file's chunks as its planning returns (:mod:`jetdask.engine.planfeed`);
* with no worker left: asks a cluster jetdask started for replacements, waits
  ``jetdask.no-worker-timeout`` seconds for workers to return, and otherwise puts the
  chunks in flight back to pending and raises :class:`jetdask.errors.ClusterLostError`.

A chunk task errs at its worker's first death (a per-task mark of the run's scheduler plugin; the
scheduler's ``allowed-failures`` is never changed): deaths are counted here, one kill per bisection level.
"""
from __future__ import annotations

import collections
import heapq
import itertools
import queue as queue_mod
import time

from .. import config
from ..chunk import Chunk
from ..errors import ClusterLostError
from . import policy
from .fetch import RESULT_TIMEOUT, Fetcher, Flight, lost
from .pending import NEVER, Pace, Pending
from .workerside import SLOTS, RunPlugin, check_ready, installed, ready_workers, run_registered

DEATH_GRACE = 3.0     # seconds a task erred with its worker waits for why it left (a lone chunk: for a memory report)
PINNED_GRACE = 2.0    # seconds after a worker left before its unfinished pinned tasks are resubmitted


class Dispatcher:
    def __init__(self, host, client, payload: bytes, options: dict, *, token: str, per_thread: int,
                 max_inflight: int | None, homes: dict[str, str], no_worker_timeout: float,
                 resources: dict | None = None, scale=None, batch_seconds: float = 0.0,
                 open_seconds: float | None = None, feed=None):
        self.host = host                  # the Runner: mark_running, attempt, reset_pending
        self.client, self.payload, self.options, self.token = client, payload, options, token
        self.per_thread = max(1, per_thread)
        self.max_inflight = max_inflight
        self.batch_seconds = batch_seconds
        self.pace = Pace(open_seconds)              # running means: a chunk's time, a file open
        self.feed = feed                            # files still being planned (engine/planfeed.py), or None
        self.no_worker_timeout = no_worker_timeout
        self.extra_resources = dict(resources or {})
        self.scale = scale                # callable asking the cluster for its workers back, or None
        self.plugin_name = f"jetdask-run-{token}"
        self.events: queue_mod.Queue = queue_mod.Queue()
        self.fetcher = Fetcher(self.events)         # results fetched off the loop (engine/fetch.py)
        self.flights: dict[str, Flight] = {}
        self.workers: dict[str, int] = {}
        self.load: collections.Counter = collections.Counter()     # tasks in flight per worker
        self.held: collections.Counter = collections.Counter()     # chunks in flight per worker
        self.suspect_on: dict[str, str] = {}        # worker -> key of the suspect it runs
        self.departed: dict[str, str] = {}          # worker -> reason it left
        self.lost_with: set[str] = set()            # workers that left without handing on their results
        self.undecided: list[tuple[float, Flight, str]] = []   # deaths awaiting the worker's reason
        self.sweeps: list[tuple[float, str]] = []   # (when, worker) to resubmit its stuck pinned tasks
        self.delayed: list = []                     # heap of (ready time, seq, chunk)
        self.pending = Pending(homes, cache_size=int(config.get("file-cache-size")))
        self.suspects: collections.deque[Chunk] = collections.deque()
        self._seq = itertools.count()
        self._no_workers_since: float | None = None
        self._last_scale, self._last_reconcile = 0.0, time.monotonic()

    # -- setup and teardown ---------------------------------------------------------------
    def run(self, chunks: list[Chunk]) -> None:
        with installed(self.client, RunPlugin(self.plugin_name, self.payload), self.events):
            try:
                self.workers = self.client.run_on_scheduler(ready_workers)
                known = set(self.pending.home.values()) | set(self.feed.target.values() if self.feed else ())
                for addr in known - set(self.client.nthreads()) - {None}:   # gone (not merely not ready yet)
                    self._drop(addr)
                self.pending.extend(chunks)
                if self.feed is not None:
                    self.feed.attach(self.events)
                self._loop()
            finally:
                self.fetcher.close()
                if self.feed is not None:
                    self.feed.close()
                for f in self.flights.values():
                    f.future.cancel()

    # -- the loop ------------------------------------------------------------------------------
    def _busy(self) -> bool:
        return bool(self.pending or self.suspects or self.delayed or self.flights or self.undecided
                    or len(self.fetcher) or (self.feed and len(self.feed)))

    def _loop(self) -> None:
        while self._busy():
            self._release_delayed()
            self._fill()
            try:
                item = self.events.get(timeout=self._timeout())
            except queue_mod.Empty:
                item = None
            while item is not None:
                self._handle(*item)
                try:
                    item = self.events.get_nowait()
                except queue_mod.Empty:
                    item = None
            self._resolve_undecided()
            self._sweep()
            self._check_workers()

    def _timeout(self) -> float:
        due = [d for d, _, _ in self.undecided] + ([self.delayed[0][0]] if self.delayed else [])
        return max(0.01, min([1.0] + [d - time.monotonic() for d in due]))

    def _handle(self, kind: str, item) -> None:
        if kind == "future":
            flight = self.flights.pop(item.key, None)
            if flight is not None:
                self._unload(flight)
                self._collect(flight)
        elif kind == "fetched":
            got = self.fetcher.claim(item)
            if got is not None:          # None: given up when its worker died, the chunks already rerun
                self._fetched(*got)
        elif kind == "started":
            f = self.flights.get(item.get("key"))
            if f is not None:
                f.started = True
                f.running = max(f.running, int(item.get("index") or 0))
        elif kind == "worker":
            self._on_worker(item)
        elif kind == "planned":
            self._add_planned([self.feed.take(item)])

    def _add_planned(self, files) -> None:
        for got in files:
            if got is not None:
                if got.home in self.workers:
                    self.pending.set_home(got.path, got.home)
                self.pace.opened(got.open_seconds)
                self.pending.extend(got.chunks)

    def _unload(self, flight: Flight) -> None:
        self.load[flight.worker] -= 1
        self.held[flight.worker] -= len(flight.chunks)
        if self.suspect_on.get(flight.worker) == flight.future.key:
            del self.suspect_on[flight.worker]

    # -- workers coming and going ----------------------------------------------------------------
    def _on_worker(self, msg: dict) -> None:
        action, addr = msg.get("action"), msg.get("worker")
        if action == "join":
            self.departed.pop(addr, None)
            self.lost_with.discard(addr)
        elif action == "ready" and check_ready(msg):   # the run's plugin is set up there (another
            if addr not in self.departed:              # jetdask is refused): chunks may be pinned to it
                self.workers[addr] = int(msg.get("nthreads") or 1)
                self.pending.note_open(addr, msg.get("files") or ())
                self.pace.opened(float(msg.get("open_seconds") or 0.0))   # its opens in earlier runs
        elif action == "memory-kill":
            self.departed[addr] = policy.MEMORY_KILL
        elif action == "leave":
            self.workers.pop(addr, None)
            self._drop(addr)
            if self.departed.get(addr) != policy.MEMORY_KILL:
                self.departed[addr] = msg.get("reason") or policy.DIED
            self.host.stats["workers_" + self.departed[addr]] += 1
            if not msg.get("handed_on"):   # its results died with it (a retirement hands them on)
                self.lost_with.add(addr)
                for f in self.fetcher.give_up(addr):
                    self._rerun_lost(f)
            self.sweeps.append((time.monotonic() + (0 if self.departed[addr] == policy.RETIRED else PINNED_GRACE),
                                addr))

    def _drop(self, addr: str) -> None:
        """``addr`` is gone: its files have no home, and the files it was inspecting go elsewhere."""
        self.pending.drop_worker(addr)
        if self.feed is not None:
            self._add_planned(self.feed.worker_left(addr))

    def _sweep(self) -> None:
        """Tasks pinned to a worker that left and that dask did not err: resubmit them."""
        now = time.monotonic()
        due = [s for s in self.sweeps if s[0] <= now]
        self.sweeps = [s for s in self.sweeps if s[0] > now]
        for _, addr in due:
            if addr in self.workers:
                continue
            for key, f in list(self.flights.items()):
                if f.worker == addr and not f.future.done():
                    self.flights.pop(key)
                    self._unload(f)
                    f.future.cancel()
                    self._decide(f, policy.Attempt(policy.WORKER_LEFT, f.isolated, started=False,
                                                   departure=self.departed.get(addr, policy.DIED)))

    def _check_workers(self) -> None:
        now = time.monotonic()
        if now - self._last_reconcile > 5.0 or not self.workers:
            self._last_reconcile = now
            try:
                current = self.client.run_on_scheduler(ready_workers)
            except Exception:
                current = {}
            for addr in set(self.workers) - set(current):
                self.workers.pop(addr)
                self._drop(addr)
                self.sweeps.append((now + PINNED_GRACE, addr))
            for addr, n in current.items():
                self.workers.setdefault(addr, n)
        if self.workers:
            self._no_workers_since = None
            return
        if self._no_workers_since is None:
            self._no_workers_since = now
        if self.scale is not None and now - self._last_scale > 10.0:
            self._last_scale = now
            try:
                self.scale()
            except Exception:
                pass
        if now - self._no_workers_since > self.no_worker_timeout and self._busy():
            back = ([c for f in self.flights.values() for c in f.chunks]
                    + [c for f in self.fetcher.give_up() for c in f.chunks] + [c for _, f, _ in self.undecided for c in f.chunks]
                    + list(self.pending) + list(self.suspects) + [c for _, _, c in self.delayed])
            for f in self.flights.values():
                f.future.cancel()
            self.flights.clear()
            self.undecided.clear()
            self.host.reset_pending(back)     # requeued chunks were marked running at their last submit
            raise ClusterLostError(self.no_worker_timeout, len(back))

    # -- submitting ------------------------------------------------------------------------------
    def _release_delayed(self) -> None:
        now = time.monotonic()
        while self.delayed and self.delayed[0][0] <= now:
            self.pending.push(heapq.heappop(self.delayed)[2])

    def _capacity(self, addr: str) -> int:
        warming = self.batch_seconds > 0 and self.pace.chunk_seconds is None   # the first result sizes batches
        return self.workers.get(addr, 1) * (1 if warming else self.per_thread)

    def _fill(self) -> None:
        if not self.workers:
            return
        while self.suspects:
            free = [a for a in self.workers if a not in self.suspect_on]
            if not free:
                break
            addr = min(free, key=lambda a: self.load[a])
            self._submit([self.suspects.popleft()], addr, isolated=True)
        open_workers = [a for a in self.workers if a not in self.suspect_on]
        if not open_workers:
            return
        slots = sum(self._capacity(a) for a in open_workers)
        threads = sum(self.workers.get(a, 1) for a in open_workers)
        unfinished = len(self.pending) + sum(self.held.values())   # the loop below moves chunks from one to the other
        limit = self.max_inflight or slots
        normal = sum(1 for f in self.flights.values() if not f.isolated)
        min_steal = self.pace.min_steal(planning=bool(self.feed and len(self.feed)))
        free = [a for a in open_workers if self.load[a] < self._capacity(a)   # a worker still opening files
                and not (self.feed and self.feed.planning_on(a) and not self.pending.has_home_work(a))]  # gets its own
        while self.pending and normal < limit and free:
            addr = min(free, key=lambda a: self.load[a])
            n = self.pace.batch(self.batch_seconds, unfinished, threads, self.held[addr], self.workers.get(addr, 1))
            # only an idle worker opens another worker's file for its tail: it knows then what is left
            chunks = self.pending.take(addr, n, NEVER if self.load[addr] else min_steal)
            if not chunks:            # nothing worth opening a file for: it waits for the next event
                free.remove(addr)
                continue
            self._submit(chunks, addr, isolated=False)
            normal += 1
            if self.load[addr] >= self._capacity(addr):
                free.remove(addr)

    def _submit(self, chunks: list[Chunk], addr: str, isolated: bool) -> None:
        attempts = self.host.mark_running(chunks)
        key = f"jetdask-{chunks[0].id}-a{attempts[0]}" + (f"-n{len(chunks)}" if len(chunks) > 1 else "") + f"-{self.token}"
        slots = float(self.workers.get(addr, 1)) if isolated else 1.0
        fut = self.client.submit(run_registered, self.plugin_name, chunks, self.options, key=key, pure=False,
                                 workers=[addr], allow_other_workers=False, retries=0,
                                 resources={SLOTS: slots, **self.extra_resources}, priority=10 if isolated else 0)
        flight = Flight(chunks, isolated, addr, fut)
        self.host.stats["tasks"] += 1
        self.flights[fut.key] = flight
        self.load[addr] += 1
        self.held[addr] += len(chunks)
        if isolated:
            self.suspect_on[addr] = fut.key
        events = self.events
        fut.add_done_callback(lambda f: events.put(("future", f)))

    # -- collecting ------------------------------------------------------------------------------
    def _collect(self, flight: Flight) -> None:
        from distributed import KilledWorker
        from distributed.client import FutureCancelledError
        fut = flight.future
        status = fut.status
        if status == "finished":
            if self._died(flight.worker):   # the result died with its worker: never wait for it
                fut.cancel()
                fut.release()
                self._rerun_lost(flight)
            else:
                self.fetcher.start(flight)
            return
        if status not in ("error", "cancelled"):   # "lost" (data gone with a retired worker) or reset: rerun
            fut.release()
            self._rerun_lost(flight)
            return
        try:
            err = fut.exception(timeout=RESULT_TIMEOUT)
        except BaseException as e:  # cancelled futures raise here
            err = e
        fut.release()
        if isinstance(err, KilledWorker) or fut.status == "lost":
            addr = getattr(getattr(err, "last_worker", None), "address", None) or flight.worker
            flight.worker = addr
            if not self._reason_known(flight, self.departed.get(addr)):
                self.undecided.append((time.monotonic() + DEATH_GRACE, flight, addr))
                return
            self._decide(flight, policy.Attempt(policy.WORKER_LEFT, flight.isolated, flight.started,
                                                departure=self.departed[addr]))
        elif isinstance(err, (FutureCancelledError, TimeoutError, OSError)) or fut.status == "cancelled":
            for chunk in flight.chunks:
                self.host.apply(chunk, self.host.decide(chunk, policy.Attempt(policy.CANCELLED)),
                                error_type=type(err).__name__, message=str(err))
        else:
            self._fail_all(flight, err, str(err))

    def _died(self, addr: str) -> bool:
        return addr not in self.workers and addr in self.lost_with

    def _fetched(self, flight: Flight, outs, err: BaseException | None) -> None:
        if err is not None:
            if lost(err):                 # its worker left with the result before it was fetched
                self._rerun_lost(flight)
            else:
                self._fail_all(flight, err, f"the result could not be read: {err}")
            return
        for chunk, out in zip(flight.chunks, outs):
            self._time(out)
            self.host.outcome(chunk, out, isolated=flight.isolated)

    def _fail_all(self, flight: Flight, err: BaseException, message: str) -> None:
        for chunk in flight.chunks:
            self.host.apply(chunk, policy.Action("fail", failure="error", reason=str(err)),
                            error_type=type(err).__name__, message=message)

    def _time(self, out) -> None:
        if out.status == "done":
            self.pace.chunk(out.finished - out.started)
        self.pace.opened(out.timings.get("open", 0.0))

    def _rerun_lost(self, flight: Flight) -> None:
        self._decide(flight, policy.Attempt(policy.WORKER_LEFT, flight.isolated, started=False,
                                            departure=policy.RETIRED))

    @staticmethod
    def _reason_known(flight: Flight, reason: str | None) -> bool:
        """A task erred with its worker before the scheduler said why it left (a retirement it
        gave up is only known then); a lone chunk that ran also waits for a memory report."""
        return reason == policy.MEMORY_KILL or (reason is not None and not (flight.isolated and flight.started))

    def _resolve_undecided(self) -> None:
        now = time.monotonic()
        keep = []
        for deadline, flight, addr in self.undecided:
            reason = self.departed.get(addr)
            if self._reason_known(flight, reason) or now >= deadline:
                self._decide(flight, policy.Attempt(policy.WORKER_LEFT, flight.isolated, flight.started,
                                                    departure=reason or policy.DIED))
            else:
                keep.append((deadline, flight, addr))
        self.undecided = keep

    def _decide(self, flight: Flight, attempt: policy.Attempt) -> None:
        for chunk, a in zip(flight.chunks, policy.batch_attempts(attempt, len(flight.chunks), flight.running)):
            action = self.host.decide(chunk, a)
            self.host.apply(chunk, action, error_type="KilledWorker",
                            message=f"worker {flight.worker} left ({attempt.departure}): {action.reason}")

    # -- the host puts follow-up chunks back through these ------------------------------------
    def requeue(self, chunk: Chunk, how: str, delay: float = 0.0) -> None:
        if how == "isolate":
            self.suspects.append(chunk)
        elif how == "delay" and delay > 0:
            heapq.heappush(self.delayed, (time.monotonic() + delay, next(self._seq), chunk))
        else:
            self.pending.push(chunk, front=how == "front")
