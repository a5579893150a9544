"""The dispatcher at scale on one machine: chunk throughput, and a run through worker churn.

    python benchmarks/dispatcher.py throughput [--workers 8,16,32] [--chunks 2000]
    python benchmarks/dispatcher.py churn [--workers 16] [--chunks 160] [--seconds 1.0]

``throughput``: chunks/s of a no-op analysis (it reads only run/lumi/event of 100-event
chunks) on N single-threaded LocalCluster worker processes: what the submit/collect loop,
the ledger and the scheduler sustain (target >= 200 chunks/s), and the CPU time this process
(the client's loop and the LocalCluster's scheduler) spends per chunk, the steadier measure
on a shared machine. It uses only the public API, so ``benchmarks/trees.py --script-tree``
can run this copy against an older tree.

``churn``: chunks that each take ``--seconds`` (sleep) on 16-32 workers; mid-run 20% of the
workers are SIGKILLed (their nannies restart them) and 20% retire gracefully. Prints the wall
time against a clean run on the same cluster size, failed chunks and whether the output is
bin-exact equal to the clean run's.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import time

import hist
import numpy as np

sys.path.append(os.path.join(os.path.dirname(__file__), ".."))   # after PYTHONPATH (benchmarks/trees.py)

from jetdask import Result  # noqa: E402
from jetdask.plugin import Analysis  # noqa: E402

CACHE = os.path.join(os.path.dirname(__file__), ".cache")


class NoOp(Analysis):
    columns: list = []

    def process(self, events, chunk):
        return Result(counters={"n": len(events)})


class Sleepy(Analysis):
    columns = ["Muon_pt"]

    def __init__(self, seconds: float):
        self.seconds = seconds

    def process(self, events, chunk):
        time.sleep(self.seconds)
        h = hist.Hist.new.Reg(40, 0, 200, name="pt").Double()
        import awkward as ak
        h.fill(pt=np.asarray(ak.flatten(events.Muon.pt)))
        return Result(hists={"muon_pt": h})


def sample(events: int, basket: int) -> str:
    from jetdask.synthetic import generate_sample
    out = os.path.join(CACHE, f"dispatch-{events}-{basket}")
    path = os.path.join(out, "fileset.json")
    if not os.path.exists(path):
        generate_sample(out, events=events, files=2, seed=11, basket_events=basket)
    return path


def run_once(analysis, fileset, client, chunk_size):
    from jetdask.engine.runner import Runner
    with tempfile.TemporaryDirectory() as d:
        r = Runner(analysis, fileset, os.path.join(d, "run"), client, chunk_size=chunk_size, progress=False)
        t0, c0 = time.perf_counter(), time.process_time()
        out = r.run()
        wall = time.perf_counter() - t0
        run_once.cpu = time.process_time() - c0     # this process: the client's loop and the scheduler
        n = sum(out.counts.get(s, 0) for s in ("done", "failed"))
        r.close()
    return wall, n, out, r.stats


def throughput(args):
    from jetdask.cluster import close_cluster
    from jetdask.cluster.local import start_local
    chunk = 100
    fs = sample(args.chunks * chunk // 2 * 2, chunk)
    print(f"{'workers':>8} {'chunks':>7} {'wall s':>7} {'chunks/s':>9} {'client CPU ms/chunk':>20}")
    for n in [int(x) for x in args.workers.split(",")]:
        client = start_local(n_workers=n, memory_limit="400MiB")
        try:
            run_once(NoOp(), fs, client, chunk)                   # warm-up: imports, file opens
            wall, k, out, _ = run_once(NoOp(), fs, client, chunk)
        finally:
            close_cluster(client)
        print(f"{n:>8} {k:>7} {wall:>7.2f} {k / wall:>9.1f} {run_once.cpu / k * 1000:>20.2f}", flush=True)


def _kill(client, addrs):
    pids = client.run(os.getpid, workers=addrs)
    for p in pids.values():
        os.kill(p, signal.SIGKILL)


def churn(args):
    from jetdask.cluster import close_cluster
    from jetdask.cluster.local import start_local
    n = args.workers
    per_chunk = 100
    fs = sample(args.chunks * per_chunk, per_chunk)
    client = start_local(n_workers=n, memory_limit="400MiB")
    try:
        run_once(NoOp(), fs, client, per_chunk)
        clean_wall, _, clean, _ = run_once(Sleepy(args.seconds), fs, client, per_chunk)
    finally:
        close_cluster(client)
    client = start_local(n_workers=n, memory_limit="400MiB")
    try:
        run_once(NoOp(), fs, client, per_chunk)
        k = max(1, n // 5)

        def disturb():
            time.sleep(clean_wall * 0.3)
            workers = sorted(client.nthreads())
            _kill(client, workers[:k])
            time.sleep(clean_wall * 0.2)
            client.retire_workers(workers[k:2 * k], close_workers=True)
        t = threading.Thread(target=disturb, daemon=True)
        t.start()
        wall, _, out, stats = run_once(Sleepy(args.seconds), fs, client, per_chunk)
        t.join()
    finally:
        close_cluster(client)
    same = all(np.array_equal(out.hists[d][h].values(flow=True), clean.hists[d][h].values(flow=True))
               for d in clean.hists for h in clean.hists[d])
    print(f"{'workers':>8} {'killed':>6} {'retired':>7} {'clean s':>8} {'churn s':>8} {'ratio':>6} "
          f"{'failed':>6} {'suspects':>8} {'rerun':>6} {'tasks':>6} {'bin-exact':>9}")
    print(f"{n:>8} {k:>6} {k:>7} {clean_wall:>8.1f} {wall:>8.1f} {wall / clean_wall:>6.2f} "
          f"{len(out.failed):>6} {stats['suspects']:>8} {stats['rerun']:>6} {stats['tasks']:>6} {str(same):>9}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    p = sub.add_parser("throughput")
    p.add_argument("--workers", default="8,16,32")
    p.add_argument("--chunks", type=int, default=2000)
    p = sub.add_parser("churn")
    p.add_argument("--workers", type=int, default=16)
    p.add_argument("--chunks", type=int, default=160)
    p.add_argument("--seconds", type=float, default=1.0)
    args = ap.parse_args()
    throughput(args) if args.what == "throughput" else churn(args)


if __name__ == "__main__":
    main()
