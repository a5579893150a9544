"""One benchmark script, run against two (or more) source trees in alternating rounds.

    python benchmarks/trees.py --tree old=/tmp/old --tree new=. --rounds 4 \\
        --metric "1 worker=jetdask, 1 worker, 20k chunks\\s+([\\d.]+)" \\
        -- engine.py --events 100000 --chunks 20000 --repeat 1 --no-scaling

Each round runs ``TREE/benchmarks/SCRIPT ARGS`` once per tree, in a fresh process whose
``PYTHONPATH`` starts with that tree (and its ``tests/``), so the benchmark, jetdask and the
test analyses all come from the same commit: each tree's own copy of the script, as it fits
that tree's internals (``--script-tree NAME``: that tree's copy everywhere, for a script that
uses only the public API). The order of the trees turns every round (old, new, then new, old),
so that a machine whose load drifts (a shared one) favours neither. Extra paths that the runs
should share (a sample cache) are best passed as the script's own options (``--workdir``).

``--metric NAME=REGEX``: a number read from each run's output (the regular expression's first
group, the first match); per metric the table gives each tree's median over the rounds and the
ratio of every tree to the first one, taken per round (both runs of a round back to back) and
quoted as median [min-max]. ``uptime``'s load average is printed before every round. Each
run's full output is kept with ``--log DIR``.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time


def run_in_tree(tree: str, script: str, args: list[str], timeout: float, script_tree: str | None = None
                ) -> tuple[str, float]:
    """(output, wall seconds) of ``python TREE/benchmarks/SCRIPT ARGS`` with TREE first on the path
    (``script_tree``: the script's copy from that tree instead)."""
    env = dict(os.environ)
    paths = [tree, os.path.join(tree, "tests")]
    env["PYTHONPATH"] = os.pathsep.join(paths + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    t = time.perf_counter()
    path = os.path.join(script_tree or tree, "benchmarks", script)
    proc = subprocess.run([sys.executable, path, *args], cwd=tree, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    wall = time.perf_counter() - t
    if proc.returncode:
        raise SystemExit(f"{script} in {tree} failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}")
    return proc.stdout, wall


def load() -> str:
    try:
        return ", ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", action="append", required=True, metavar="NAME=DIR",
                    help="a source tree (repeatable; the first is the reference of the ratios)")
    ap.add_argument("--metric", action="append", default=[], metavar="NAME=REGEX",
                    help="a number read from each run's output (first group of the first match)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=1800, help="seconds one run may take")
    ap.add_argument("--script-tree", default=None, metavar="NAME",
                    help="run that tree's copy of the script in every tree (a script that uses only the "
                         "public API; it must not put its own tree on sys.path ahead of PYTHONPATH)")
    ap.add_argument("--log", default=None, metavar="DIR", help="keep each run's output in DIR")
    ap.add_argument("script", help="the benchmark, relative to the tree's benchmarks/ (e.g. engine.py)")
    ap.add_argument("args", nargs=argparse.REMAINDER, help="its arguments (after --)")
    a = ap.parse_args()
    trees = [t.split("=", 1) for t in a.tree]
    trees = [(name, os.path.abspath(path)) for name, path in trees]
    metrics = [(m.split("=", 1)[0], re.compile(m.split("=", 1)[1])) for m in a.metric]
    metrics.append(("run wall [s]", None))
    args = a.args[1:] if a.args[:1] == ["--"] else a.args
    values: dict = {(m, t): [] for m, _ in metrics for t, _ in trees}
    loads = []
    for rnd in range(a.rounds):
        order = trees if rnd % 2 == 0 else trees[::-1]
        loads.append(load())
        print(f"round {rnd + 1}/{a.rounds}, load average {loads[-1]}: {' then '.join(n for n, _ in order)}",
              flush=True)
        for name, path in order:
            out, wall = run_in_tree(path, a.script, args, a.timeout, dict(trees).get(a.script_tree))
            if a.log:
                os.makedirs(a.log, exist_ok=True)
                with open(os.path.join(a.log, f"{rnd + 1}-{name}.txt"), "w") as f:
                    f.write(out)
            for metric, rx in metrics:
                if rx is None:
                    values[(metric, name)].append(wall)
                    continue
                m = rx.search(out)
                if m is None:
                    raise SystemExit(f"metric {metric!r} not found in the output of {name}:\n{out[-3000:]}")
                values[(metric, name)].append(float(m.group(1)))
    ref = trees[0][0]
    print(f"\n{a.script} {' '.join(args)}: {a.rounds} rounds, tree order alternating; load averages "
          f"(1, 5, 15 min) before each round: {'; '.join(loads)}")
    head = f"{'metric':<28}" + "".join(f"{n:>12}" for n, _ in trees)
    head += "".join(f"{n + ' / ' + ref:>28}" for n, _ in trees[1:])
    print(head)
    for metric, _ in metrics:
        row = f"{metric:<28}" + "".join(f"{statistics.median(values[(metric, n)]):>12.3g}" for n, _ in trees)
        for n, _ in trees[1:]:
            r = sorted(x / y for x, y in zip(values[(metric, n)], values[(metric, ref)]))
            row += f"{f'{statistics.median(r):.2f} [{r[0]:.2f}-{r[-1]:.2f}]':>28}"
        print(row)


if __name__ == "__main__":
    main()
