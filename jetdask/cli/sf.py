"""``jetdask sf RUN --out sf.json``: light-jet SFs of a finished DY+jets run."""
from __future__ import annotations

import os


def add_parser(subparsers) -> None:
    from .common import positive_int, subparser
    p = subparser(subparsers, "sf", "light-jet scale factors of a DY+jets run, as a correctionlib JSON (POG structure)",
                  "jetdask sf runs/dy --out sf.json --wp-file sample/btagging.json.gz --wp nominal=L:0.2,M:0.6,T:0.9",
                  codes="exit codes: 0 scale factors written; 2 bad usage or a run without sf_* histograms (one line "
                        "on stderr)")
    p.add_argument("run_dir", help="a finished run directory of the DY+jets study (with sf_* histograms)")
    p.add_argument("--out", required=True, metavar="FILE",
                   help="correctionlib JSON to write (.json or .json.gz); beside it FILE_summary.json (every number) "
                        "and FILE_comparison.json (the tagger table)")
    p.add_argument("--wp-file", default=None, metavar="FILE",
                   help="b-tagging correction file whose <tagger>_wp_values give the official working points "
                        "(default: the btagging file of the run's corrections config, when it names one)")
    p.add_argument("--wp", action="append", default=[], metavar="TAGGER=L:CUT,M:CUT,...",
                   help="working points of a tagger (repeatable), e.g. nominal=L:0.2,M:0.6,T:0.9; default: from "
                        "--wp-file (official DeepJet), else the cuts with 10%%, 1%%, 0.1%% MC light mistag rate")
    p.add_argument("--channel", default="all", help="'all' (channels summed, default) or one channel, e.g. mumu")
    p.add_argument("--norm", choices=("pretag", "lumi"), default="pretag",
                   help="MC normalisation: pretag = scaled to the data jet yield of each pT/|eta| bin before the cut "
                        "(default; the SF is a ratio of efficiencies), lumi = xsec x lumi / sum of weights")
    p.add_argument("--taggers", default=None, metavar="LIST",
                   help="comma-separated tagger keys to derive (default: every sf_* histogram), e.g. DeepJet,nominal")
    p.add_argument("--templates", default=None, metavar="FILE.root",
                   help="also write per-flavour templates with Up/Down variations (ROOT, for external fits)")
    p.add_argument("--figure", default=None, metavar="FILE",
                   help="also draw the tagger comparison (png/pdf/svg by the suffix)")
    p.add_argument("--closure", default=None, metavar="DIR",
                   help="also rerun the run's analysis with the derived DeepJet shape SF applied to MC (and its "
                        "uncertainty as variations) and compare data/MC before and after: figures and "
                        "summary.json in DIR")
    p.add_argument("--workers", type=positive_int, default=None, metavar="N",
                   help="--closure: run on a LocalCluster of N workers (default: in this process, chunk by chunk)")
    p.set_defaults(func=cmd_sf)


def parse_wps(values) -> dict:
    from ..errors import ConfigError
    from ..scalefactors.workingpoints import parse
    out = {}
    for v in values:
        tagger, sep, spec = v.partition("=")
        if not sep or not tagger.strip():
            raise ConfigError(f"expected TAGGER=L:CUT,..., got {v!r}", "--wp")
        out[tagger.strip()] = parse(spec, "--wp")
    return out


def cmd_sf(args) -> int:
    from ..errors import ConfigError
    from ..scalefactors.report import write_outputs

    if not os.path.isdir(args.run_dir):
        raise ConfigError(f"{args.run_dir} is not a directory", "run_dir")
    out_dir = os.path.dirname(os.path.abspath(args.out))
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError:
        pass
    if not os.access(out_dir, os.W_OK):
        raise ConfigError(f"cannot write into {out_dir}", "--out")
    if args.wp_file is not None and not os.path.exists(args.wp_file):
        raise ConfigError(f"{args.wp_file} does not exist", "--wp-file")
    taggers = [t.strip() for t in args.taggers.split(",") if t.strip()] if args.taggers else None
    res, paths = write_outputs(args.run_dir, args.out, wp_file=args.wp_file, wps=parse_wps(args.wp),
                               channel=args.channel, norm=args.norm, taggers=taggers, templates=args.templates,
                               figure=args.figure)
    print(res.format())
    for n in res.short_notes():
        print(f"NOTE: {n}")
    if len(res.short_notes()) < len(res.notes):
        print(f"NOTE: every undefined bin is listed in {paths['summary']} (notes)")
    if "templates" in paths:
        print(f"templates: {paths['templates']}")
    if "figure" in paths:
        print(f"comparison figure: {paths['figure']}")
    if args.closure:
        _closure(args, paths["corrections"])
    kinds = f"{len(res.wp)} working-point and {len(res.shape)} shape tables"
    print(f"scale factors ({kinds}) written to {paths['corrections']}; numbers in {paths['summary']}")
    return 0


def _closure(args, sf_path: str) -> None:
    from ..scalefactors.closure import compare, format_summary, run_closure
    client = None
    if args.workers:
        from ..cluster import start_cluster
        client = start_cluster("local", n_workers=args.workers)
    try:
        after = run_closure(args.run_dir, sf_path, args.closure, client=client, serial=client is None, progress=True)
    finally:
        if client is not None:
            from ..cluster import close_cluster
            close_cluster(client)
    summary = compare(args.run_dir, after, args.closure)
    print(format_summary(summary))
    print(f"closure: figures and summary.json in {args.closure}")
