"""Planning while the run goes, against planning first, when one file opens slowly.

    python benchmarks/planning.py [--files 4] [--events 40000] [--slow 4.0] [--repeat 3]

The sample: ``--files`` MC-like and as many data-like synthetic PFNano files (cached under
``benchmarks/.cache/``). On a LocalCluster of 2 single-threaded workers, the inspection of
one file sleeps ``--slow`` seconds first (a late XRootD server, a busy disk; installed in
the worker processes as the tests do, ``tests/engine_helpers.slow_inspections``). Rows:

* ``planned first``: what the runner did before planning fed the run: the whole fileset is
  planned (``jetdask.engine.planning.plan`` on the cluster) and recorded, then the run starts;
* ``planned while running``: ``Runner.run()`` as shipped.

Printed per mode: the run's wall time, when the first chunk finished (from the ledger), and
the ratio of the two modes' wall times per round (median [min-max]). Compare only within
one run: the machine is shared.
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


def sample(workdir: str, files: int, events: int) -> str:
    from jetdask.synthetic import generate_sample
    out = os.path.join(workdir, f"planning-{files}x{events}")
    path = os.path.join(out, "fileset.json")
    if not os.path.exists(path):
        path = generate_sample(out, events=files * events, files=files, seed=3, basket_events=5000)
    return path


def one_run(mode: str, fileset: str, client, chunk: int, workdir: str) -> tuple[float, float]:
    """(wall time, seconds to the first finished chunk) of one run in ``mode``."""
    from engine_analyses import DimuonJets
    from engine_helpers import ledger_rows
    from jetdask.engine import planning
    from jetdask.engine.runner import Runner
    client.run(lambda: __import__("jetdask.nanoaod.io", fromlist=["clear_cache"]).clear_cache())
    run = tempfile.mkdtemp(dir=workdir)
    t0 = time.time()
    with Runner(DimuonJets(save_arrays=False), fileset, run, client, chunk_size=chunk, progress=False) as r:
        if mode == "first":   # the whole plan, then the run (the runner finds planning complete)
            p = planning.plan(r.fileset, r.chunk_size, client=client, analysis=r.analysis)
            for key, value in (("chunk_size", r.chunk_size), ("created", time.time())):
                r.ledger.set_meta(key, value)
            r.ledger.add_plan(p.files, p.failures, p.chunks)
            r._note_homes(p)
            r._planned(p)
        out = r.run()
    wall = time.time() - t0
    assert out.complete, out.counts
    first = min(t for (t,) in ledger_rows(run, "SELECT finished FROM chunks WHERE state='done'")) - t0
    shutil.rmtree(run, ignore_errors=True)
    return wall, first


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=4, help="MC files (and as many data files)")
    ap.add_argument("--events", type=int, default=40_000, help="events per file")
    ap.add_argument("--chunk", type=int, default=10_000)
    ap.add_argument("--slow", type=float, default=4.0, help="seconds one file's inspection sleeps")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", default=os.path.join(HERE, ".cache"))
    args = ap.parse_args()

    import cloudpickle

    import engine_analyses
    from engine_helpers import slow_inspections
    from jetdask.cluster import close_cluster, start_local
    cloudpickle.register_pickle_by_value(engine_analyses)
    os.makedirs(args.workdir, exist_ok=True)
    fs = sample(args.workdir, args.files, args.events)
    slow_name = "mc_0.root"
    runs = tempfile.mkdtemp(dir=args.workdir)
    stamps = tempfile.mkdtemp(dir=args.workdir)
    client = start_local(n_workers=2, threads_per_worker=1, memory_limit="4GiB", dashboard_address=None)
    try:
        one_run("while", fs, client, args.chunk, runs)                   # warm: imports, first opens
        client.run(slow_inspections, slow_name, args.slow, stamps)
        res = {"first": [], "while": []}
        for _ in range(args.repeat):
            for mode in ("first", "while"):
                res[mode].append(one_run(mode, fs, client, args.chunk, runs))
    finally:
        close_cluster(client)
        shutil.rmtree(runs, ignore_errors=True)
        shutil.rmtree(stamps, ignore_errors=True)
    n = 2 * args.files
    print(f"\n{n} files of {args.events} events, chunks of {args.chunk}, 2 workers; the inspection of "
          f"{slow_name} sleeps {args.slow:.1f} s; medians of {args.repeat} rounds")
    print(f"{'mode':<28}{'run [s]':>10}{'first chunk done [s]':>24}")
    for mode, label in (("first", "planned first"), ("while", "planned while running")):
        print(f"{label:<28}{statistics.median(w for w, _ in res[mode]):>10.2f}"
              f"{statistics.median(f for _, f in res[mode]):>24.2f}")
    ratios = sorted(a[0] / b[0] for a, b in zip(res["first"], res["while"]))
    print(f"planned first / planned while running, wall time per round: {statistics.median(ratios):.2f} "
          f"[{ratios[0]:.2f}-{ratios[-1]:.2f}]")


if __name__ == "__main__":
    main()
