"""The submit/collect loop on dask.distributed: it never waits on nothing.

One thread-safe queue receives everything the loop reacts to (:class:`~jetdask.engine.protocol.Event`):
finished futures (``add_done_callback``), results fetched by a few threads
(:mod:`jetdask.engine.fetch`), workers joining and leaving with their reason, and chunk tasks
reported started (:mod:`jetdask.engine.departures`). It keeps scheduling state only (what waits,
what is in flight where, a :class:`~jetdask.engine.workerpool.WorkerRecord` per worker) and asks
dask through a :class:`~jetdask.engine.port.ClusterPort`; the policy classifies and decides each
attempt, the run's :class:`~jetdask.engine.recorder.Recorder` records it and says what to queue where. It

* keeps ``inflight-per-thread`` tasks per worker thread in flight (one until the first
  result), each pinned to one worker and taking one slot; a task runs a batch of contiguous
  chunks of one file, handed out so that a file stays on the worker that has it open, and
  only an idle worker helps with another's file (:mod:`jetdask.engine.pending`);
* runs a suspect (a chunk whose worker died) alone on one worker, with all of that
  worker's slots, while the other workers go on;
* retries transient failures after a backoff, reruns a retired worker's chunks without suspicion;
* adds each file's chunks as its planning returns (:mod:`jetdask.engine.planfeed`);
* with no worker left: asks a cluster jetdask started for replacements, waits
  ``jetdask.no-worker-timeout`` seconds for workers to return, and otherwise puts the
  chunks in flight back to pending and raises :class:`jetdask.errors.ClusterLostError`.

A chunk task errs at its worker's first death (a per-task mark of the run's scheduler plugin, never the
scheduler's ``allowed-failures``): deaths are counted here, one kill per bisection level.
"""
from __future__ import annotations

import heapq
import itertools
import logging
import queue as queue_mod
import time

from .. import config
from ..chunk import Chunk
from ..errors import ClusterLostError
from . import policy
from .fetch import RESULT_TIMEOUT, Fetcher, Flight
from .pending import NEVER, Pace, Pending
from .policy import Attempt, Stage
from .protocol import AttemptKind, Departure, Event, Requeue, WorkerAction
from .versions import check_ready
from .workerpool import WorkerPool, WorkerRecord

log = logging.getLogger(__name__)

DEATH_GRACE = 3.0     # seconds a task erred with its worker waits for why it left (a lone chunk: for a memory report)
PINNED_GRACE = 2.0    # seconds after a worker left before its unfinished pinned tasks are resubmitted
RECONCILE = 5.0       # seconds between two checks of the ready workers with the scheduler


