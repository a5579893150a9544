"""Engine throughput on synthetic PFNano: jetdask vs a plain uproot.iterate loop.

    python benchmarks/engine.py [--events 200000] [--repeat 3]

Prints a table: events/s and MB/s (compressed bytes of the branches read) for
  * plain: one process, ``uproot.iterate`` over the same branches, same analysis code;
  * jetdask with 1 and 2 LocalCluster workers (1 thread each), chunks of 100k events, "cold"
    (worker file caches emptied: the run opens every file, as the plain loop does) and with the
    files still open on the workers from the previous run (an interactive session's steady state);
  * the plain loop on trees already open, beside the engine with the files open on its worker;
  * jetdask with chunks of 2k events beside the plain 2k-step loop on the open files, and the
    per-chunk overhead derived from the two;
and the file-cache hit counts. Per configuration, one untimed warm-up round, then ``--repeat``
rounds in which every path runs once, back to back: the table shows medians, and the ratios
are taken within each round (plain and engine under the same machine state), median [min-max].
coffea is not installed in jetdask's environment; it is not compared here.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

import uproot

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))


def compressed_bytes(fileset, branches):
    total = 0
    for ds in fileset:
        for f in ds.files:
            t = uproot.open(f.path)[f.tree]
            total += sum(t[b].compressed_bytes for b in branches if b in t)
    return total


def plain(fileset, analysis, step, requested, trees=None):
    """The same analysis in this process over ``uproot.iterate`` steps; ``trees``: files already open."""
    from jetdask.chunk import Chunk
    from jetdask.nanoaod.columns import resolve_columns
    from jetdask.nanoaod.events import events_from_arrays
    n = 0
    for ds in fileset:
        for f in ds.files:
            start = 0
            tree = trees[f.path] if trees else uproot.open(f.path, array_cache=None)[f.tree]
            branches = resolve_columns(tree.keys(), requested)
            for arrays in tree.iterate(branches, step_size=step, how=dict):
                ev = events_from_arrays(arrays, entry_start=start)
                k = len(ev)
                analysis(ev, Chunk(ds.name, f.path, f.tree, start, start + k, "x", dict(ds.metadata)))
                start += k
                n += k
    return n


def engine(fileset_path, analysis, chunk, client, workdir):
    from jetdask.engine.runner import Runner
    run = tempfile.mkdtemp(dir=workdir)
    with Runner(analysis, fileset_path, run, client, chunk_size=chunk, progress=False) as r:
        out = r.run()
    assert out.complete
    return sum(c["events"] for c in out.counters.values()), r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000, help="events per kind (MC, data)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", default=os.path.join(os.path.dirname(__file__), ".cache"))
    args = ap.parse_args()

    from jetdask.cluster import close_cluster, start_local
    from engine_analyses import DimuonJets
    import cloudpickle, engine_analyses
    cloudpickle.register_pickle_by_value(engine_analyses)
    from jetdask.nanoaod.columns import resolve_columns
    from jetdask.fileset import load_fileset
    from jetdask.synthetic import generate_sample
    from jetdask.engine.task import ID_COLUMNS

    os.makedirs(args.workdir, exist_ok=True)
    sample_dir = os.path.join(args.workdir, f"sample-{args.events}")
    fs_path = os.path.join(sample_dir, "fileset.json")
    if not os.path.exists(fs_path):
        t = time.perf_counter()
        generate_sample(sample_dir, events=2 * args.events, files=1, seed=3, mismodel=0.5, progress=True)
        print(f"generated {2 * args.events} events in {time.perf_counter() - t:.1f} s")
    fs = load_fileset(fs_path)
    analysis = DimuonJets(save_arrays=False)  # histograms and counters, as the plain loop
    first = fs[sorted(fs.datasets)[0]].files[0]
    requested = list(analysis.columns) + ID_COLUMNS
    branches = resolve_columns(uproot.open(first.path)[first.tree].keys(), requested)
    mb = compressed_bytes(fs, branches) / 1e6
    runs = os.path.join(args.workdir, "runs")
    shutil.rmtree(runs, ignore_errors=True)
    os.makedirs(runs)

    open_trees = {f.path: uproot.open(f.path, array_cache=None)[f.tree] for ds in fs for f in ds.files}

    def clear_worker_caches(client):
        client.run(lambda: __import__("jetdask.nanoaod.io", fromlist=["clear_cache"]).clear_cache())

    def engine_cold(client):
        clear_worker_caches(client)
        return engine(fs_path, analysis, 100_000, client, runs)[0]

    def timed(fn):
        t = time.perf_counter()
        n = fn()
        return time.perf_counter() - t, n

    # Each configuration: one untimed warm-up round, then --repeat rounds in which every path of
    # the configuration runs once, back to back (plain and engine see the same machine state;
    # the ratios are taken per round and their median is quoted).
    paths = {
        "plain_cold": ("plain uproot.iterate, 100k steps", lambda c: plain(fs, analysis, 100_000, requested)),
        "plain_open": ("plain uproot.iterate, 100k steps, files open",
                       lambda c: plain(fs, analysis, 100_000, requested, open_trees)),
        "plain_2k": ("plain uproot.iterate, 2k steps", lambda c: plain(fs, analysis, 2000, requested, open_trees)),
        "cold": ("jetdask {nw} worker(s), 100k chunks, cold", engine_cold),
        "open": ("jetdask {nw} worker(s), 100k chunks, files open", lambda c: engine(fs_path, analysis, 100_000, c, runs)[0]),
        "2k": ("jetdask {nw} worker(s), 2k chunks", lambda c: engine(fs_path, analysis, 2000, c, runs)[0]),
    }
    times: dict = {}
    counts: dict = {}
    stats = {}
    for nw in (1, 2):
        keys = ["plain_cold", "plain_open", "plain_2k"] if nw == 1 else []
        keys += ["cold", "open", "2k"]
        client = start_local(n_workers=nw, threads_per_worker=1, memory_limit="6GiB", dashboard_address=None)
        try:
            client.submit(lambda: 1).result()
            for rnd in range(args.repeat + 1):
                for key in keys:
                    t, n = timed(lambda: paths[key][1](client))
                    if rnd:  # round 0 is the warm-up
                        times.setdefault((nw, key), []).append(t)
                        counts[(nw, key)] = n
            stats = client.run(lambda: __import__("jetdask.nanoaod.io", fromlist=["stats"]).stats)
        finally:
            close_cluster(client)

    print()
    print(f"{'path':<48}{'events':>10}{'time [s]':>10}{'events/s':>12}{'MB/s':>8}")
    for (nw, key), ts in times.items():
        med = statistics.median(ts)
        n = counts[(nw, key)]
        print(f"{paths[key][0].format(nw=nw):<48}{n:>10}{med:>10.2f}{n / med:>12.0f}{mb / med:>8.1f}")

    def paired(num, den):
        r = sorted(a / b for a, b in zip(times[num], times[den]))
        return f"{statistics.median(r):.2f} [{r[0]:.2f}-{r[-1]:.2f}]"

    n_small = -(-counts[(1, "plain_cold")] // 2000)
    over = sorted((e - p) / n_small * 1000 for e, p in zip(times[(1, "2k")], times[(1, "plain_2k")]))
    print()
    print(f"per-round ratios, median [min-max] over {args.repeat} rounds (1 worker, 100k chunks):")
    print(f"  engine / plain throughput, both opening the files (the run opens them on the worker "
          f"while planning): {paired((1, 'plain_cold'), (1, 'cold'))}")
    print(f"  engine / plain throughput, both with the files open already: {paired((1, 'plain_open'), (1, 'open'))}")
    print(f"per-chunk overhead (1 worker, opened file, 2k chunks, beyond the plain 2k-step loop on the open "
          f"file): {statistics.median(over):.1f} ms [{over[0]:.1f}-{over[-1]:.1f}] (scheduling, memory estimate, "
          f"ledger write, result merge)")
    print(f"file cache on the workers (last configuration): {stats}")


if __name__ == "__main__":
    main()
