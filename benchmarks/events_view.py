"""The events view against flat-array awkward code: the DY+jets selection, same process.

    python benchmarks/events_view.py [--events 500000] [--chunks 4] [--chunk-size 50000] [--repeat 5]

The sample is synthetic PFNano (``jetdask.synthetic``, one MC-like and one data-like file of
``--events`` events each, cached under ``benchmarks/.cache/``, shared with
``benchmarks/engine.py``). The first ``--chunks`` chunks of ``--chunk-size`` events of the MC
file are read once (the branches of ``DYJets.columns``) and kept in memory; then, per round,
back to back on the same chunks:

* view: ``events_from_arrays`` + ``dy_jets.select`` (``events.Muon``, ``events.Jet``, vector's
  ``deltaR`` and ``+``/``.mass``), then the selected jets' pt;
* the same view with vector's own ``Momentum4D`` class (what the view used before
  :mod:`jetdask.nanoaod.vectors`);
* flat: ``dy_flat.select_flat`` on the dict of branches (same cuts, mass and deltaR written out).

Reading is not timed (it is the same for both). Both paths must select the same events and
jets (checked). Prints events/s (median over rounds) by wall time and by this process' CPU
time (on a machine shared with other jobs the CPU time is the steadier measure), and the
view/flat throughput ratios taken within each round, median [min-max]; ``--profile`` prints
the cProfile of the view path.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)


def sample(workdir: str, events: int) -> str:
    """``fileset.json`` of the cached synthetic sample with ``events`` events per file."""
    from jetdask.synthetic import generate_sample
    d = os.path.join(workdir, f"pfnano-{events}")
    path = os.path.join(d, "fileset.json")
    if not os.path.exists(path):
        t = time.perf_counter()
        generate_sample(d, events=events, files=1, seed=3, mismodel=0.5, progress=True)
        print(f"generated 2 x {events} events in {time.perf_counter() - t:.0f} s")
    return path


def view(arrays, start):
    from analyses.dy_jets import select
    from jetdask.nanoaod.events import events_from_arrays
    s = select(events_from_arrays(arrays, entry_start=start))
    return s.cut, s.jet_mask, s.jets.pt


def view_stock_vector(arrays, start):
    """The view with vector's registered class instead of jetdask's (coordinates re-read per use)."""
    import awkward as ak

    from analyses.dy_jets import select
    from jetdask.nanoaod.events import events_from_arrays
    s = select(ak.Array(events_from_arrays(arrays, entry_start=start).layout))
    return s.cut, s.jet_mask, s.jets.pt


def flat(arrays, start):
    from dy_flat import select_flat
    out = select_flat(arrays)
    return out["cut"], out["jet_mask"], arrays["Jet_pt"][out["cut"]["jets"]][out["jet_mask"]]


def same(a, b) -> bool:
    import awkward as ak
    cut_a, jm_a, pt_a = a
    cut_b, jm_b, pt_b = b
    return (all(np.array_equal(cut_a[k], cut_b[k]) for k in cut_a) and ak.all(jm_a == jm_b)
            and ak.all(pt_a == pt_b))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=500_000, help="events per file of the cached sample")
    ap.add_argument("--chunks", type=int, default=4)
    ap.add_argument("--chunk-size", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--profile", action="store_true", help="print the cProfile of the view path")
    ap.add_argument("--workdir", default=os.path.join(HERE, ".cache"))
    args = ap.parse_args()

    import uproot

    from analyses.dy_jets import DYJets
    from jetdask.fileset import load_fileset
    from jetdask.nanoaod.columns import resolve_columns

    os.makedirs(args.workdir, exist_ok=True)
    fs = load_fileset(sample(args.workdir, args.events))
    f = next(f for ds in fs for f in ds.files if "mc_" in os.path.basename(f.path))
    tree = uproot.open(f.path)[f.tree]
    branches = resolve_columns(tree.keys(), DYJets().columns)
    step = args.chunk_size
    chunks = [(s, tree.arrays(branches, entry_start=s, entry_stop=s + step, how=dict))
              for s in range(0, min(args.chunks * step, tree.num_entries), step)]
    n = sum(len(a["run"]) for _, a in chunks)
    for s, a in chunks:
        if not same(view(a, s), flat(a, s)) or not same(view_stock_vector(a, s), flat(a, s)):
            raise SystemExit(f"view and flat selections differ on the chunk at {s}")
    print(f"{len(chunks)} chunks of {step} events, {len(branches)} branches, selections agree")

    if args.profile:
        import cProfile
        import pstats
        prof = cProfile.Profile()
        prof.enable()
        for s, a in chunks:
            view(a, s)
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(40)

    paths = {"view": view, "stock": view_stock_vector, "flat": flat}
    wall = {k: [] for k in paths}
    cpu = {k: [] for k in paths}
    for rnd in range(args.repeat + 1):  # round 0 warms up
        for key, fn in paths.items():
            t, c = time.perf_counter(), time.process_time()
            for s, a in chunks:
                fn(a, s)
            if rnd:
                wall[key].append(time.perf_counter() - t)
                cpu[key].append(time.process_time() - c)

    print()
    print(f"{'path (DY+jets selection)':<56}{'wall [s]':>10}{'events/s':>10}{'CPU [s]':>10}{'events/CPU s':>14}")
    labels = {"view": "events view: events_from_arrays + select (vector)",
              "stock": "the same with vector's own Momentum4D class",
              "flat": "flat awkward arrays of the branches"}
    for key in paths:
        w, c = statistics.median(wall[key]), statistics.median(cpu[key])
        print(f"{labels[key]:<56}{w:>10.3f}{n / w:>10.0f}{c:>10.3f}{n / c:>14.0f}")
    print(f"\nview / flat throughput, per round, median [min-max] over {args.repeat} rounds:")
    for name, t in (("wall time", wall), ("process CPU time (robust to other jobs on the machine)", cpu)):
        for key, what in (("view", "events view"), ("stock", "with vector's own class")):
            r = sorted(f / v for f, v in zip(t["flat"], t[key]))
            print(f"  {name}, {what}: {statistics.median(r):.2f} [{r[0]:.2f}-{r[-1]:.2f}]")


if __name__ == "__main__":
    main()
