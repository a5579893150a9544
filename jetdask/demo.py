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


def analysis_file(name: str = "dy_jets.py") -> str:
    """An example analysis of ``analyses/``: in the source checkout, else where a wheel installs
    it (``PREFIX/share/jetdask/analyses``: the environment's prefix, or the user's)."""
    import site
    import sysconfig
    places = [REPO / "analyses", Path(sysconfig.get_path("data")) / "share" / "jetdask" / "analyses"]
    if site.ENABLE_USER_SITE and site.USER_BASE:
        places.append(Path(site.USER_BASE) / "share" / "jetdask" / "analyses")
    for place in places:
        if (place / name).is_file():
            return str(place / name)
    from .errors import ConfigError
    raise ConfigError(f"{name} not found in {', '.join(str(p) for p in places)}: reinstall jetdask", "analysis")


def _analysis_path() -> str:
    return analysis_file("dy_jets.py")


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


def _inputs_digest(run_dir: str) -> str:
    import hashlib
    path = os.path.join(run_dir, "output", "hists.json")
    if not os.path.exists(path):
        return ""
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _plots(run_dir: str, plot_dir: str) -> list[str]:
    """The data/MC plots, rebuilt only when the run's histograms changed (digest in ``PLOTS/inputs.sha256``)."""
    from .engine.progress import say, step
    from .plotting import plot_run
    stamp = os.path.join(plot_dir, "inputs.sha256")
    digest = _inputs_digest(run_dir)
    if digest and os.path.exists(stamp) and os.path.exists(os.path.join(plot_dir, "summary.json")):
        with open(stamp) as f:
            if f.read().strip() == digest:
                plots = sorted(str(p) for p in Path(plot_dir).rglob("*") if p.suffix in (".png", ".pdf", ".svg"))
                say(f"plotting: reusing {len(plots)} plots in {plot_dir} (histograms unchanged)")
                return plots
    with step("plotting"):
        # display names for the slides; side by side: the run's first two taggers (nominal, adversarial)
        names = {"DeepJet_nominal": "DeepJet, nominal training", "DeepJet_adversarial": "DeepJet, adversarial training"}
        plots = plot_run(run_dir, plot_dir, verbose=False, names=names)
    if digest:
        with open(stamp, "w") as f:
            f.write(digest + "\n")
    return plots


def run_demo(out: str = "demo-output", events: int = 200_000, files: int = 2, seed: int = 1,
             mismodel: float = 1.0, workers: int = 2, train: bool = True, epochs: int = 3,
             distortions=("fgsm0.05",), train_events: int = 40_000) -> dict:
    from .cluster import close_cluster, start_cluster
    from .engine.runner import Runner
    from .plugin import load_analysis
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
    corrections = os.path.join(sample, "corrections.yaml")
    if not os.path.exists(corrections):          # a sample written before the corrections existed
        from .synthetic.pog import write_corrections
        write_corrections(sample, mismodel)

    client = start_cluster("local", n_workers=workers)
    from .engine.progress import announce_dashboard
    announce_dashboard(client.dashboard_link, f"LocalCluster with {workers} workers, dashboard ")
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
                                 distortions=list(distortions) if taggers else [], corrections=corrections)
        print(f"      with corrections and systematic variations ({corrections}); {analysis.output_summary()}")
        with Runner(analysis, fileset, os.path.join(out, "run"), client) as runner:
            runner.step = "DY+jets study"
            result = runner.run()
    finally:
        close_cluster(client)

    print("[4/4] plotting")
    plots = _plots(os.path.join(out, "run"), os.path.join(out, "plots"))
    dt = time.time() - t0
    _print_agreement(os.path.join(out, "plots", "summary.json"), taggers, distortions)
    print(f"demo finished in {dt:.0f} s: run directory {os.path.join(out, 'run')}")
    print(f"{len(plots)} plots in {os.path.join(out, 'plots')}")
    from .scalefactors.report import demo_summary  # the demo ends with the taggers' light-jet SFs
    print(demo_summary(os.path.join(out, "run"), os.path.join(out, "sf")))
    return {"run": os.path.join(out, "run"), "plots": plots, "complete": result.complete, "seconds": dt,
            "taggers": taggers}
