"""Opening a wide tree: uproot as installed against uproot with jetdask's speedups, all and each alone.

    python benchmarks/open.py [--events 500000] [--repeat 7] [--rounds 3]

Every chunk task that starts a file on a worker, and every file's planning inspection, opens
the file's ``Events`` tree (uproot deserializes every TBranch), and every chunk reads its
branches with one ``TTree.arrays`` call. Per file, in fresh processes that alternate (the
order rotates each round), uproot is patched with none of :mod:`jetdask.nanoaod.uproot_speedups`'
patches, with each one alone, and with all of them (``apply()``). Timed ``--repeat`` times in
each process after one untimed round (imports, page cache): ``uproot.open(path)["Events"]``
plus the cluster boundaries planning reads ("open"), and on that open tree a second
``TTree.arrays`` call of 20 branches over the first 2000 entries ("arrays"; the first call of a
tree is left out, as a chunk task's reads follow the file's first). Files: the real PFNano and
NanoAOD files of ``../shared/data`` and the 889-branch synthetic MC file of
``benchmarks/engine.py`` (cached under ``benchmarks/.cache/``). Prints, per file and patch set,
the median times and the ratio to plain uproot, median [min-max] over the rounds.
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
import jetdask.nanoaod.uproot_speedups as speedups
PATCHES = {"branch_names": speedups.memoize_branch_names, "classname": speedups.windowed_classname,
           "classname_regularize": speedups.memoize_classname_regularize}
mode = sys.argv[1]
if mode == "all":
    speedups.apply()
elif mode != "none":
    assert PATCHES[mode]()
import uproot
path, n = sys.argv[2], int(sys.argv[3])
def once():
    t = time.perf_counter()
    f = uproot.open(path)
    tree = f["Events"]
    tree.common_entry_offsets()
    dt = time.perf_counter() - t
    names = [b for b in tree.keys() if b.startswith("Jet_")][:20] or tree.keys()[:20]
    stop = min(2000, tree.num_entries)
    tree.arrays(names, entry_stop=stop)
    t = time.perf_counter()
    tree.arrays(names, entry_stop=stop)
    da = time.perf_counter() - t
    f.close()
    return dt, da, len(tree.branches)
once()
ts = [once() for _ in range(n)]
print(json.dumps({"open": [t[0] for t in ts], "arrays": [t[1] for t in ts], "branches": ts[0][2]}))
"""
MODES = ("none", "branch_names", "classname", "classname_regularize", "all")


def timed(mode: str, path: str, n: int) -> dict:
    out = subprocess.run([sys.executable, "-c", TIMER, mode, path, str(n)], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    return json.loads(out.stdout)


def _ratio(values: list) -> str:
    values = sorted(values)
    return f"{statistics.median(values):.2f} [{values[0]:.2f}-{values[-1]:.2f}]"


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

    print(f"{'file':<24}{'branches':>9}  {'patches':<22}{'open [ms]':>10}{'ratio':>20}"
          f"{'arrays [ms]':>12}{'ratio':>20}")
    for label, path in files:
        times = {m: {"open": [], "arrays": []} for m in MODES}
        ratios = {m: {"open": [], "arrays": []} for m in MODES}
        nb = 0
        for r in range(args.rounds):
            order = MODES[r % len(MODES):] + MODES[:r % len(MODES)]
            got = {m: timed(m, path, args.repeat) for m in order}
            nb = got["all"]["branches"]
            for m in MODES:
                for what in ("open", "arrays"):
                    times[m][what] += got[m][what]
                    ratios[m][what].append(statistics.median(got["none"][what]) / statistics.median(got[m][what]))
        for i, m in enumerate(MODES):
            head = f"{label:<24}{nb:>9}" if i == 0 else " " * 33
            print(f"{head}  {m:<22}{statistics.median(times[m]['open']) * 1e3:>10.1f}{_ratio(ratios[m]['open']):>20}"
                  f"{statistics.median(times[m]['arrays']) * 1e3:>12.1f}{_ratio(ratios[m]['arrays']):>20}")


if __name__ == "__main__":
    main()