class Dispatcher:
    def __init__(self, recorder, port, *, per_thread: int, max_inflight: int | None, homes: dict[str, str],
                 no_worker_timeout: float, token: str = "", scale=None, batch_seconds: float = 0.0,
                 open_seconds: float | None = None, feed=None):
        self.recorder = recorder          # what is recorded of each attempt (engine/recorder.py)
        self.port = port                  # what is asked of dask (engine/port.py)
        self.token = token
        self.per_thread, self.max_inflight, self.batch_seconds = max(1, per_thread), max_inflight, batch_seconds
        self.pace = Pace(open_seconds)              # running means: a chunk's time, a file open
        self.feed = feed                            # files still being planned (engine/planfeed.py), or None
        self.no_worker_timeout = no_worker_timeout
        self.scale = scale                # callable asking the cluster for its workers back, or None
        self.events: queue_mod.Queue = queue_mod.Queue()
        self.fetcher = Fetcher(self.events)         # results fetched off the loop (engine/fetch.py)
        self.flights: dict[str, Flight] = {}
        self.pool = WorkerPool()
        self.undecided: list[tuple[float, Flight, str]] = []   # deaths awaiting the worker's reason
        self.sweeps: list[tuple[float, str]] = []   # (when, worker) to resubmit its stuck pinned tasks
        self.delayed: list = []                     # heap of (ready time, seq, chunk)
        self.pending = Pending(homes, cache_size=int(config.get("file-cache-size")))
        self.suspects: list[Chunk] = []
        self._seq = itertools.count()
        self._no_workers_since: float | None = None
        self._last_scale, self._last_reconcile = 0.0, time.monotonic()

    # -- setup and teardown ---------------------------------------------------------------
    def run(self, chunks: list[Chunk]) -> None:
        with self.port.installed(self.events):
            try:
                self.start(chunks)
                while self._busy():
                    self.step(self._timeout())
            finally:
                self.close()

    def start(self, chunks: list[Chunk]) -> None:
        for addr, n in self.port.ready_workers().items():
            self.pool.set_ready(addr, n)
        known = set(self.pending.home.values()) | set(self.feed.target.values() if self.feed else ())
        for addr in known - self.port.connected() - {None}:   # gone (not merely not ready yet)
            self._drop(addr)
        self.pending.extend(chunks)
        if self.feed is not None:
            self.feed.attach(self.events)

    def close(self) -> None:
        self.fetcher.close()
        if self.feed is not None:
            self.feed.close()
        for f in self.flights.values():
            f.future.cancel()

    # -- the loop ------------------------------------------------------------------------------
    def _busy(self) -> bool:
        return bool(self.pending or self.suspects or self.delayed or self.flights or self.undecided
                    or len(self.fetcher) or (self.feed and len(self.feed)))

    def step(self, timeout: float) -> None:
        """One turn of the loop: submit what fits, then handle what arrived within ``timeout`` seconds."""
        self._release_delayed()
        self._fill()
        try:
            item = self.events.get(timeout=timeout)
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
        self.port.work_left(len(self.pending) + self.pool.held() + len(self.delayed), self.pace.chunk_seconds)

    def _timeout(self) -> float:
        due = [d for d, _, _ in self.undecided] + ([self.delayed[0][0]] if self.delayed else [])
        return max(0.01, min([1.0] + [d - time.monotonic() for d in due]))

    def _handle(self, kind: str, item) -> None:
        if kind == Event.FUTURE:
            flight = self.flights.pop(item.key, None)
            if flight is not None:
                self._unload(flight)
                self._collect(flight)
        elif kind == Event.FETCHED:
            got = self.fetcher.claim(item)
            if got is not None:          # None: given up when its worker died, the chunks already rerun
                self._fetched(*got)
        elif kind == Event.STARTED:
            f = self.flights.get(item.get("key"))
            if f is not None:
                f.started = True
                f.running = max(f.running, int(item.get("index") or 0))
        elif kind == Event.WORKER:
            self._on_worker(item)
        elif kind == Event.PLANNED:
            self._add_planned([self.feed.take(item)])

    def _add_planned(self, files) -> None:
        for got in files:
            if got is not None:
                if self.pool.is_ready(got.home):
                    self.pending.set_home(got.path, got.home)
                self.pace.opened(got.open_seconds)
                self.pending.extend(got.chunks)

    def _unload(self, flight: Flight) -> None:
        self.pool.take_back(flight.worker, flight.future.key, len(flight.chunks))

    # -- workers coming and going ----------------------------------------------------------------
    def _on_worker(self, msg: dict) -> None:
        action, addr = msg.get("action"), str(msg.get("worker"))
        if action == WorkerAction.JOIN:
            w = self.pool.record(addr)
            w.departed, w.lost_results = None, False
        elif action == WorkerAction.READY and check_ready(msg):   # the run's plugin is set up there (another
            if self.pool.record(addr).departed is None:           # jetdask is refused): chunks may be pinned
                self.pool.set_ready(addr, int(msg.get("nthreads") or 1))
                self.pending.note_open(addr, msg.get("files") or ())
                self.pace.opened(float(msg.get("open_seconds") or 0.0))   # its opens in earlier runs
        elif action == WorkerAction.MEMORY_KILL:
            self.pool.record(addr).departed = Departure.MEMORY_KILL
        elif action == WorkerAction.LEAVE:
            w = self.pool.record(addr)
            w.ready = False
            self._drop(addr)
            if w.departed != Departure.MEMORY_KILL:
                w.departed = Departure(msg.get("reason") or Departure.DIED)
            self.recorder.worker_left(w.departed)
            if not msg.get("handed_on"):   # its results died with it (a retirement hands them on)
                w.lost_results = True
                for f in self.fetcher.give_up(addr):
                    self._settle_all(f, Attempt(AttemptKind.LOST))
            self.sweeps.append((time.monotonic() + (0 if w.departed == Departure.RETIRED else PINNED_GRACE), addr))

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
            if self.pool.is_ready(addr):
                continue
            for key, f in list(self.flights.items()):
                if f.worker == addr and not f.future.done():
                    self.flights.pop(key)
                    self._unload(f)
                    f.future.cancel()
                    self._worker_left(f, Attempt(AttemptKind.WORKER_LEFT, f.isolated, started=False,
                                                 departure=self.pool.record(addr).departed or Departure.DIED))

    def _check_workers(self) -> None:
        now = time.monotonic()
        ready = self.pool.ready()
        if now - self._last_reconcile > RECONCILE or not ready:
            self._last_reconcile = now
            try:
                current = self.port.ready_workers()
            except (OSError, TimeoutError) as err:   # the scheduler cannot be reached: no worker can be used
                log.info("jetdask: the scheduler did not answer which workers are ready (%s: %s)",
                         type(err).__name__, err)
                current = {}
            for addr in set(ready) - set(current):
                self.pool[addr].ready = False
                self._drop(addr)
                self.sweeps.append((now + PINNED_GRACE, addr))
            for addr, n in current.items():
                if not self.pool.is_ready(addr):
                    self.pool.set_ready(addr, n)
            ready = self.pool.ready()
        if ready:
            self._no_workers_since = None
            return
        if self._no_workers_since is None:
            self._no_workers_since = now
        if self.scale is not None and now - self._last_scale > 10.0:
            self._last_scale = now
            try:
                self.scale()
            except (OSError, TimeoutError, RuntimeError) as err:   # asked again in 10 s; the timeout decides
                log.info("jetdask: asking the cluster for workers failed (%s: %s)", type(err).__name__, err)
        if now - self._no_workers_since > self.no_worker_timeout and self._busy():
            self._give_up()

    def _give_up(self) -> None:
        back = ([c for f in self.flights.values() for c in f.chunks]
                + [c for f in self.fetcher.give_up() for c in f.chunks]
                + [c for _, f, _ in self.undecided for c in f.chunks]
                + list(self.pending) + list(self.suspects) + [c for _, _, c in self.delayed])
        for f in self.flights.values():
            f.future.cancel()
        self.flights.clear()
        self.undecided.clear()
        self.recorder.unstart(back)     # requeued chunks were marked running at their last submit
        raise ClusterLostError(self.no_worker_timeout, len(back))

    # -- submitting ------------------------------------------------------------------------------
    def _release_delayed(self) -> None:
        now = time.monotonic()
        while self.delayed and self.delayed[0][0] <= now:
            self.pending.push(heapq.heappop(self.delayed)[2])

    def _capacity(self, w: WorkerRecord) -> int:
        warming = self.batch_seconds > 0 and self.pace.chunk_seconds is None   # the first result sizes batches
        return w.nthreads * (1 if warming else self.per_thread)

    def _fill(self) -> None:
        ready = self.pool.ready()
        if not ready:
            return
        while self.suspects:
            free = [a for a in ready if self.pool[a].suspect is None]
            if not free:
                break
            addr = min(free, key=lambda a: self.pool[a].load)
            self._submit([self.suspects.pop(0)], addr, isolated=True)
        open_workers = [a for a in ready if self.pool[a].suspect is None]
        if not open_workers:
            return
        slots = sum(self._capacity(self.pool[a]) for a in open_workers)
        threads = sum(self.pool[a].nthreads for a in open_workers)
        unfinished = len(self.pending) + self.pool.held()    # the loop below moves chunks from one to the other
        limit = self.max_inflight or slots
        normal = sum(1 for f in self.flights.values() if not f.isolated)
        min_steal = self.pace.min_steal(planning=bool(self.feed and len(self.feed)))
        free = [a for a in open_workers if self.pool[a].load < self._capacity(self.pool[a])   # a worker still
                and not (self.feed and self.feed.planning_on(a) and not self.pending.has_home_work(a))]  # opening
        while self.pending and normal < limit and free:                                      # files gets its own
            addr = min(free, key=lambda a: self.pool[a].load)
            w = self.pool[addr]
            n = self.pace.batch(self.batch_seconds, unfinished, threads, w.held, w.nthreads)
            # only an idle worker opens another worker's file for its tail: it knows then what is left
            chunks = self.pending.take(addr, n, NEVER if w.load else min_steal)
            if not chunks:            # nothing worth opening a file for: it waits for the next event
                free.remove(addr)
                continue
            self._submit(chunks, addr, isolated=False)
            normal += 1
            if w.load >= self._capacity(w):
                free.remove(addr)

    def _submit(self, chunks: list[Chunk], addr: str, isolated: bool) -> None:
        attempts = self.recorder.start(chunks)
        batch = f"-n{len(chunks)}" if len(chunks) > 1 else ""
        key = f"jetdask-{chunks[0].id}-a{attempts[0]}{batch}-{self.token}"
        w = self.pool[addr]
        fut = self.port.submit(chunks, addr, key, float(w.nthreads) if isolated else 1.0, isolated)
        self.flights[fut.key] = Flight(chunks, isolated, addr, fut)
        w.load += 1
        w.held += len(chunks)
        if isolated:
            w.suspect = fut.key
        events = self.events
        fut.add_done_callback(lambda f: events.put((Event.FUTURE, f)))

    # -- collecting ------------------------------------------------------------------------------
    def _collect(self, flight: Flight) -> None:
        fut = flight.future
        status, err = fut.status, None
        if status in ("error", "cancelled"):
            try:
                err = fut.exception(timeout=RESULT_TIMEOUT)
            except BaseException as e:  # noqa: BLE001 - a cancelled future raises its cancellation: classified
                err = e
            status = fut.status
        kind = policy.classify(err, Stage.TASK, status)
        if kind == AttemptKind.DONE and not self.pool.lost_results(flight.worker):
            self.fetcher.start(flight)
            return
        if kind == AttemptKind.DONE:    # the result died with its worker: never wait for it
            fut.cancel()
            kind = AttemptKind.LOST
        fut.release()
        if kind == AttemptKind.WORKER_LEFT:
            addr = getattr(getattr(err, "last_worker", None), "address", None) or flight.worker
            flight.worker = addr
            departed = self.pool.record(addr).departed
            if not policy.departure_known(departed, flight.isolated, flight.started):
                self.undecided.append((time.monotonic() + DEATH_GRACE, flight, addr))
                return
            self._worker_left(flight, Attempt(kind, flight.isolated, flight.started,
                                              departure=departed or Departure.DIED))
        elif kind == AttemptKind.LOST:   # "lost" (data gone with a retired worker) or reset: rerun
            self._settle_all(flight, Attempt(kind))
        else:                            # cancelled, or the task itself raised
            for chunk in flight.chunks:
                self._settle(chunk, Attempt(kind), error_type=type(err).__name__, message=str(err))

    def _fetched(self, flight: Flight, outs, err: BaseException | None) -> None:
        if err is not None:              # lost: its worker left with the result before it was fetched
            kind = policy.classify(err, Stage.RESULT)
            for chunk in flight.chunks:
                self._settle(chunk, Attempt(kind), error_type=type(err).__name__,
                             message=f"the result could not be read: {err}")
            return
        for chunk, out in zip(flight.chunks, outs):
            self._time(out)
            self._settle(chunk, Attempt(AttemptKind(out.status), flight.isolated), out)

    def _time(self, out) -> None:
        if out.status == AttemptKind.DONE:
            self.pace.chunk(out.finished - out.started)
        self.pace.opened(out.timings.get("open", 0.0))

    def _resolve_undecided(self) -> None:
        now = time.monotonic()
        keep = []
        for deadline, flight, addr in self.undecided:
            reason = self.pool.record(addr).departed
            if policy.departure_known(reason, flight.isolated, flight.started) or now >= deadline:
                self._worker_left(flight, Attempt(AttemptKind.WORKER_LEFT, flight.isolated, flight.started,
                                                  departure=reason or Departure.DIED))
            else:
                keep.append((deadline, flight, addr))
        self.undecided = keep

    def _worker_left(self, flight: Flight, attempt: Attempt) -> None:
        for chunk, a in zip(flight.chunks, policy.batch_attempts(attempt, len(flight.chunks), flight.running)):
            self._settle(chunk, a, error_type="KilledWorker",
                         message=f"worker {flight.worker} left ({attempt.departure})")

    def _settle_all(self, flight: Flight, attempt: Attempt) -> None:
        for chunk in flight.chunks:
            self._settle(chunk, attempt)

    def _settle(self, chunk: Chunk, attempt: Attempt, out=None, error_type: str = "", message: str = "") -> None:
        """The attempt recorded (decided by the policy); the chunks it gives back queued as it says."""
        action, again = self.recorder.settle(chunk, attempt, out, error_type, message)
        if action.requeue == Requeue.ISOLATE:
            self.suspects.extend(again)
        elif action.requeue == Requeue.DELAY and action.delay > 0:
            for c in again:
                heapq.heappush(self.delayed, (time.monotonic() + action.delay, next(self._seq), c))
        else:
            for c in reversed(again) if action.requeue == Requeue.FRONT else again:
                self.pending.push(c, front=action.requeue == Requeue.FRONT)
