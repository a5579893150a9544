"""``jetdask demo``: the synthetic DY+jets data/MC study, end to end, on a LocalCluster.

1. writes a synthetic PFNano sample (MC-like and data-like, with mismodelling);
2. preprocesses part of the MC and trains a small nominal and an FGSM-adversarial DeepJet
   (:func:`jetdask.training.demo.demo_taggers`; reused when run again), with their
   evaluation (ROC, AUC, robustness);
3. runs the DY+jets analysis (``analyses/dy_jets.py``) on the LocalCluster with both taggers
   and their distorted-input variants in the same pass (progress bar, ledger, resumable);
4. writes the data/MC plots and the chi2/ndf summary, and prints where everything is.

Everything lands in ``--out`` (default ``demo-output``); running it again reuses the sample,
the taggers and the finished chunks.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _analysis_path() -> str:
    path = REPO / "analyses" / "dy_jets.py"
    if not path.exists():
        from .errors import ConfigError
        raise ConfigError(f"{path} not found: the demo runs from a source checkout", "analysis")
    return str(path)


def _print_agreement(summary_path: str, taggers: list, distortions=()) -> None:
    """chi2/ndf of every tagger's discriminants (all channels), nominal beside adversarial."""
    if not os.path.exists(summary_path):
        return
    with open(summary_path) as f:
        summary = json.load(f)
    found = {}
    for e in summary.get("plots", {}).values():
        if e.get("ndf") and e.get("channel") in ("all", "sum", "", None):
            found.setdefault(e.get("histogram"), e["chi2"] / e["ndf"])
    names = ["DeepJet"] + [f"{t['name']}{v}" for t in taggers for v in [""] + [f"@{d}" for d in distortions]]
    print(f"{'data/MC chi2/ndf':<34}{'BvsL':>8}{'CvsB':>8}{'CvsL':>8}")
    for n in names:
        vals = [found.get(f"{n}_{d}") for d in ("BvsL", "CvsB", "CvsL")]
        if any(v is not None for v in vals):
            print(f"{n:<34}" + "".join(f"{v:>8.2f}" if v is not None else f"{'-':>8}" for v in vals))


def run_demo(out: str = "demo-output", events: int = 200_000, files: int = 2, seed: int = 1,
             mismodel: float = 1.0, workers: int = 2, train: bool = True, epochs: int = 3,
             distortions=("fgsm0.05",), train_events: int = 40_000) -> dict:
    from .cluster import close_cluster, start_cluster
    from .plugin import load_analysis
    from .engine.runner import Runner
    from .synthetic import generate_sample

    out = os.path.abspath(out)
    os.makedirs(out, exist_ok=True)
    t0 = time.time()
    sample = os.path.join(out, "sample")
    fileset = os.path.join(sample, "fileset.json")
    if not os.path.exists(fileset):
        print(f"[1/4] writing {events} synthetic events per kind (data + MC, mismodel {mismodel}) to {sample}")
        generate_sample(sample, events=events, files=files, seed=seed, mismodel=mismodel, progress=True)
    else:
        print(f"[1/4] reusing the sample in {sample}")

    client = start_cluster("local", n_workers=workers)
    print(f"      LocalCluster with {workers} workers, dashboard {client.dashboard_link}")
    try:
        taggers = []
        if train:
            from .training.demo import demo_taggers
            print(f"[2/4] preprocessing and training a nominal and an adversarial DeepJet ({epochs} epochs)")
            taggers = demo_taggers(fileset, os.path.join(out, "taggers"), epochs=epochs, client=client,
                                   max_events=train_events, max_jets=train_events)
            print(f"      evaluation (ROC, AUC, robustness) in {os.path.join(out, 'taggers', 'evaluation')}")
        else:
            print("[2/4] no custom taggers (official DeepJet scores only)")
        print(f"[3/4] running the DY+jets study with {len(taggers)} taggers x {1 + len(distortions)} input variants")
        analysis = load_analysis(_analysis_path() + ":DYJets", taggers=taggers,
                                 distortions=list(distortions) if taggers else [])
        with Runner(analysis, fileset, os.path.join(out, "run"), client) as runner:
            result = runner.run()
    finally:
        close_cluster(client)

    from .plotting import plot_run
    print("[4/4] plotting")
    # side by side: the run's first two taggers (nominal, adversarial) by default; display names for the slides
    names = {"DeepJet_nominal": "DeepJet, nominal training", "DeepJet_adversarial": "DeepJet, adversarial training"}
    plots = plot_run(os.path.join(out, "run"), os.path.join(out, "plots"), names=names)
    dt = time.time() - t0
    _print_agreement(os.path.join(out, "plots", "summary.json"), taggers, distortions)
    print(f"demo finished in {dt:.0f} s: run directory {os.path.join(out, 'run')}")
    print(f"{len(plots)} plots in {os.path.join(out, 'plots')}")
    return {"run": os.path.join(out, "run"), "plots": plots, "complete": result.complete, "seconds": dt,
            "taggers": taggers}


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="synthetic DY+jets data/MC study with taggers on a LocalCluster")
    p.add_argument("--out", default="demo-output")
    p.add_argument("--events", type=int, default=200_000, help="events per kind (data, MC)")
    p.add_argument("--files", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--mismodel", type=float, default=1.0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--train-events", type=int, default=40_000, help="MC events (at most) used for training")
    p.add_argument("--distortions", default="fgsm0.05",
                   help="comma-separated input distortions run for every tagger (e.g. noise0.1,fgsm0.05; '' none)")
    p.add_argument("--no-train", action="store_true", help="official DeepJet scores only")

    def cmd(args):
        dist = [d.strip() for d in args.distortions.split(",") if d.strip()]
        res = run_demo(args.out, args.events, args.files, args.seed, args.mismodel, args.workers,
                       not args.no_train, args.epochs, dist, args.train_events)
        return 0 if res["complete"] else 3

    p.set_defaults(func=cmd)
