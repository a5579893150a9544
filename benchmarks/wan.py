"""Remote files at WAN latency: the engine over XRootD through a delay-adding proxy vs local files.

    eval "$(bash ../shared/cluster/start-local-xrootd.sh)"    # as root; LOCAL_XROOTD_URL/_EXPORT
    python benchmarks/wan.py [--events 600000] [--delays 0,12,50] [--workers 1,2] [--repeat 2] [--compare-off]
        [--passes 1]

The synthetic PFNano sample (``jetdask.synthetic``: one MC and one data file of ``--events``
events each, 889 branches, as ``jetdask sample`` writes them) is linked into the server's
directory. One ``cluster/latency-proxy.py`` per delay forwards to the server, adding that many
milliseconds each way (0, 12, 50: a round trip of 0, 24, 100 ms). Per worker count, one
LocalCluster of single-threaded workers, all started first; per round, for each worker count in
turn, back to back, with the workers' file caches emptied (every run plans and opens its files):
jetdask on the local files, then on the root://
URLs through each proxy, with prefetch on and (``--compare-off``) off, each remote run right
after a run on the local files (the machine's load moves between runs; the pair is compared),
the order of the remote paths rotating from round to round. Every remote output is compared
bin for bin with the local one run just before it.

Prints a table of medians (events/s), the ratio of each remote run's throughput to that of the
local run just before it (median [min-max] over the rounds), the 2-worker / 1-worker ratio of
each path (runs of one round, minutes apart; median [min-max]), and the workers' memory: the
largest peak RSS of a chunk (the whole worker process), the most bytes read ahead and the most
bytes of open files a worker held at once, against the chunk budget of the memory guard and
``jetdask.prefetch-bytes``; and the CPU seconds each run took of the workers, of this process
(scheduler and dispatcher), of the path's proxy and of the server (on a 2-core machine the
proxy's and the server's CPU is taken from the workers), and the seconds the workers' task
threads spent on a core, runnable but waiting for one (other processes held the cores: the
machine's load), and neither (idle: waiting for bytes or work); from the run's ledger, the
seconds from the run's start to a worker's first chunk (``start``, median of the workers:
planning and the first opens) and a worker's seconds inside chunks (``chunks``, mean of the
workers: reading and the analysis).
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import signal
import sqlite3
import statistics
import sys
import tempfile
import time

import xrootd_bench

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))


def set_prefetch(on: bool) -> None:
    """In a worker: ``jetdask.prefetch`` on or off for the runs that follow; its caches emptied."""
    import dask.config

    from jetdask.nanoaod import io
    dask.config.set({"jetdask.prefetch": on})
    io.clear_cache()
    try:
        from jetdask.nanoaod import prefetch
        prefetch.reset_stats()
    except ImportError:
        pass


def worker_stats() -> dict:
    try:
        from jetdask.nanoaod import prefetch
        return prefetch.stats_snapshot()
    except ImportError:
        return {}


def executor_threads() -> list[int]:
    """In a worker: the native ids of its threads that run tasks (dask's executor)."""
    import threading
    return [t.native_id for t in threading.enumerate() if "Dask-Default-Threads" in t.name]


def task_threads(client) -> list[tuple[int, int]]:
    """``(pid, native thread id)`` of every worker's task threads now."""
    pids, tids = client.run(os.getpid), client.run(executor_threads)
    return [(pids[a], t) for a in pids for t in tids.get(a, [])]


class CPU:
    """Seconds spent by groups of processes between two ``take`` calls: CPU (user + system) of
    each group, and of the workers' task threads (Linux ``/proc/PID/task/TID/schedstat``) the
    time on a core (``compute``) and the time runnable but waiting for a core while other
    processes held them (``queued``: what the machine's load took).

    The task threads change during a run: an inspection of a ``root://`` file leaves its thread
    (``distributed.secede``), the pool starts another, and one of them ends when it rejoins. So
    while a run goes (:meth:`polling`) their list is asked for every ``period`` seconds and the
    counters of every task thread seen are read every ``period / 5``: a thread that ended counts
    up to its last reading (its last few milliseconds are lost, not its whole time)."""

    def __init__(self, groups: dict, threads=None, period: float = 0.5):
        import psutil
        self.groups = {g: [psutil.Process(p) for p in pids if p] for g, pids in groups.items()}
        self.threads = threads      # () -> [(pid, native thread id)] of the task threads now
        self.period = period
        self._seen: dict = {}       # (pid, tid) -> its latest (on a core, waiting for one) seconds
        self._last: dict = {}       # the same at the previous take

    def _read(self, threads) -> None:
        for pid, tid in threads:
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    a, b = f.read().split()[:2]
                self._seen[(pid, tid)] = (int(a) / 1e9, int(b) / 1e9)
            except (OSError, ValueError):        # a thread that ended: its last reading stays
                continue

    @contextlib.contextmanager
    def polling(self):
        """Read the task threads' counters in a background thread while the ``with`` block runs."""
        import threading
        stop = threading.Event()

        def poll():
            threads, asked = [], 0.0
            while not stop.is_set():
                if self.threads and time.monotonic() - asked >= self.period:
                    with contextlib.suppress(Exception):     # a cluster shutting down: keep the last list
                        threads = sorted(set(threads) | set(self.threads()))
                    asked = time.monotonic()
                self._read(threads)
                stop.wait(self.period / 5)
        t = threading.Thread(target=poll, daemon=True)
        t.start()
        try:
            yield
        finally:
            stop.set()
            t.join()

    def take(self) -> dict:
        """Cumulative seconds per group; ``compute``/``queued`` since the previous ``take``."""
        import psutil
        out = {}
        for g, procs in self.groups.items():
            t = 0.0
            for pr in procs:
                try:
                    c = pr.cpu_times()
                    t += c.user + c.system + c.children_user + c.children_system
                except psutil.Error:
                    pass
            out[g] = t
        self._read(self.threads() if self.threads else [])
        now, prev = dict(self._seen), self._last
        self._last = now
        out["compute"] = sum(r - prev.get(k, (0.0, 0.0))[0] for k, (r, _) in now.items())
        out["queued"] = sum(w - prev.get(k, (0.0, 0.0))[1] for k, (_, w) in now.items())
        return out


CPU_COLUMNS = ("workers", "compute", "queued", "idle", "main", "proxy", "server", "start", "chunks")


def _cpu(before: dict, after: dict, wall: float, n_threads: int) -> dict:
    """Seconds per group in a run; ``idle``: the wall time of the ``n_threads`` task slots of the
    cluster that their threads spent neither on a core nor queued for one: waiting for bytes, for
    tasks, for the scheduler (negative when inspections ran beside the slots' threads)."""
    out = {g: after[g] - before[g] for g in after}
    out["compute"], out["queued"] = after["compute"], after["queued"]     # since `before` already
    out["idle"] = n_threads * wall - out["compute"] - out["queued"]
    return out


def engine(fileset_path, analysis, client, runs, chunk_size, prefetch_on: bool, cpu: CPU | None = None):
    from jetdask.engine.outputs import load_output
    from jetdask.engine.runner import Runner
    client.run(set_prefetch, prefetch_on)
    run = tempfile.mkdtemp(dir=runs)
    before = cpu.take() if cpu else {}
    t, t_wall = time.perf_counter(), time.time()
    with cpu.polling() if cpu else contextlib.nullcontext():
        with Runner(analysis, fileset_path, run, client, chunk_size=chunk_size, progress=False) as r:
            out = r.run()
    wall = time.perf_counter() - t
    after = cpu.take() if cpu else {}
    assert out.complete, out.failed
    db = sqlite3.connect(os.path.join(run, "ledger.sqlite"))
    peaks = db.execute("SELECT worker, MAX(peak_rss) FROM chunks WHERE state='done' GROUP BY worker").fetchall()
    spans = db.execute("SELECT worker, MIN(started), SUM(finished - started) FROM chunks WHERE state='done' "
                       "GROUP BY worker").fetchall()
    db.close()
    timeline = {"start": statistics.median(first - t_wall for _, first, _ in spans),
                "chunks": statistics.mean(busy for _, _, busy in spans)}
    stats = client.run(worker_stats)
    return {"wall": wall, "events": sum(c["events"] for c in out.counters.values()), "output": load_output(run),
            "peak_rss": max(p for _, p in peaks),
            "io_peak": max((s.get("held_peak", 0) for s in stats.values()), default=0),
            "files_peak": max((s.get("files_peak", 0) for s in stats.values()), default=0),
            "cpu": {**_cpu(before, after, wall, sum(client.nthreads().values())), **timeline} if cpu else timeline,
            "stats": stats}


def same_output(a, b) -> float:
    """Largest relative difference of any bin or counter of two outputs (raises if they differ in shape)."""
    import numpy as np
    worst = 0.0
    assert set(a.hists) == set(b.hists)
    for ds in a.hists:
        assert set(a.hists[ds]) == set(b.hists[ds])
        for name, h in a.hists[ds].items():
            h2 = b.hists[ds][name]
            for x, y in ((h.values(flow=True), h2.values(flow=True)),
                         (h.variances(flow=True), h2.variances(flow=True))):
                if x is None:
                    continue
                d = np.abs(np.asarray(x) - np.asarray(y)) / np.maximum(np.abs(np.asarray(y)), 1e-300)
                worst = max(worst, float(d.max(initial=0.0)))
        for k, v in a.counters[ds].items():
            worst = max(worst, abs(v - b.counters[ds][k]) / max(abs(b.counters[ds][k]), 1e-300))
    return worst


def _passes(fs: dict, n: int) -> dict:
    """The fileset with each data set listed ``n`` times (``<name>_pass<k>`` after the first)."""
    out = dict(fs)
    for k in range(1, n):
        out.update({f"{name}_pass{k}": copy.deepcopy(ds) for name, ds in fs.items()})
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=600_000, help="events per file (one MC, one data file)")
    ap.add_argument("--chunk-size", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--delays", default="0,12,50", help="one-way delays (ms) of the proxies")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--compare-off", action="store_true", help="also run every remote path with prefetch off")
    ap.add_argument("--memory-limit", default="4GiB", help="per worker")
    xrootd_bench.add_server_args(ap)
    ap.add_argument("--sample-dir", default=None, help="an existing sample (fileset.json inside)")
    ap.add_argument("--passes", type=int, default=1,
                    help="read every file this many times per run (each pass a data set of its own): "
                         "runs long enough that the start's round trips do not dominate")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))     # stops the clusters and proxies on the way out
    xrootd_bench.require_server(args)

    import cloudpickle
    from XRootD import client as xrd

    import engine_analyses
    from engine_analyses import DimuonJets
    from jetdask.cluster import close_cluster, start_local
    from jetdask.engine.memory import chunk_budget
    from jetdask.fileset import load_fileset
    from jetdask.synthetic import generate_sample
    cloudpickle.register_pickle_by_value(engine_analyses)

    os.makedirs(args.workdir, exist_ok=True)
    sample_dir = args.sample_dir or os.path.join(args.workdir, f"wan-sample-{args.events}")
    local_fs = os.path.join(sample_dir, "fileset.json")
    if not os.path.exists(local_fs):
        generate_sample(sample_dir, events=args.events, files=1, seed=3, mismodel=0.5, progress=True)
    fs = _passes(load_fileset(local_fs).to_dict(), args.passes)
    served = xrootd_bench.link_files(fs, args.export, "jetdask-wan")
    server = xrd.URL(args.url)
    delays = [float(x) for x in args.delays.split(",") if x != ""]
    workers = [int(x) for x in args.workers.split(",")]
    analysis = DimuonJets(save_arrays=False)
    runs = tempfile.mkdtemp(dir=args.workdir, prefix="runs-wan-")
    if args.passes > 1:
        local_fs = os.path.join(runs, "local.json")
        with open(local_fs, "w") as f:
            json.dump(fs, f)
    limit = _bytes(args.memory_limit)

    print(f"load average at the start {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    results: dict = {}      # (workers, path) -> list of run dicts
    with xrootd_bench.proxies(server.hostname, server.port, delays) as ports:
        paths = [("local", local_fs, True, None)]
        for d in delays:
            rfs = xrootd_bench.remote_fileset(fs, served, ports[d], "127.0.0.1",
                                              os.path.join(runs, f"remote-{d:g}.json"))
            paths.append((f"{2 * d:g} ms RTT", rfs, True, ports.pids[d]))
            if args.compare_off:
                paths.append((f"{2 * d:g} ms RTT, no prefetch", rfs, False, ports.pids[d]))
        server_pid = xrootd_bench.listening_pid(server.port)
        clients = {}
        try:
            for n in workers:         # all started first: a round runs every worker count, back to back
                clients[n] = start_local(n_workers=n, threads_per_worker=1, memory_limit=args.memory_limit,
                                         dashboard_address=None)
                clients[n].submit(lambda: 1).result()
            worker_pids = {n: list(c.run(os.getpid).values()) for n, c in clients.items()}
            remote_paths = paths[1:]
            for rnd in range(args.repeat + 1):        # round 0: warm-up (page cache, imports), not counted
                k = rnd % len(remote_paths)           # each round starts with another path
                for n, client in clients.items():
                    for name, fileset, on, proxy_pid in remote_paths[k:] + remote_paths[:k]:
                        cpu = CPU({"workers": worker_pids[n], "main": [os.getpid()], "proxy": [proxy_pid],
                                   "server": [server_pid]}, lambda client=client: task_threads(client))
                        # each remote run right after a local one: the machine's load moves between runs
                        local = engine(local_fs, analysis, client, runs, args.chunk_size, True, cpu)
                        got = engine(fileset, analysis, client, runs, args.chunk_size, on, cpu)
                        got["diff"] = same_output(got["output"], local["output"])
                        got["ratio"] = local["wall"] / got["wall"]
                        for row, r in (("local", local), (name, got)):
                            r.pop("output")
                            r["round"] = rnd
                            print(f"workers={n} round={rnd} {row:<28} {r['wall']:6.2f} s "
                                  f"{r['events'] / r['wall']:>9.0f} ev/s  cpu " +
                                  " ".join(f"{g} {r['cpu'].get(g, 0):.2f}" for g in CPU_COLUMNS), flush=True)
                            if rnd:
                                results.setdefault((n, row), []).append(r)
        finally:
            for client in clients.values():
                close_cluster(client)

    budget = chunk_budget(limit)
    print()
    n_files = sum(len(ds["files"]) for ds in fs.values())
    print(f"jetdask, {n_files} files x {args.events} events, {args.chunk_size}-event chunks, "
          f"medians of {args.repeat} rounds; vs local: local wall / this wall, of the local run just before")
    print(f"{'workers':>7}  {'path':<28}{'events/s':>10}{'vs local':>20}{'max diff':>10}"
          f"{'peak RSS':>10}{'ahead':>8}{'files':>8}  s: {' '.join(CPU_COLUMNS)}")
    for (n, name), rs in results.items():
        rate = statistics.median(r["events"] / r["wall"] for r in rs)
        ratios = sorted(r["ratio"] for r in rs if "ratio" in r)
        rtxt = f"{statistics.median(ratios):.2f} [{ratios[0]:.2f}-{ratios[-1]:.2f}]" if ratios else "-"
        diff = max((r.get("diff", 0.0) for r in rs), default=0.0)
        cpu = " ".join(f"{statistics.median(r['cpu'].get(g, 0) for r in rs):.2f}" for g in CPU_COLUMNS)
        print(f"{n:>7}  {name:<28}{rate:>10.0f}{rtxt:>20}{diff:>10.1e}"
              f"{max(r['peak_rss'] for r in rs) / 2**20:>8.0f}Mi{max(r['io_peak'] for r in rs) / 2**20:>6.0f}Mi"
              f"{max(r['files_peak'] for r in rs) / 2**20:>6.0f}Mi  {cpu}")
    if len(workers) > 1:
        lo, hi = min(workers), max(workers)
        print()
        print(f"{hi} workers / {lo} worker, events/s, per round (runs of the same round, minutes apart): "
              f"median [min-max]")
        for name, *_ in paths:
            a = {r["round"]: r["events"] / r["wall"] for r in results.get((lo, name), [])}
            b = {r["round"]: r["events"] / r["wall"] for r in results.get((hi, name), [])}
            per = sorted(b[k] / a[k] for k in a if k in b)
            if per:
                print(f"  {name:<28}{statistics.median(per):6.2f}x [{per[0]:.2f}-{per[-1]:.2f}]")
    print()
    from jetdask import config
    from jetdask.config_schema import size_bytes
    print(f"worker memory limit {limit / 2**30:.1f} GiB, chunk budget {budget / 2**30:.2f} GiB, prefetch-bytes "
          f"{size_bytes(config.get('prefetch-bytes')) / 2**20:.0f} MiB; peak RSS: the largest of any chunk's worker; "
          f"ahead / files: the most bytes a worker held read ahead / in open files; CPU s: medians per run "
          f"(user + system) of the workers, this process (scheduler, dispatcher), the path's proxy, the server; "
          f"compute / queued / idle: the workers' task threads' seconds on a core / runnable but waiting for a core "
          f"(the machine's load) / neither (waiting for bytes or work); start: s to a worker's first chunk; "
          f"chunks: a worker's s inside chunks")
    print(f"load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def _bytes(size: str) -> int:
    from dask.utils import parse_bytes
    return parse_bytes(size)


if __name__ == "__main__":
    main()
