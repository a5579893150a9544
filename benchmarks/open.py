"""Opening a wide tree: uproot as installed against uproot with jetdask's speedups.

    python benchmarks/open.py [--events 500000] [--repeat 7]

Every chunk task that starts a file on a worker, and every file's planning inspection, opens
the file's ``Events`` tree (uproot deserializes every TBranch). Per file, in fresh processes
that alternate (one imports only uproot, the other applies
:mod:`jetdask.nanoaod.uproot_speedups` first): ``uproot.open(path)["Events"]`` plus the cluster
boundaries planning reads, timed ``--repeat`` times in each process after one untimed open
(imports, page cache). Files: the real PFNano and NanoAOD files of ``../shared/data`` and the
889-branch synthetic MC file of ``benchmarks/engine.py`` (cached under ``benchmarks/.cache/``).
Prints the median open time of each and their ratio, median [min-max] over the rounds.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

TIMER = r"""
import json, sys, time
if sys.argv[1] == "jetdask":
    import jetdask.nanoaod.uproot_speedups as speedups
    speedups.apply()
import uproot
path, n = sys.argv[2], int(sys.argv[3])
def once():
    t = time.perf_counter()
    f = uproot.open(path)
    tree = f["Events"]
    tree.common_entry_offsets()
    dt = time.perf_counter() - t
    f.close()
    return dt, len(tree.branches)
once()
ts = [once() for _ in range(n)]
print(json.dumps({"seconds": [t for t, _ in ts], "branches": ts[0][1]}))
"""


def timed(mode: str, path: str, n: int) -> dict:
    out = subprocess.run([sys.executable, "-c", TIMER, mode, path, str(n)], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=500_000, help="events per synthetic file")
    ap.add_argument("--repeat", type=int, default=7, help="opens per process")
    ap.add_argument("--rounds", type=int, default=3, help="process pairs per file")
    args = ap.parse_args()
    from events_view import sample

    from jetdask.fileset import load_fileset
    files = []
    shared = os.path.join(ROOT, "..", "shared", "data")
    for name in ("pfnano.root", "nano_dy.root"):
        if os.path.exists(os.path.join(shared, name)):
            files.append((name, os.path.abspath(os.path.join(shared, name))))
    fs = load_fileset(sample(os.path.join(HERE, ".cache"), args.events))
    mc = [f for d in fs for f in d.files if "mc" in os.path.basename(f.path)][0]
    files.append((f"synthetic {os.path.basename(mc.path)}", mc.path))

    print(f"{'file':<28}{'branches':>9}{'uproot [ms]':>13}{'jetdask [ms]':>14}   uproot / jetdask")
    for label, path in files:
        plain, fast, ratios, nb = [], [], [], 0
        for _ in range(args.rounds):
            a = timed("uproot", path, args.repeat)
            b = timed("jetdask", path, args.repeat)
            nb = b["branches"]
            plain += a["seconds"]
            fast += b["seconds"]
            ratios.append(statistics.median(a["seconds"]) / statistics.median(b["seconds"]))
        ratios.sort()
        print(f"{label:<28}{nb:>9}{statistics.median(plain) * 1e3:>13.1f}{statistics.median(fast) * 1e3:>14.1f}"
              f"   {statistics.median(ratios):.2f} [{ratios[0]:.2f}-{ratios[-1]:.2f}]")


if __name__ == "__main__":
    main()
