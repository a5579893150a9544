"""``jetdask preprocess CONFIG --fileset F --run-dir RUN [--serial] [--workers N]``.

``add_parser(subparsers)`` adds the subcommand to the ``jetdask`` parser; :func:`main` runs it
stand-alone (``python -m jetdask.preprocessing.cli CONFIG ...``). Running it again on the same
``RUN`` resumes (finished passes are not redone); ``--resubmit`` also reruns the failed chunks
and unreadable files of the passes. Exit codes as ``jetdask run``: 0 complete, 3 a pass is
incomplete (the message names the pass directory to inspect and resubmit), 2 bad configuration.
"""
from __future__ import annotations

import argparse
import sys

from ..cli import EXIT_FAILED_CHUNKS, EXIT_OK


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", default=None,
                   help="preprocessing YAML (see jetdask/preprocessing/default.yaml); omitted: the defaults")
    p.add_argument("--fileset", default=None, help="fileset JSON/YAML (needed to create RUN, checked afterwards)")
    p.add_argument("--run-dir", required=True, help="preprocessing directory (pass runs, tensors, summary)")
    p.add_argument("--serial", action="store_true", help="run the chunks in this process (debugging)")
    p.add_argument("--workers", type=int, default=None, help="LocalCluster worker processes")
    p.add_argument("--cluster", default=None, help="local (default), slurm, htcondor or a scheduler address")
    p.add_argument("--chunk-size", type=int, default=None, help="events per chunk (default: config, then engine)")
    p.add_argument("--resubmit", action="store_true", help="rerun failed chunks and unreadable files of the passes")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_preprocess)


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("preprocess", help="clean, label, reweight, split and scale jets into training shards")
    _configure(p)
    return p


def cmd_preprocess(args) -> int:
    from .pipeline import preprocess
    client = None
    if not args.serial and args.cluster and args.cluster != "local":
        from ..cluster import start_cluster
        client = start_cluster(args.cluster)
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
    """``python -m jetdask.preprocessing.cli ARGS``: the same as ``jetdask preprocess ARGS``."""
    from ..cli import main as jetdask_main
    return jetdask_main(["preprocess", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
