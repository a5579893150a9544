"""``jetdask``: run analyses over CMS PFNano filesets on dask.distributed, resumably; preprocess,
train and evaluate taggers; plot data/MC.

Every input (options, the ``jetdask.*`` configuration, the fileset, the analysis file, the run
directory, tagger files) is checked before a cluster starts or a directory is made.
"""
from __future__ import annotations

import argparse
import sys

from .common import EXIT_CODES, EXIT_FAILED_CHUNKS, EXIT_OK, EXIT_USAGE, Parser, boundary, interrupted

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_USAGE", "EXIT_FAILED_CHUNKS"]


def _version() -> str:
    from .. import __version__
    return f"jetdask {__version__} (Python {sys.version.split()[0]})"


def build_parser() -> argparse.ArgumentParser:
    ap = Parser(prog="jetdask", description=__doc__, epilog=EXIT_CODES + "\nhelp on a command: jetdask COMMAND --help",
                formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", action="version", version=_version())
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    from . import demo, plot, preprocess, run, sf, train
    run.add_parsers(sub)
    preprocess.add_parser(sub)
    train.add_parser(sub)
    train.add_evaluate_parser(sub)
    plot.add_parser(sub)
    sf.add_parser(sub)
    demo.add_parser(sub)
    return ap


def _run_checked(args) -> int:
    from .. import validation
    from ..nanoaod import uproot_speedups
    validation.check_jetdask_config()
    uproot_speedups.apply()       # the command's own process: serial runs, planning, plots read files
    return args.func(args)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return boundary(_run_checked, args)
    except KeyboardInterrupt:     # between the command's end and the boundary's return
        return interrupted()
    finally:
        if argv is None:          # the command line's process (from Python, the caller owns Ctrl-C)
            _done_with_interrupts()


def _done_with_interrupts() -> None:
    """The command's work is over (outputs written, cluster closed): a Ctrl-C while the interpreter
    exits (its threads joined, the cluster's handlers run) would only print a traceback from
    inside Python's shutdown or end the process by the signal, so it is ignored from here on."""
    import signal
    import threading
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
