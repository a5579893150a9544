"""The DY+jets study with every correction and systematic variation against nominal only.

    python benchmarks/systematics.py [--events 40000] [--files 2] [--workers 1] [--repeat 3]

Same files, same LocalCluster, one process: each round runs the study nominal only (no
corrections) and with the synthetic corrections.yaml (JEC + JER smearing, pile-up, b-tag shape SF,
28 weight variations: pile-up 2, b-tag 16, muR/muF 6, ISR/FSR 4; shape variations: JES Total and
4 regrouped sources and JER, up and down = 41 syst categories), back to back, into fresh run
directories. Rows: wall time per round and the ratio all/nominal (median [min-max] over the
rounds; the target is <= 2x), the output size (bins x variations x categories as printed before
a run, and ``output/hists.json`` on disk), and the variations' share of the chunk time.

The sample is cached under ``benchmarks/.cache/`` (``--mismodel 1``). On a machine shared with
other jobs wall times vary; compare only the ratios of one run.
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
REPO = os.path.join(HERE, "..")
sys.path.insert(0, REPO)


def sample(workdir: str, events: int, files: int) -> str:
    from jetdask.synthetic import generate_sample
    out = os.path.join(workdir, f"systematics-{events}x{files}")
    fileset = os.path.join(out, "fileset.json")
    if not os.path.exists(os.path.join(out, "corrections.yaml")):
        shutil.rmtree(out, ignore_errors=True)
        generate_sample(out, events=events, files=files, seed=3, mismodel=1.0, progress=True)
    return fileset


def one_run(spec: str, kwargs: dict, fileset: str, client, chunk_size: int) -> tuple[float, int, dict]:
    """(wall seconds, bytes of output/hists.json, counters of the MC) of one run in a fresh directory."""
    from jetdask.engine.runner import Runner
    from jetdask.plugin import load_analysis
    run_dir = tempfile.mkdtemp(prefix="jd-syst-")
    try:
        t0 = time.perf_counter()
        ana = load_analysis(spec, **kwargs)
        with Runner(ana, fileset, run_dir, client, chunk_size=chunk_size, progress=False) as r:
            out = r.run()
        wall = time.perf_counter() - t0
        assert out.complete, "the run did not complete"
        size = os.path.getsize(os.path.join(run_dir, "output", "hists.json"))
        return wall, size, out.counters.get("DYJetsToLL_M-50", {})
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=40_000, help="events per kind (data and MC)")
    ap.add_argument("--files", type=int, default=2, help="files per kind")
    ap.add_argument("--workers", type=int, default=1, help="LocalCluster worker processes (1 thread each)")
    ap.add_argument("--chunk-size", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3, help="rounds")
    ap.add_argument("--workdir", default=os.path.join(HERE, ".cache"))
    args = ap.parse_args(argv)
    os.makedirs(args.workdir, exist_ok=True)
    fileset = sample(args.workdir, args.events, args.files)
    corrections = os.path.join(os.path.dirname(fileset), "corrections.yaml")
    spec = os.path.join(REPO, "analyses", "dy_jets.py") + ":DYJets"
    from jetdask.plugin import load_analysis
    full = load_analysis(spec, corrections=corrections)
    print(f"nominal: {load_analysis(spec).output_summary()}")
    print(f"all:     {full.output_summary()}")

    from distributed import Client, LocalCluster
    cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                           memory_limit="4GiB")
    client = Client(cluster)
    rows = []
    try:
        one_run(spec, {}, fileset, client, args.chunk_size)                    # warm-up (imports, file cache)
        for k in range(args.repeat):
            nominal, size_n, _ = one_run(spec, {}, fileset, client, args.chunk_size)
            allv, size_a, _ = one_run(spec, {"corrections": corrections}, fileset, client, args.chunk_size)
            rows.append((nominal, allv, size_n, size_a))
            print(f"round {k + 1}: nominal {nominal:7.2f} s   all variations {allv:7.2f} s   "
                  f"ratio {allv / nominal:5.2f}", flush=True)
    finally:
        client.close()
        cluster.close()
    ratios = [a / n for n, a, _, _ in rows]
    n_events = 2 * args.events
    print()
    print(f"{'':34}{'nominal':>12}{'all variations':>16}")
    print(f"{'wall time, median [s]':34}{statistics.median(r[0] for r in rows):>12.2f}"
          f"{statistics.median(r[1] for r in rows):>16.2f}")
    print(f"{'events / s (median)':34}{n_events / statistics.median(r[0] for r in rows):>12.0f}"
          f"{n_events / statistics.median(r[1] for r in rows):>16.0f}")
    print(f"{'output/hists.json [MiB]':34}{rows[0][2] / 2 ** 20:>12.2f}{rows[0][3] / 2 ** 20:>16.2f}")
    print(f"{'ratio all / nominal':34}{statistics.median(ratios):>12.2f}  [{min(ratios):.2f}-{max(ratios):.2f}]"
          f"  (target <= 2)")
    print(f"({n_events} events, {args.files} files per kind, {args.workers} worker(s), chunks of {args.chunk_size}; "
          f"{len(full.corrections_config.syst_names)} syst categories)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
