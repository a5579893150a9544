"""Engine overhead and scaling on synthetic PFNano: jetdask vs a plain uproot.iterate loop.

    python benchmarks/engine.py [--events 500000] [--chunks 50000,10000] [--repeat 3]

The sample (cached under ``benchmarks/.cache/``, shared with ``benchmarks/events_view.py``):
one MC-like and one data-like file of ``--events`` events each (889 branches, 6.9 kB/event),
so 1M events by default. The analysis is the dimuon+jets selection of the engine tests
(histograms and counters). Rows:

* overhead, per chunk size: ``plain`` = the analysis in this process over ``uproot.iterate``
  steps of that size (opening the files), against jetdask on a LocalCluster of 1 worker
  (1 thread, started and warmed up with one run in each round) whose file cache is emptied before each run, so
  that the run opens the files as the plain loop does. Each round runs both back to back; the
  ratio plain/engine is taken per round and quoted as median [min-max]. The fixed cost per run
  is engine minus plain time, per round; the engine's phases (Runner construction, planning
  until the last file is planned (the first files' chunks start before), the chunk tasks,
  the final merge) are timed beside it;
* CPU time: this process for the plain loop; for the engine this process (client, scheduler)
  plus the worker process (idle baseline of a worker and of the client process: ~0.02 s/s each);
  on a machine shared with other jobs the CPU ratio is steadier than the wall-time ratio;
* scaling: the same runs on 1 and 2 workers, chunks of the first ``--chunks`` size, back to
  back per round; each round starts a LocalCluster of 1, then of 2 workers, warms it up with
  one run and closes it after its rows (only one cluster is up at a time: an idle cluster's
  scheduler and workers take CPU from the busy ones when every core runs a worker). Beside
  them the plain loop split over 2 processes (one file each, a warm process pool): what this
  machine gives two processes at once, the ceiling for 2 workers here.

On a machine shared with other jobs wall times vary a lot; compare only ratios of one run.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
sys.path.insert(0, HERE)


def plain(fileset, analysis, step, requested):
    """The analysis in this process over ``uproot.iterate`` steps of ``step`` events."""
    import uproot

    from jetdask.chunk import Chunk
    from jetdask.nanoaod import uproot_speedups
    from jetdask.nanoaod.columns import resolve_columns
    from jetdask.nanoaod.events import events_from_arrays
    uproot_speedups.apply()     # as the run's workers have them (in the pool processes too)
    n = 0
    for ds in fileset:
        for f in ds.files:
            start = 0
            tree = uproot.open(f.path, array_cache=None)[f.tree]
            branches = resolve_columns(tree.keys(), requested)
            for arrays in tree.iterate(branches, step_size=step, how=dict):
                ev = events_from_arrays(arrays, entry_start=start)
                k = len(ev)
                analysis(ev, Chunk(ds.name, f.path, f.tree, start, start + k, "x", dict(ds.metadata)))
                start += k
                n += k
            tree.file.close()
    return n


def plain_datasets(fileset_path, names, step, requested):
    """:func:`plain` over the data sets ``names`` of a fileset (in a pool process)."""
    from engine_analyses import DimuonJets
    from jetdask.fileset import load_fileset
    fs = [d for d in load_fileset(fileset_path) if d.name in names]
    return plain(fs, DimuonJets(save_arrays=False), step, requested)


def cpu_seconds(client=None) -> tuple[float, float]:
    """CPU time (user + system) of this process (client and scheduler) and of ``client``'s workers."""
    import psutil

    def cpu(pid):
        try:
            t = psutil.Process(pid).cpu_times()
            return t.user + t.system
        except psutil.Error:
            return 0.0
    pids = [] if client is None else client._jetdask_bench_pids
    return cpu(os.getpid()), sum(cpu(p) for p in pids)


