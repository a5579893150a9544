"""Pull test of the light-jet SF derivation on synthetic samples with a known injected mismodelling.

For each seed: a synthetic sample whose data-like files carry the light-jet mistag
mismodelling of :mod:`jetdask.synthetic.truth` (``--strength``; no other data/MC difference),
the DY+jets study with the sample's corrections (no b-tag SF, no variations), the SFs of
the official DeepJet score (``sf_DeepJet_B``: fixed WPs L/M/T of ``deepJet_wp_values`` and
the shape SF) with each MC normalisation (``pretag``, the default of ``jetdask sf``, and
``lumi``), and ``pull = (SF - truth) / sigma_stat`` in every bin with at least
``--min-expected`` MC light jets measured. Prints one row per seed (with the data/MC jet
yield of the selection) and, per normalisation and kind, the combined mean (with its
standard error) and width; the target, for the default ``pretag`` normalisation, is a mean
within +-0.3 and a width within 0.7-1.3. The ``lumi`` rows are for information: they also
measure the sample's luminosity calibration (data/MC yield != 1 shifts every lumi SF).

    python benchmarks/sf_pulls.py --seeds 8 --events 10000 --out /tmp/sf-pulls
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jetdask.scalefactors.pulls import pull_study

NORMS, KINDS = ("pretag", "lumi"), ("wp", "shape")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=8, help="number of seeds (default 8)")
    ap.add_argument("--first-seed", type=int, default=101, help="first seed (default 101)")
    ap.add_argument("--events", type=int, default=10_000, help="events per kind and seed (default 10000)")
    ap.add_argument("--strength", type=float, default=1.0, help="injected mismodelling strength (default 1)")
    ap.add_argument("--min-expected", type=float, default=20.0,
                    help="MC light jets a bin needs to enter (default 20)")
    ap.add_argument("--out", default="sf-pulls", help="work directory (samples and runs are kept for reuse)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    pulls = {(n, k): [] for n in NORMS for k in KINDS}
    ratios = []
    head = "".join(f"{n + ' ' + k:>22}" for n in NORMS for k in KINDS)
    print(f"{'seed':>6}{head}{'data/MC':>9}{'sample s':>10}{'run s':>8}")
    print(f"{'':>6}" + f"{'n   mean  width':>22}" * 4)
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        r = pull_study(os.path.abspath(args.out), seed, args.events, args.strength, args.min_expected)
        cells = []
        for n in NORMS:
            for k in KINDS:
                p = r[n][k]
                pulls[(n, k)].append(p.values)
                cells.append(f"{len(p.values):>10}{p.mean:>6.2f}{p.width:>6.2f}")
        s = r["seconds"]
        ratios.append(r["data_over_mc"])
        print(f"{seed:>6}" + "".join(cells) + f"{r['data_over_mc']:>9.3f}{s['sample']:>10.0f}{s['run']:>8.0f}",
              flush=True)
    ok_all = True
    for (n, k), parts in pulls.items():
        p = np.concatenate(parts)
        ok = len(p) > 1 and abs(p.mean()) <= 0.3 and 0.7 <= p.std(ddof=1) <= 1.3
        ok_all &= ok or n != "pretag"
        verdict = ("PASS" if ok else "FAIL") if n == "pretag" else "info"
        err = p.std(ddof=1) / np.sqrt(len(p))
        print(f"{n:>7} {k:<6} all seeds: {len(p):>4} pulls, mean {p.mean():+.3f} (+-{err:.3f}),"
              f" width {p.std(ddof=1):.3f}  -> {verdict} (mean within +-0.3, width 0.7-1.3)")
    r = np.asarray(ratios)
    print(f"data/MC jet yield of the selection: {r.mean():.3f} +- {r.std(ddof=1) / np.sqrt(len(r)):.3f} "
          "(the lumi SFs carry it; pretag divides it out)" if len(r) > 1 else "")
    print(f"{args.seeds} seeds x {args.events} events per kind, strength {args.strength}: "
          f"{time.perf_counter() - t0:.0f} s")
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
