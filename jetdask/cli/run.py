"""``jetdask run``, ``jetdask resubmit``, ``jetdask status`` and ``jetdask sample``."""
from __future__ import annotations

import os
import sys

from ..config import default
from ..errors import ConfigError
from .common import (
    EXIT_FAILED_CHUNKS,
    EXIT_OK,
    client_from_args,
    event_count,
    memory_size,
    nonnegative_float,
    nonnegative_int,
    positive_int,
    subparser,
)


def _add_run_options(p):
    g = p.add_argument_group("cluster and engine")
    g.add_argument("--cluster", default=None, metavar="KIND",
                   help="where chunks run: local (default: a LocalCluster on this machine), slurm, htcondor, "
                        "gateway (dask-gateway at an analysis facility), or a scheduler address such as "
                        "tls://host:8786")
    g.add_argument("--workers", type=positive_int, default=None, metavar="N",
                   help="worker processes of the LocalCluster (default: one per core); gateway: the "
                        "cluster's size (default: adaptive, the profile's minimum to maximum)")
    g.add_argument("--jobs", type=positive_int, default=None, metavar="N",
                   help="slurm/htcondor: batch jobs to start (default: adaptive, 0 to 10 jobs)")
    g.add_argument("--profile", default=None, metavar="YAML",
                   help="slurm/htcondor/gateway/tls://: cluster profile, a YAML path or a shipped name "
                        "(slurm, htcondor, gateway)")
    g.add_argument("--memory-per-worker", type=memory_size, default=None, metavar="SIZE",
                   help="memory limit of each worker, e.g. 4GiB (default: local: 80%% of RAM / workers, "
                        "at most 4 GiB; batch: the profile's memory / processes); chunks are sized to fit it")
    g.add_argument("--retries", type=nonnegative_int, default=None, metavar="N",
                   help="retries of a chunk after a transient error (I/O, lost worker) (default: "
                        f"jetdask.retries, {default('retries')})")
    g.add_argument("--serial", action="store_true",
                   help="run the chunks one by one in this process, no cluster (debugging)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar (messages still go to stderr)")
    g.add_argument("--allow-analysis-change", action="store_true",
                   help="reuse a run directory made by another analysis, source or arguments (refused otherwise: "
                        "its done chunks were made by the recorded one); only when the change cannot alter them")


def _check_run_args(args, resubmit: bool) -> None:
    """Every input of ``run``/``resubmit``, before a cluster starts or a directory is made."""
    from .. import validation
    validation.check_cluster(args.cluster, getattr(args, "profile", None))
    if resubmit:
        validation.check_run_dir_exists(args.run_dir)
    validation.check_writable_dir(args.run_dir, "--run-dir" if not resubmit else "run_dir")


def _kwargs(args) -> dict:
    import json
    if not getattr(args, "kwargs", None):
        return {}
    try:
        kwargs = json.loads(args.kwargs)
    except json.JSONDecodeError as err:
        raise ConfigError(f"not valid JSON ({err}): {args.kwargs!r}", "--kwargs") from None
    if not isinstance(kwargs, dict):
        raise ConfigError("must be a JSON object of keyword arguments", "--kwargs")
    return kwargs


def _recorded_analysis(run_dir: str) -> tuple[str | None, dict]:
    import os

    from ..engine.ledger import Ledger
    led = Ledger(os.path.join(run_dir, "ledger.sqlite"), readonly=True)
    try:
        return led.get_meta("analysis"), led.get_meta("analysis_kwargs") or {}
    finally:
        led.close()


def _finish(out, run_dir) -> int:
    from ..engine.status import format_status, run_status
    print(format_status(run_status(run_dir)), file=sys.stderr if not out.complete else sys.stdout)
    return EXIT_OK if out.complete else EXIT_FAILED_CHUNKS


def cmd_run(args, resubmit=False) -> int:
    from ..plugin import load_analysis
    _check_run_args(args, resubmit)
    spec = getattr(args, "analysis", None)
    kwargs = _kwargs(args)
    if getattr(args, "corrections", None):
        if not os.path.exists(args.corrections):
            raise ConfigError(f"{args.corrections} not found", "--corrections")
        kwargs["corrections"] = os.path.abspath(args.corrections)
    if os.path.isdir(args.run_dir):  # name a busy directory's holder before reading it
        from ..engine.lock import RunLock
        RunLock(args.run_dir).acquire().release()
    if resubmit and not spec:
        spec, kwargs = _recorded_analysis(args.run_dir)
        if not spec:
            raise ConfigError("the run does not record its analysis; pass --analysis FILE.py:NAME", "analysis")
    fileset = getattr(args, "fileset", None)
    if fileset is not None:
        from ..fileset import load_fileset
        load_fileset(fileset)                     # every key checked here, not after a cluster started
    analysis = load_analysis(spec, **kwargs)      # syntax/import errors, tagger files (loaded by the analysis)
    from ..engine.binding import check_run_dir
    check_run_dir(args.run_dir, analysis, args.allow_analysis_change)   # the directory's analysis, arguments
    if callable(getattr(analysis, "output_summary", None)):   # e.g. histograms x variations x categories
        print(analysis.output_summary(), file=sys.stderr)
    from ..engine.runner import Runner
    client = client_from_args(args)
    try:
        runner = Runner(analysis, fileset, args.run_dir, client, chunk_size=getattr(args, "chunk_size", None),
                        retries=args.retries, progress=not args.no_progress, serial=args.serial,
                        memory_limit=args.memory_per_worker if args.serial else None,
                        allow_analysis_change=args.allow_analysis_change)
        try:
            out = runner.resubmit() if resubmit else runner.run()
        finally:
            runner.close()
    finally:
        if client is not None:
            from ..cluster import close_cluster
            from ..engine.interrupts import sigint_deferred
            with sigint_deferred():              # a second Ctrl-C does not cut the cluster's close short
                close_cluster(client)
    return _finish(out, args.run_dir)