class Phases:
    """Wall time of the engine's phases in one run (Runner construction, plan, loop, merge)."""

    def __init__(self):
        self.times: dict[str, float] = {}

    def wrap(self, name, fn):
        def timed(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self.times[name] = self.times.get(name, 0.0) + time.perf_counter() - t
        return timed


def engine(fileset_path, analysis, chunk, client, workdir, phases: Phases | None = None):
    from jetdask.engine import runner as runner_mod
    client.run(lambda: __import__("jetdask.nanoaod.io", fromlist=["clear_cache"]).clear_cache())
    run = tempfile.mkdtemp(dir=workdir)
    ph = phases or Phases()
    t = time.perf_counter()
    r = runner_mod.Runner(analysis, fileset_path, run, client, chunk_size=chunk, progress=False)
    ph.times["init"] = time.perf_counter() - t
    orig_planned, orig_final = r._planned, runner_mod.finalize
    t = time.perf_counter()

    def planned(p):   # the last file is planned (chunks of the others may run already)
        ph.times["plan"] = time.perf_counter() - t
        return orig_planned(p)
    r._planned = planned
    runner_mod.finalize = ph.wrap("finalize", orig_final)
    try:
        with r:
            t = time.perf_counter()
            out = r.run()
            ph.times["run"] = time.perf_counter() - t
    finally:
        runner_mod.finalize = orig_final
    assert out.complete, out.counts
    import sqlite3
    with sqlite3.connect(os.path.join(run, "ledger.sqlite")) as db:
        ph.times["tasks"] = db.execute("SELECT SUM(finished - started) FROM chunks WHERE state='done'").fetchone()[0]
    shutil.rmtree(run, ignore_errors=True)
    return sum(c["events"] for c in out.counters.values())


def _noop(x):
    return x


def dask_task_cost(client, n=100) -> tuple[float, float]:
    """CPU seconds per task (client and scheduler process, worker) of ``n`` sequential no-op tasks."""
    m, w = cpu_seconds(client)
    for i in range(n):
        client.submit(_noop, i, pure=False).result()
    m2, w2 = cpu_seconds(client)
    return (m2 - m) / n, (w2 - w) / n


def file_opens(client) -> int:
    """Files opened so far by the workers of ``client`` (planning and chunk tasks)."""
    stats = client.run(lambda: __import__("jetdask.nanoaod.io", fromlist=["stats"]).stats)
    return sum(s["opens"] for s in stats.values())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=500_000, help="events per file (one MC, one data file)")
    ap.add_argument("--chunks", default="50000,10000", help="chunk sizes of the overhead rows")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-scaling", action="store_true", help="skip the 2-worker runs")
    ap.add_argument("--workdir", default=os.path.join(HERE, ".cache"))
    args = ap.parse_args()

    import cloudpickle
    from events_view import sample

    import engine_analyses
    from engine_analyses import DimuonJets
    from jetdask.cluster import close_cluster, start_local
    from jetdask.engine.task import ID_COLUMNS
    from jetdask.fileset import load_fileset
    cloudpickle.register_pickle_by_value(engine_analyses)

    os.makedirs(args.workdir, exist_ok=True)
    fs_path = sample(args.workdir, args.events)
    fs = load_fileset(fs_path)
    analysis = DimuonJets(save_arrays=False)  # histograms and counters, as the plain loop
    requested = list(analysis.columns) + ID_COLUMNS
    sizes = [int(x) for x in args.chunks.split(",")]
    runs = os.path.join(args.workdir, "runs")
    shutil.rmtree(runs, ignore_errors=True)
    os.makedirs(runs)

    def cluster(n):
        c = start_local(n_workers=n, threads_per_worker=1, memory_limit="6GiB", dashboard_address=None)
        c.submit(lambda: 1).result()
        c._jetdask_bench_pids = list(c.run(os.getpid).values())
        return c

    times: dict = {}
    opens: list = []
    cpu: dict = {}
    phases: dict = {}
    counts: dict = {}

    def record(key, t, n, ph=None, c=None):
        times.setdefault(key, []).append(t)
        cpu.setdefault(key, []).append(c)
        counts[key] = n
        if ph is not None:
            phases.setdefault(key, []).append(ph.times)

    def warm_cluster(n):
        c = cluster(n)
        engine(fs_path, analysis, sizes[0], c, runs)   # imports, the analysis unpickled on the workers
        return c

    pool = None
    if not args.no_scaling:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
        names = [[d.name] for d in fs]
    dask_cost = None
    try:
        # only one cluster is up at a time: an idle cluster's scheduler and workers take CPU
        # from the busy ones when the cores are all in use (the 2-worker runs)
        for rnd in range(args.repeat + 1):  # round 0 warms up (imports in this process and the pool)
            c1 = warm_cluster(1)
            try:
                for size in sizes:
                    t, c = time.perf_counter(), cpu_seconds()[0]
                    n = plain(fs, analysis, size, requested)
                    tp, cp = time.perf_counter() - t, cpu_seconds()[0] - c
                    ph = Phases()
                    t, (cm, cw) = time.perf_counter(), cpu_seconds(c1)
                    ne = engine(fs_path, analysis, size, c1, runs, ph)
                    te = time.perf_counter() - t
                    cm2, cw2 = cpu_seconds(c1)
                    ce = (cm2 - cm) + (cw2 - cw)
                    ph.times["cpu_main"], ph.times["cpu_worker"] = cm2 - cm, cw2 - cw
                    if rnd:
                        record(("plain", size), tp, n, c=cp)
                        record(("engine", 1, size), te, ne, ph, c=ce)
                if rnd == args.repeat:
                    dask_cost = dask_task_cost(c1)
            finally:
                close_cluster(c1)
            if not args.no_scaling:
                c2 = warm_cluster(2)
                try:
                    o = file_opens(c2)
                    ph2 = Phases()
                    t = time.perf_counter()
                    n2 = engine(fs_path, analysis, sizes[0], c2, runs, ph2)
                    if rnd:
                        record(("engine", 2, sizes[0]), time.perf_counter() - t, n2, ph2)
                        opens.append(file_opens(c2) - o)
                finally:
                    close_cluster(c2)
                t = time.perf_counter()
                n2 = sum(pool.map(plain_datasets, [fs_path] * len(names), names, [sizes[0]] * len(names),
                                  [requested] * len(names)))
                if rnd:
                    record(("plain", sizes[0], 2), time.perf_counter() - t, n2)
    finally:
        if pool is not None:
            pool.shutdown()

    def label(key):
        if key[0] == "plain":
            procs = "one process" if len(key) == 2 else f"{key[2]} processes (a file each)"
            return f"plain uproot.iterate, {procs}, {key[1] // 1000}k steps"
        return f"jetdask, {key[1]} worker{'s' if key[1] > 1 else ''}, {key[2] // 1000}k chunks"

    def paired(num, den, table=times):
        r = sorted(a / b for a, b in zip(table[num], table[den]))
        return f"{statistics.median(r):.2f} [{r[0]:.2f}-{r[-1]:.2f}]"

    print(f"\n{counts[('plain', sizes[0])]} events in {len(fs.datasets)} files; medians of {args.repeat} rounds "
          f"(each round: every row once, back to back)")
    print(f"{'path':<48}{'time [s]':>10}{'events/s':>12}{'CPU [s]':>10}")
    for key, ts in sorted(times.items(), key=lambda kv: (-max(k for k in kv[0] if isinstance(k, int)), str(kv[0]))):
        med = statistics.median(ts)
        cs = [c for c in cpu[key] if c is not None]
        c_txt = f"{statistics.median(cs):>10.2f}" if cs else ""
        print(f"{label(key):<48}{med:>10.2f}{counts[key] / med:>12.0f}{c_txt}")
    print("\nper-round ratios, median [min-max]:")
    for size in sizes:
        fixed = sorted(e - p for e, p in zip(times[("engine", 1, size)], times[("plain", size)]))
        extra_cpu = sorted(e - p for e, p in zip(cpu[("engine", 1, size)], cpu[("plain", size)]))
        ph = {k: statistics.median(p.get(k, 0.0) for p in phases[("engine", 1, size)])
              for k in ("init", "plan", "tasks", "run", "finalize", "cpu_main", "cpu_worker")}
        idle = ph["run"] - ph["tasks"] - ph["finalize"]
        print(f"  {size // 1000}k chunks: engine (1 worker) / plain throughput "
              f"{paired(('plain', size), ('engine', 1, size))} by wall time, "
              f"{paired(('plain', size), ('engine', 1, size), cpu)} by CPU time (all processes)")
        print(f"    engine - plain per run: {statistics.median(fixed):.2f} s [{fixed[0]:.2f}-{fixed[-1]:.2f}] wall, "
              f"{statistics.median(extra_cpu):.2f} s [{extra_cpu[0]:.2f}-{extra_cpu[-1]:.2f}] CPU "
              f"(engine CPU: worker {ph['cpu_worker']:.2f} s, client and scheduler process {ph['cpu_main']:.2f} s)")
        print(f"    engine phases (median): Runner {ph['init']:.2f} s, planning until the last file is planned "
              f"{ph['plan']:.2f} s, chunk tasks on the worker {ph['tasks']:.2f} s, final merge {ph['finalize']:.2f} s, "
              f"rest of the run (planning opens, dispatch, worker idle) {idle:.2f} s")
    print(f"  dask alone, 100 sequential no-op tasks on the 1-worker cluster: {dask_cost[0] * 1000:.1f} ms "
          f"(client and scheduler process) + {dask_cost[1] * 1000:.1f} ms (worker) of CPU per task")
    if not args.no_scaling:
        print(f"  2 workers / 1 worker throughput, {sizes[0] // 1000}k chunks: "
              f"{paired(('engine', 1, sizes[0]), ('engine', 2, sizes[0]))} (machine cores: {os.cpu_count()}); "
              f"files opened per run by the 2 workers: {sorted(opens)} for {sum(len(d.files) for d in fs)} files")
        ph = {k: statistics.median(p.get(k, 0.0) for p in phases[("engine", 2, sizes[0])])
              for k in ("plan", "tasks", "run")}
        print(f"    2-worker phases (median): planning until the last file is planned {ph['plan']:.2f} s, "
              f"chunk tasks (both workers) {ph['tasks']:.2f} s, run {ph['run']:.2f} s")
        print(f"  the machine's ceiling, plain loop on 2 processes / 1 process: "
              f"{paired(('plain', sizes[0]), ('plain', sizes[0], 2))}; "
              f"2 workers / plain on 2 processes: {paired(('plain', sizes[0], 2), ('engine', 2, sizes[0]))}")


if __name__ == "__main__":
    main()
