"""Results store: bytes per chunk, merge cost per chunk, finalize and resume time against chunks.

    python benchmarks/finalize.py [--chunks 1000 10000 100000] [--per-file 10 100 1000] [--old-up-to 10000]
                                  [--old-per-file 100]

Three tables:

1. A DY-study-sized chunk result (40 histograms channel x flavour x 20-40 bins, Weight, plus a
   cutflow; ~1500 jets per chunk): bytes per chunk as the previous ledger stored it (UHI JSON
   text) and as the store does (binary, sparse where it pays, zlib), and the CPU time to encode
   and to decode + add one chunk in each format.
2. finalize and resume of a ledger of N done chunks of a small analysis (the engine tests'
   DimuonJets: real chunk results from synthetic PFNano, cycled), written through the store API
   (``Ledger.mark_done``; files fold as they complete), for N = 10^3..10^5 and several chunks per
   file; "resume" is ``Runner.run()`` on the finished directory (lock, open, nothing to run,
   finalize). The previous format (JSON per chunk, a ledger of schema version 0) is timed up to
   ``--old-up-to`` chunks; its write column is a bulk insert, its finalize includes the migration
   a reader of such a ledger makes in memory (:mod:`jetdask.engine.schema`).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

import hist
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

from jetdask.chunk import Chunk  # noqa: E402
from jetdask.engine import histcodec  # noqa: E402
from jetdask.engine.ledger import Ledger  # noqa: E402
from jetdask.engine.outputs import finalize  # noqa: E402
from jetdask.engine.partial import Partial  # noqa: E402
from jetdask.engine.task import Outcome  # noqa: E402
from jetdask.result import Result  # noqa: E402


def dy_sized_result(seed: int, jets: int = 1500) -> Result:
    """40 histograms shaped like analyses/dy_jets.py's (two taggers, a distortion, inputs)."""
    rng = np.random.default_rng(seed)
    ch = rng.choice(["mumu", "ee"], jets)
    fl = rng.choice(["b", "c", "light"], jets, p=[0.05, 0.1, 0.85])
    w = rng.choice([1.0, -1.0], jets, p=[0.87, 0.13]) * 23519.0
    hists = {}
    for i in range(40):
        bins = 20 if i < 30 else 40
        h = (hist.Hist.new.StrCat(["mumu", "ee"], name="channel").StrCat(["b", "c", "light", "data"], name="flavour")
             .Reg(bins, 0, 1, name="value", label=f"variable {i}").Weight())
        h.fill(channel=ch, flavour=fl, value=rng.beta(0.5 + i % 3, 2.0, jets), weight=w)
        hists[f"h{i}"] = h
    cut = hist.Hist.new.StrCat(["all", "lumi", "trigger", "two leptons", "Z window", "jets"], name="step") \
        .StrCat(["all", "mumu", "ee"], name="channel").Double()
    cut.fill(step=rng.choice(["all", "trigger", "jets"], 3000), channel=rng.choice(["all", "mumu"], 3000))
    hists["cutflow"] = cut
    return Result(hists, {"selected_events": 1000, "selected_jets": jets, "sumw_selected": float(w.sum())})


def table_bytes(n: int = 50) -> None:
    results = [dy_sized_result(i) for i in range(n)]
    t = time.process_time()
    js = [r.to_json() for r in results]
    t_json_enc = (time.process_time() - t) / n
    t = time.process_time()
    blobs = [histcodec.encode(r) for r in results]
    t_bin_enc = (time.process_time() - t) / n
    t = time.process_time()
    acc = Result()
    for s in js:
        acc.iadd(Result.from_json(s))
    t_json_merge = (time.process_time() - t) / n
    t = time.process_time()
    part = Partial()
    for b in blobs:
        part.add(Partial.from_blob(b))
    t_bin_merge = (time.process_time() - t) / n
    same = all(np.array_equal(part.to_result().hists[k].view(flow=True), acc.hists[k].view(flow=True))
               for k in acc.hists)
    b_json = np.mean([len(s.encode()) for s in js])
    b_bin = np.mean([len(b) for b in blobs])
    print(f"\n1. DY-study-sized chunk result ({len(results[0].hists)} histograms, {n} chunks); sums equal: {same}")
    print(f"{'format':<28}{'bytes/chunk':>12}{'encode ms':>11}{'decode+add ms':>15}   (CPU time of this process)")
    print(f"{'UHI JSON text (previous)':<28}{b_json:>12.0f}{t_json_enc * 1e3:>11.2f}{t_json_merge * 1e3:>15.2f}")
    print(f"{'binary store (histcodec)':<28}{b_bin:>12.0f}{t_bin_enc * 1e3:>11.2f}{t_bin_merge * 1e3:>15.2f}")
    print(f"ratio: {b_json / b_bin:.1f}x fewer bytes, decode+add {t_json_merge / t_bin_merge:.1f}x faster")


