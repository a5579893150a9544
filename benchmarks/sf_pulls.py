"""Pull test of the light-jet SF derivation on synthetic samples with a known injected mismodelling.

For each seed: a synthetic sample whose data-like files carry the light-jet mistag
mismodelling of :mod:`jetdask.synthetic.truth` (``--strength``; no other data/MC difference),
the DY+jets study with the sample's corrections (no b-tag SF, no variations), the SFs of
the official DeepJet score (``sf_DeepJet_B``: fixed WPs L/M/T of ``deepJet_wp_values`` and
the shape SF), and ``pull = (SF - truth) / sigma_stat`` in every bin with at least
``--min-expected`` MC light jets measured. Prints one row per seed and the combined mean and
width; the target is a mean within +-0.3 and a width within 0.7-1.3.

    python benchmarks/sf_pulls.py --seeds 6 --events 10000 --out /tmp/sf-pulls
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jetdask.scalefactors.pulls import pull_study


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=6, help="number of seeds (default 6)")
    ap.add_argument("--first-seed", type=int, default=101, help="first seed (default 101)")
    ap.add_argument("--events", type=int, default=10_000, help="events per kind and seed (default 10000)")
    ap.add_argument("--strength", type=float, default=1.0, help="injected mismodelling strength (default 1)")
    ap.add_argument("--min-expected", type=float, default=20.0,
                    help="MC light jets a bin needs to enter (default 20)")
    ap.add_argument("--out", default="sf-pulls", help="work directory (samples and runs are kept for reuse)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    rows, all_wp, all_shape = [], [], []
    print(f"{'seed':>6}{'WP pulls':>10}{'mean':>8}{'width':>8}{'shape pulls':>13}{'mean':>8}{'width':>8}"
          f"{'sample s':>10}{'run s':>8}")
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        r = pull_study(os.path.abspath(args.out), seed, args.events, args.strength, args.min_expected)
        wp, sh, s = r["wp"], r["shape"], r["seconds"]
        all_wp.append(wp.values)
        all_shape.append(sh.values)
        rows.append(r)
        print(f"{seed:>6}{len(wp.values):>10}{wp.mean:>8.2f}{wp.width:>8.2f}{len(sh.values):>13}{sh.mean:>8.2f}"
              f"{sh.width:>8.2f}{s['sample']:>10.0f}{s['run']:>8.0f}", flush=True)
    verdict = []
    for label, parts in (("WP", all_wp), ("shape", all_shape)):
        p = np.concatenate(parts)
        ok = abs(p.mean()) <= 0.3 and 0.7 <= p.std(ddof=1) <= 1.3
        verdict.append(ok)
        print(f"{label:>6} all seeds: {len(p)} pulls, mean {p.mean():+.3f} (+-{p.std(ddof=1) / np.sqrt(len(p)):.3f}), "
              f"width {p.std(ddof=1):.3f}  -> {'PASS' if ok else 'FAIL'} (mean within +-0.3, width 0.7-1.3)")
    print(f"{args.seeds} seeds x {args.events} events per kind, strength {args.strength}: "
          f"{time.perf_counter() - t0:.0f} s")
    return 0 if all(verdict) else 1


if __name__ == "__main__":
    sys.exit(main())
