"""``jetdask plot RUN``: the data/MC figures and the agreement summary of a run."""
from __future__ import annotations

import os

from ..plotting.labels import LABEL_MODES


def add_parser(subparsers) -> None:
    from .common import subparser
    p = subparser(subparsers, "plot", "data/MC figures (CMS style) and chi2/ndf summary of a run",
                  "jetdask plot runs/dy --format png,pdf --channel mumu --only 'DeepJet_nominal*'",
                  codes="exit codes: 0 plots written (or none to make); 2 bad usage or run directory (one line on "
                        "stderr)")
    p.add_argument("run_dir", help="a run directory (with output/hists.json)")
    p.add_argument("--out", default=None, help="output directory (default RUN/plots)")
    p.add_argument("--format", default="png", help="comma-separated file formats, e.g. png,pdf (default png)")
    p.add_argument("--lumi", type=float, default=None,
                   help="integrated luminosity in pb^-1 (as the fileset's 'lumi'); default: summed over the "
                        "data datasets")
    p.add_argument("--channel", default="all",
                   help="'all' (channels summed and each channel, default), 'sum' (summed only) or one "
                        "channel, e.g. mumu")
    p.add_argument("--energy", default=None,
                   help="centre-of-mass energy label, e.g. '13.6 TeV' (default: the fileset's 'energy', else 13 TeV)")
    p.add_argument("--label", default="auto", choices=LABEL_MODES,
                   help="CMS label mode: auto/private = 'Private work' ('Simulation Private work' for synthetic "
                        "events or MC only), preliminary = 'Preliminary' (not for synthetic events), "
                        "simulation, wip = 'Work in progress' (default: auto)")
    p.add_argument("--pair", action="append", default=None, metavar="A,B",
                   help="taggers shown side by side (repeatable; also their distorted variants); default: the "
                        "first two taggers of the run's analysis; 'none' for no side-by-side figures")
    p.add_argument("--name", action="append", default=[], metavar="KEY=TEXT",
                   help="display name of a tagger key (repeatable), e.g. 'DeepJet_nominal=DeepJet, nominal training' "
                        "(default: the internal key)")
    p.add_argument("--log", choices=("auto", "yes", "no"), default="auto",
                   help="log y axis: auto = log for discriminants, for inputs spanning more than two decades "
                        "and where a flavour has < 5%% of the entries, else linear (default: auto)")
    p.add_argument("--only", default=None,
                   help="comma-separated glob patterns of histogram names, e.g. 'DeepJet_*,cutflow'")
    p.add_argument("--quiet", action="store_true", help="do not print the chi2/ndf table")
    p.add_argument("--no-syst", action="store_true",
                   help="no systematic band even when the run has variations (default: stat + syst band)")
    p.add_argument("--no-btag-norm", action="store_true",
                   help="do not normalise the b-tag shape SFs to the yield before tagging (default: normalised, "
                        "stated on the figure)")
    p.add_argument("--breakdown", action="store_true",
                   help="show the systematic band by group (pile-up, b-tag, JES, JER, theory) in the ratio panel")
    p.set_defaults(func=cmd_plot)


def parse_pairs(values) -> list | None:
    """``["A,B", "C,D"]`` -> ``[("A", "B"), ("C", "D")]``; ``["none"]`` -> ``[]``; None -> None (default)."""
    from ..errors import ConfigError

    if values is None:
        return None
    pairs = []
    for v in values:
        if v.strip().lower() == "none":
            continue
        parts = [x.strip() for x in v.split(",")]
        if len(parts) != 2 or not all(parts):
            raise ConfigError(f"expected two tagger names 'A,B', got {v!r}", "--pair")
        pairs.append(tuple(parts))
    return pairs


def parse_names(values) -> dict:
    from ..errors import ConfigError

    names = {}
    for v in values:
        key, sep, text = v.partition("=")
        if not sep or not key.strip() or not text.strip():
            raise ConfigError(f"expected KEY=TEXT, got {v!r}", "--name")
        names[key.strip()] = text.strip()
    return names


def cmd_plot(args) -> int:
    from ..errors import ConfigError
    from ..plotting.run import plot_run

    if not os.path.isdir(args.run_dir):
        raise ConfigError(f"{args.run_dir} is not a directory", "run_dir")
    formats = [f.strip().lstrip(".").lower() for f in args.format.split(",") if f.strip()]
    bad = [f for f in formats if f not in ("png", "pdf", "svg", "eps", "jpg", "jpeg")]
    if not formats or bad:
        raise ConfigError(f"unsupported format(s) {bad or args.format!r}; use e.g. png,pdf", "--format")
    if args.lumi is not None and args.lumi <= 0:
        raise ConfigError("must be positive (pb^-1)", "--lumi")
    log = {"auto": "auto", "yes": True, "no": False}[args.log]
    out_dir = args.out or os.path.join(args.run_dir, "plots")
    paths = plot_run(args.run_dir, out_dir, formats, args.channel, lumi=args.lumi, energy=args.energy,
                     label=args.label, log=log, verbose=not args.quiet, pairs=parse_pairs(args.pair),
                     names=parse_names(args.name), systematics=not args.no_syst,
                     btag_norm=not args.no_btag_norm, breakdown=args.breakdown,
                     only=[x.strip() for x in args.only.split(",") if x.strip()] if args.only else None)
    if not paths:
        print(f"no plots made: the run has no histograms to plot ({args.run_dir})")
        return 0
    print(f"{len(paths)} plot files in {os.path.abspath(out_dir)}")
    print(f"chi2/ndf summary: {os.path.join(os.path.abspath(out_dir), 'summary.json')}")
    return 0