def small_results(k: int = 8) -> list[Result]:
    """Real chunk results of the engine tests' DimuonJets on a synthetic sample."""
    from engine_analyses import DimuonJets
    from jetdask.engine.planning import plan
    from jetdask.engine.task import run_chunk
    from jetdask.fileset import load_fileset
    from jetdask.synthetic import generate_sample
    d = tempfile.mkdtemp()
    try:
        fs = generate_sample(d, events=8000, files=1, seed=3, basket_events=1000)
        chunks = plan(load_fileset(fs), 1000).chunks[:k]
        return [run_chunk(DimuonJets(save_arrays=False), c, {}).result for c in chunks]
    finally:
        shutil.rmtree(d, ignore_errors=True)


def build_ledger(run_dir: str, n: int, per_file: int, blobs, legacy: bool = False) -> float:
    """A finished run of n chunks written through the store API; returns seconds per chunk."""
    files = max(1, n // per_file)
    led = Ledger(os.path.join(run_dir, "ledger.sqlite"))
    led.begin_writing()
    fileset = {"DS": {"files": {f"/data/f{i:06d}.root": "Events" for i in range(files)}, "metadata": {}}}
    led.add_files([{"dataset": "DS", "path": f"/data/f{i:06d}.root", "tree": "Events", "uuid": f"u{i}",
                    "num_entries": per_file * 1000} for i in range(files)], [])
    chunks = [Chunk("DS", f"/data/f{i:06d}.root", "Events", j * 1000, (j + 1) * 1000, f"u{i}")
              for i in range(files) for j in range(per_file)]
    led.add_chunks(chunks)
    out = Outcome("x", "done", worker="w", started=0.0, finished=1.0, n_events=1000)
    t = time.perf_counter()
    if legacy:   # the previous format: a JSON payload per chunk, never folded
        led.db.execute("CREATE TABLE IF NOT EXISTS results (chunk_id TEXT PRIMARY KEY, payload TEXT)")
        texts = [histcodec.decode_result(b).to_json() for b in blobs]
        with led.db:
            led.db.execute("BEGIN")
            for i, c in enumerate(chunks):
                led.db.execute("INSERT INTO results VALUES (?, ?)", (c.id, texts[i % len(texts)]))
                led.db.execute("UPDATE chunks SET state='done' WHERE id=?", (c.id,))
        led.db.execute("PRAGMA user_version=0")
    else:
        for i, c in enumerate(chunks):
            led.mark_done(c, out, blobs[i % len(blobs)])
    per_chunk = (time.perf_counter() - t) / len(chunks)
    led.set_meta("fileset", fileset)
    led.set_meta("chunk_size", 1000)
    led.end_writing()
    led.close()
    return per_chunk


def table_scaling(ns, per_files, old_up_to: int, old_per_file: int) -> None:
    from engine_analyses import DimuonJets
    from jetdask.engine.runner import Runner
    blobs = [histcodec.encode(r) for r in small_results()]
    print(f"\n2. finalize / resume against chunks (small analysis: {len(histcodec.decode_result(blobs[0]).hists)} "
          f"histograms, {np.mean([len(b) for b in blobs]):.0f} B per chunk blob)")
    print(f"{'format':<9}{'chunks':>8}{'per file':>9}{'files':>7}{'write ms/chunk':>16}{'ledger MB':>11}"
          f"{'results MB':>12}{'finalize s':>12}{'resume s':>10}")
    for n in ns:
        for per_file in per_files:
            if per_file > n:
                continue
            for legacy in (True, False):
                if legacy and (n > old_up_to or per_file != old_per_file):
                    continue
                d = tempfile.mkdtemp(prefix="jetdask-fin-")
                try:
                    w = build_ledger(d, n, per_file, blobs, legacy)
                    size = os.path.getsize(os.path.join(d, "ledger.sqlite")) / 1e6
                    led = Ledger(os.path.join(d, "ledger.sqlite"), readonly=True)
                    stored = sum(v["bytes"] for v in led.store.sizes().values()) / 1e6
                    t = time.perf_counter()
                    finalize(d, led)
                    t_fin = time.perf_counter() - t
                    led.close()
                    t_res = float("nan")
                    if not legacy:   # the previous code re-merged at resume what its finalize merges
                        t = time.perf_counter()
                        with Runner(DimuonJets(), None, d, serial=True, progress=False) as r:
                            out = r.run()
                        t_res = time.perf_counter() - t
                        assert out.counts.get("done") == n and out.complete
                    name = "previous" if legacy else "store"
                    print(f"{name:<9}{n:>8}{per_file:>9}{max(1, n // per_file):>7}{w * 1e3:>16.3f}{size:>11.1f}"
                          f"{stored:>12.2f}{t_fin:>12.2f}{t_res:>10.2f}", flush=True)
                finally:
                    shutil.rmtree(d, ignore_errors=True)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, nargs="*", default=[1000, 10000, 100000], help="none: table 1 only")
    ap.add_argument("--per-file", type=int, nargs="+", default=[10, 100, 1000])
    ap.add_argument("--old-up-to", type=int, default=10000)
    ap.add_argument("--old-per-file", type=int, default=100, help="chunks per file of the previous-format rows")
    args = ap.parse_args(argv)
    table_bytes()
    if args.chunks:
        table_scaling(args.chunks, args.per_file, args.old_up_to, args.old_per_file)


if __name__ == "__main__":
    main()