def cmd_status(args) -> int:
    from ..engine.status import format_status, run_status
    st = run_status(args.run_dir)
    if args.json:
        import json
        print(json.dumps(st, indent=2))
    else:
        print(format_status(st))
    return EXIT_OK if st["complete"] else EXIT_FAILED_CHUNKS


def cmd_sample(args) -> int:
    from .. import validation
    from ..synthetic import generate_sample
    if args.events < args.files:
        raise ConfigError(f"need at least one event per file ({args.files} files)", "--events")
    validation.check_writable_dir(args.out, "--out")
    path = generate_sample(args.out, events=args.events, files=args.files, seed=args.seed,
                           mismodel=args.mismodel, progress=True, sf_mismodel=args.sf_mismodel)
    print(f"fileset written to {path}")
    return EXIT_OK


def add_parsers(sub) -> None:
    """``run``, ``resubmit``, ``status`` and ``sample`` on the top-level parser's subparsers."""
    p = subparser(sub, "run", "run an analysis over a fileset into a run directory (resumes an existing one)",
                  "jetdask run analyses/dimuon.py:Dimuon --fileset synth/fileset.json --run-dir runs/dimuon "
                  "--workers 2")
    p.add_argument("analysis", help="the analysis: FILE.py:NAME or package.module:NAME (a jetdask.Analysis class "
                                    "or instance)")
    p.add_argument("--fileset", required=True, metavar="FILE",
                   help="fileset JSON/YAML: datasets, their files (relative paths: relative to the fileset file) "
                        "and metadata (is_data, xsec in pb, lumi in pb^-1)")
    p.add_argument("--run-dir", required=True, metavar="DIR",
                   help="run directory: ledger.sqlite, output/hists.json; an existing one is resumed")
    p.add_argument("--chunk-size", type=event_count, default=None, metavar="EVENTS",
                   help="largest chunk in events, e.g. 50000, 1e5 or 100k (default: jetdask.chunk-size, "
                        f"{default('chunk-size')}; "
                        "chunk edges follow the files' clusters, and chunks are made smaller when their estimated "
                        "memory would not fit a worker)")
    p.add_argument("--kwargs", default=None, metavar="JSON",
                   help='JSON object of arguments for the analysis class, e.g. \'{"distortions": ["noise0.1"]}\' '
                        '(recorded in the run directory for resubmit)')
    p.add_argument("--corrections", default=None, metavar="YAML",
                   help="corrections config (JEC/JER, pile-up, b-tag SFs and systematic variations), e.g. the "
                        "corrections.yaml that jetdask sample writes; passed to the analysis as corrections=")
    _add_run_options(p)
    p.set_defaults(func=cmd_run)

    p = subparser(sub, "resubmit", "rerun only the failed or unfinished chunks of a run",
                  "jetdask resubmit runs/dimuon")
    p.add_argument("run_dir", help="an existing run directory")
    p.add_argument("--analysis", default=None, metavar="SPEC",
                   help="FILE.py:NAME to use instead of the recorded analysis (e.g. after fixing a bug; "
                        "with --allow-analysis-change when chunks are done)")
    _add_run_options(p)
    p.set_defaults(func=lambda a: cmd_run(a, resubmit=True))

    p = subparser(sub, "status", "chunk states, completeness per dataset and failures of a run",
                  "jetdask status runs/dimuon --json",
                  codes="exit codes: 0 the run is complete; 3 chunks failed or are not done; 2 not a run directory")
    p.add_argument("run_dir", help="a run directory")
    p.add_argument("--json", action="store_true", help="machine-readable JSON instead of the table")
    p.set_defaults(func=cmd_status)

    p = subparser(sub, "sample", "write synthetic PFNano data-like and MC-like files and their fileset.json",
                  "jetdask sample --out synth --events 20000 --files 2 --seed 1 --mismodel 0.5")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (fileset paths are relative to it)")
    p.add_argument("--events", type=event_count, default=100_000, metavar="N",
                   help="events per kind, data and MC (default: 100000; about 6.9 kB/event on disk)")
    p.add_argument("--files", type=positive_int, default=2, metavar="N", help="files per kind (default: 2)")
    p.add_argument("--seed", type=nonnegative_int, default=1, metavar="N", help="random seed (default: 1)")
    p.add_argument("--mismodel", type=nonnegative_float, default=0.0, metavar="X",
                   help="data/MC mismodelling strength of the data-like files; 0: statistically identical "
                        "(default: 0)")
    p.add_argument("--sf-mismodel", type=nonnegative_float, default=None, metavar="X",
                   help="strength of the injected light-jet mistag mismodelling that the shipped b-tag SFs undo "
                        "(default: --mismodel); the correction files and corrections.yaml are written beside "
                        "fileset.json")
    p.set_defaults(func=cmd_sample)
