"""``jetdask`` command line: thin subcommands over the library.

Exit codes: 0 everything done; 3 some chunks failed (resubmittable); 2 bad
usage or configuration (one-line reason on stderr).
"""
from __future__ import annotations

import argparse
import sys

from .errors import ClusterLostError, ConfigError, JetdaskError

EXIT_OK, EXIT_USAGE, EXIT_FAILED_CHUNKS = 0, 2, 3


def _size(text: str) -> int:
    from dask.utils import parse_bytes
    try:
        return parse_bytes(text)
    except Exception:
        raise argparse.ArgumentTypeError(f"not a memory size: {text!r} (e.g. 2GiB)") from None


def _client_from_args(args):
    if args.serial:
        return None
    from .cluster import start_cluster
    kind = args.cluster or "local"
    opts = {}
    if kind == "local":
        if args.workers:
            opts["n_workers"] = args.workers
        if args.memory_per_worker:
            opts["memory_limit"] = args.memory_per_worker
    else:
        if getattr(args, "jobs", None):
            opts["jobs"] = args.jobs
        if args.memory_per_worker:
            opts["memory"] = args.memory_per_worker
        if getattr(args, "profile", None):
            opts["profile"] = args.profile
    return start_cluster(kind, **opts)


def _add_run_options(p):
    p.add_argument("--cluster", default=None, help="local (default), slurm, htcondor or a scheduler address")
    p.add_argument("--workers", type=int, default=None, help="LocalCluster worker processes")
    p.add_argument("--jobs", type=int, default=None, help="batch jobs to start (default: adaptive)")
    p.add_argument("--profile", default=None, help="cluster profile YAML (see cluster/)")
    p.add_argument("--memory-per-worker", type=_size, default=None)
    p.add_argument("--retries", type=int, default=None)
    p.add_argument("--serial", action="store_true", help="run chunks in this process (debugging)")
    p.add_argument("--no-progress", action="store_true")


def _finish(out, run_dir) -> int:
    from .engine.status import format_status, run_status
    print(format_status(run_status(run_dir)))
    return EXIT_OK if out.complete else EXIT_FAILED_CHUNKS


def cmd_run(args, resubmit=False) -> int:
    from .plugin import load_analysis
    from .engine.runner import Runner
    from .engine.ledger import Ledger
    import os
    spec = getattr(args, "analysis", None)
    kwargs = {}
    if resubmit:
        led_path = os.path.join(args.run_dir, "ledger.sqlite")
        if not os.path.exists(led_path):
            raise ConfigError(f"{args.run_dir} is not a jetdask run directory", "run_dir")
        led = Ledger(led_path)
        if not spec:
            spec = led.get_meta("analysis")
            kwargs = led.get_meta("analysis_kwargs") or {}
        led.close()
        if not spec:
            raise ConfigError("the run does not record its analysis; pass --analysis FILE.py:NAME", "analysis")
    if getattr(args, "kwargs", None):
        import json
        try:
            kwargs = json.loads(args.kwargs)
        except json.JSONDecodeError as err:
            raise ConfigError(f"not valid JSON ({err}): {args.kwargs!r}", "--kwargs") from None
        if not isinstance(kwargs, dict):
            raise ConfigError("must be a JSON object of keyword arguments", "--kwargs")
    analysis = load_analysis(spec, **kwargs)
    client = _client_from_args(args)
    try:
        runner = Runner(analysis, getattr(args, "fileset", None), args.run_dir, client,
                        chunk_size=getattr(args, "chunk_size", None), retries=args.retries,
                        progress=not args.no_progress, serial=args.serial)
        out = runner.resubmit() if resubmit else runner.run()
        runner.close()
    finally:
        if client is not None:
            from .cluster import close_cluster
            close_cluster(client)
    return _finish(out, args.run_dir)


def cmd_status(args) -> int:
    from .engine.status import format_status, run_status
    st = run_status(args.run_dir)
    if args.json:
        import json
        print(json.dumps(st, indent=2))
    else:
        print(format_status(st))
    return EXIT_OK if st["complete"] else EXIT_FAILED_CHUNKS


def cmd_sample(args) -> int:
    from .synthetic import generate_sample
    path = generate_sample(args.out, events=args.events, files=args.files, seed=args.seed,
                           mismodel=args.mismodel, progress=True)
    print(f"fileset written to {path}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="jetdask", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("run", help="run an analysis over a fileset (resumes an existing run directory)")
    p.add_argument("analysis", help="FILE.py:NAME or module:NAME")
    p.add_argument("--fileset", required=True)
    p.add_argument("--run-dir", required=True)
    p.add_argument("--chunk-size", type=int, default=None)
    p.add_argument("--kwargs", default=None,
                   help='JSON object of arguments for the analysis class, e.g. \'{"distortions": ["noise0.1"]}\' '
                        '(recorded in the run directory for resubmit)')
    _add_run_options(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("resubmit", help="rerun only the failed or unfinished chunks of a run")
    p.add_argument("run_dir")
    p.add_argument("--analysis", default=None, help="override the recorded analysis")
    _add_run_options(p)
    p.set_defaults(func=lambda a: cmd_run(a, resubmit=True))

    p = sub.add_parser("status", help="chunk states, completeness and failures of a run")
    p.add_argument("run_dir")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("sample", help="write synthetic PFNano data-like and MC-like files + fileset.json")
    p.add_argument("--out", required=True)
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--files", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--mismodel", type=float, default=0.0)
    p.set_defaults(func=cmd_sample)

    from .preprocessing.cli import add_parser as add_preprocess
    from .plotting.cli import add_parser as add_plot
    from .training.cli import add_evaluate_parser, add_parser as add_train
    from .demo import add_parser as add_demo
    add_preprocess(sub)
    add_train(sub)
    add_evaluate_parser(sub)
    add_plot(sub)
    add_demo(sub)
    return ap


def main(argv=None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    try:
        return args.func(args)
    except ClusterLostError as err:
        print(f"jetdask: {err}", file=sys.stderr)
        return EXIT_FAILED_CHUNKS
    except (ConfigError, JetdaskError) as err:
        print(f"jetdask: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("jetdask: interrupted; the run directory keeps what finished; run again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
