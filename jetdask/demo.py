"""``jetdask demo``: the synthetic DY+jets data/MC study, end to end, on a LocalCluster.

1. writes a synthetic PFNano sample (MC-like and data-like, with mismodelling);
2. prepares taggers (trains small nominal and adversarial DeepJet models when the
   training module is available, else skips custom taggers);
3. runs the DY+jets analysis (``analyses/dy_jets.py``) on a LocalCluster with the
   engine (progress bar, ledger, resumable);
4. writes the data/MC plots and the agreement summary, and prints where they are.

Everything lands in ``--out`` (default ``demo-output``); running it again reuses the sample
and resumes the run.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _analysis_path() -> str:
    path = REPO / "analyses" / "dy_jets.py"
    if not path.exists():
        from .errors import ConfigError
        raise ConfigError(f"{path} not found: the demo runs from a source checkout", "analysis")
    return str(path)


def run_demo(out: str = "demo-output", events: int = 200_000, files: int = 2, seed: int = 1,
             mismodel: float = 1.0, workers: int = 2, train: bool = True, epochs: int = 3) -> dict:
    from .plugin import load_analysis
    from .runner import Runner
    from .synthetic import generate_sample

    out = os.path.abspath(out)
    os.makedirs(out, exist_ok=True)
    t0 = time.time()
    sample = os.path.join(out, "sample")
    fileset = os.path.join(sample, "fileset.json")
    if not os.path.exists(fileset):
        print(f"[1/4] writing {events} synthetic events (data + MC, mismodel {mismodel}) to {sample}")
        generate_sample(sample, events=events, files=files, seed=seed, mismodel=mismodel, progress=True)
    else:
        print(f"[1/4] reusing the sample in {sample}")

    taggers = []
    try:
        from .training.demo import demo_taggers
    except ImportError:
        demo_taggers = None
    if train and demo_taggers is not None:
        print("[2/4] preparing taggers (nominal and adversarial)")
        taggers = demo_taggers(fileset, os.path.join(out, "taggers"), epochs=epochs)
    else:
        print("[2/4] no custom taggers (official DeepJet scores only)")

    print(f"[3/4] running the DY+jets study on a LocalCluster with {workers} workers")
    from .cluster import close_cluster, start_cluster
    client = start_cluster("local", n_workers=workers)
    try:
        analysis = load_analysis(_analysis_path() + ":DYJets", taggers=taggers)
        with Runner(analysis, fileset, os.path.join(out, "run"), client) as runner:
            result = runner.run()
    finally:
        close_cluster(client)

    plots = []
    try:
        from .plotting import plot_run
    except ImportError:
        plot_run = None
    if plot_run is not None:
        print("[4/4] plotting")
        plots = plot_run(os.path.join(out, "run"), os.path.join(out, "plots"))
    dt = time.time() - t0
    print(f"demo finished in {dt:.0f} s: run directory {os.path.join(out, 'run')}")
    if plots:
        print(f"{len(plots)} plots in {os.path.join(out, 'plots')}")
    return {"run": os.path.join(out, "run"), "plots": plots, "complete": result.complete, "seconds": dt}


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="synthetic DY+jets data/MC study with taggers on a LocalCluster")
    p.add_argument("--out", default="demo-output")
    p.add_argument("--events", type=int, default=200_000, help="events per kind (data, MC)")
    p.add_argument("--files", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--mismodel", type=float, default=1.0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--no-train", action="store_true")

    def cmd(args):
        res = run_demo(args.out, args.events, args.files, args.seed, args.mismodel, args.workers,
                       not args.no_train, args.epochs)
        return 0 if res["complete"] else 3

    p.set_defaults(func=cmd)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(0)
