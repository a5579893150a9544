"""``jetdask preprocess CONFIG --fileset F --run-dir RUN [--serial] [--workers N]``.

``add_parser(subparsers)`` adds the subcommand to the ``jetdask`` parser; :func:`main` runs it
stand-alone (``python -m jetdask.cli.preprocess CONFIG ...``). Running it again on the same
``RUN`` resumes (finished passes are not redone); ``--resubmit`` also reruns the failed chunks
and unreadable files of the passes. Exit codes as ``jetdask run``: 0 complete, 3 a pass is
incomplete (the message names the pass directory to inspect and resubmit), 2 bad configuration.
"""
from __future__ import annotations

import argparse
import sys

from .common import EXIT_FAILED_CHUNKS, EXIT_OK, client_from_args, memory_size, positive_int, standalone, subparser

EXAMPLE = "jetdask preprocess prep.yaml --fileset synth/fileset.json --run-dir runs/prep --workers 2"


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", default=None,
                   help="preprocessing YAML (see jetdask/preprocessing/default.yaml); omitted: the defaults")
    p.add_argument("--fileset", default=None, metavar="FILE",
                   help="fileset JSON/YAML (needed to create RUN; on a rerun it must name the same files)")
    p.add_argument("--run-dir", required=True, metavar="DIR",
                   help="preprocessing directory (pass1/, pass2/ runs, tensors/, summary.json); resumed if it exists")
    p.add_argument("--serial", action="store_true", help="run the chunks in this process, no cluster (debugging)")
    p.add_argument("--workers", type=positive_int, default=None, metavar="N",
                   help="LocalCluster worker processes (default: one per core)")
    p.add_argument("--cluster", default=None, metavar="KIND",
                   help="local (default), slurm, htcondor or a scheduler address such as tls://host:8786")
    p.add_argument("--profile", default=None, metavar="YAML",
                   help="slurm/htcondor: cluster profile, a YAML path or a shipped name (slurm, htcondor)")
    p.add_argument("--memory-per-worker", type=memory_size, default=None, metavar="SIZE",
                   help="LocalCluster: memory limit of each worker, e.g. 4GiB (default: 80%% of RAM / workers, "
                        "at most 4 GiB)")
    p.add_argument("--chunk-size", type=positive_int, default=None, metavar="EVENTS",
                   help="largest chunk in events (default: the config's chunk_size, then jetdask.chunk-size)")
    p.add_argument("--resubmit", action="store_true", help="rerun failed chunks and unreadable files of the passes")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (messages still go to stderr)")
    p.set_defaults(func=cmd_preprocess)


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparser(subparsers, "preprocess", "clean, label, reweight, split and scale jets into training tensors",
                  EXAMPLE)
    _configure(p)
    return p


def _check(args) -> None:
    """Every input before a cluster starts or RUN is made."""
    import os

    from .. import validation
    from ..preprocessing.config import load_config
    validation.check_cluster(args.cluster, args.profile)
    validation.check_writable_dir(args.run_dir, "--run-dir")
    if args.config is not None:
        load_config(args.config)
    if args.fileset is not None:
        from ..fileset import load_fileset
        load_fileset(args.fileset)
    elif not os.path.exists(os.path.join(args.run_dir, "prep.json")):
        from ..errors import ConfigError
        raise ConfigError(f"{args.run_dir} is not a preprocessing directory yet: give a fileset", "--fileset")


def cmd_preprocess(args) -> int:
    from ..preprocessing.pipeline import preprocess
    _check(args)
    client = None
    # a plain local run is started by the pipeline itself, once its inputs are checked
    if (args.cluster or "local") != "local" or args.memory_per_worker:
        client = client_from_args(args)
    try:
        out = preprocess(args.config, args.fileset, args.run_dir, client=client, serial=args.serial,
                         workers=args.workers, chunk_size=args.chunk_size, resubmit=args.resubmit,
                         progress=not args.no_progress)
    finally:
        if client is not None:
            from ..cluster import close_cluster
            close_cluster(client)
    if not out.complete:
        print(f"jetdask preprocess: incomplete: {out.message}", file=sys.stderr)
        return EXIT_FAILED_CHUNKS
    return EXIT_OK


def main(argv=None) -> int:
    """``python -m jetdask.cli.preprocess ARGS``: the same as ``jetdask preprocess ARGS``."""
    return standalone("jetdask preprocess", _configure, argv)


if __name__ == "__main__":
    sys.exit(main())
