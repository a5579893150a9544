"""What every ``jetdask`` subcommand shares: exit codes, argument types, the error boundary.

The subcommand modules (``jetdask.cli.run``, ``.preprocess``, ``.train``, ``.plot``, ``.sf``,
``.demo``) import this module and never each other nor the package, so there is
no import cycle between the top-level command and the subcommands.
"""
from __future__ import annotations

import argparse
import os
import sys

from ..errors import JetdaskError

EXIT_OK, EXIT_USAGE, EXIT_FAILED_CHUNKS, EXIT_INTERRUPTED = 0, 2, 3, 130

EXIT_CODES = ("exit codes: 0 done; 2 bad usage or configuration (one line on stderr naming the input "
              "or key); 3 some chunks failed (resubmittable; see `jetdask status`); 130 interrupted")


def epilog(*examples: str, codes: str = EXIT_CODES) -> str:
    """Help text after the options: examples, then the exit codes."""
    lines = ["example:" if len(examples) == 1 else "examples:"]
    lines += [f"  {e}" for e in examples]
    return "\n".join(lines + ["", codes])


def subparser(sub, name: str, help: str, *examples: str, codes: str = EXIT_CODES):
    """A subcommand parser whose ``--help`` shows its examples and exit codes, options with defaults."""
    return sub.add_parser(name, help=help, description=help[:1].upper() + help[1:] + ".",
                          epilog=epilog(*examples, codes=codes),
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def _integer(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
    return value


_SUFFIXES = {"k": 10**3, "m": 10**6, "g": 10**9}


def event_count(text: str) -> int:
    """A number of events >= 1: ``5000``, ``100_000``, ``1e5``, ``100k``, ``2M`` (a whole number)."""
    t = text.strip().replace("_", "")
    scale = _SUFFIXES.get(t[-1:].lower(), 1) if t[-1:].isalpha() else 1
    body = t[:-1] if scale != 1 else t
    try:
        value = float(body) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of events: {text!r} (e.g. 5000, 1e5, 100k)") from None
    if value != value or value in (float("inf"), float("-inf")) or value != int(value):
        raise argparse.ArgumentTypeError(f"not a whole number of events: {text!r}")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return int(value)


def positive_int(text: str) -> int:
    """An integer >= 1 (0 is an error, not 'the default')."""
    return _integer(text, 1)


def nonnegative_int(text: str) -> int:
    return _integer(text, 0)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def nonnegative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def memory_size(text: str) -> int:
    """A memory size in bytes from ``4GiB``, ``500MB``, ``2e9``."""
    from dask.utils import parse_bytes
    try:
        value = parse_bytes(text)
    except (ValueError, TypeError, KeyError):
        raise argparse.ArgumentTypeError(f"not a memory size: {text!r} (e.g. 4GiB, 500MB)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return int(value)


class Parser(argparse.ArgumentParser):
    """argparse with a one-line usage error (``jetdask run: error: --chunk-size: must be >= 1``), exit 2."""

    def error(self, message: str):
        sys.stderr.write(f"{self.prog}: error: {message}{_suggestion(message)}\n")
        sys.exit(EXIT_USAGE)


def _suggestion(message: str) -> str:
    """``; did you mean 'run'?`` for argparse's "invalid choice: 'rn' (choose from ...)" ("" otherwise)."""
    import re
    m = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if not m:
        return ""
    from ..suggest import did_you_mean
    return did_you_mean(m.group(1), re.findall(r"'([^']*)'", m.group(2)))


def boundary(func, args) -> int:
    """Run a subcommand: a jetdask error (bad input) becomes one line on stderr and exit 2."""
    import sqlite3

    from ..errors import ClusterLostError, DiskFullError
    try:
        return func(args)
    except (ClusterLostError, DiskFullError) as err:   # the cluster went away, a disk is full: resumable
        print(f"jetdask: {one_line(err)}", file=sys.stderr)
        return EXIT_FAILED_CHUNKS
    except JetdaskError as err:
        print(f"jetdask: error: {one_line(err)}", file=sys.stderr)
        return EXIT_USAGE
    except (OSError, sqlite3.Error) as err:   # a full disk met outside a run (the lock file, a sample)
        from ..engine.diskspace import disk_full
        full = disk_full(err, os.getcwd())
        if full is None:
            raise
        print(f"jetdask: {one_line(full)}", file=sys.stderr)
        return EXIT_FAILED_CHUNKS
    except KeyboardInterrupt:
        return interrupted()


def interrupted() -> int:
    """Ctrl-C: the one line, and the exit code of an interrupted command."""
    print("jetdask: interrupted; the run directory keeps what finished; run again to resume", file=sys.stderr)
    return EXIT_INTERRUPTED


def one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text or type(err).__name__


def standalone(prog: str, configure, argv=None) -> int:
    """``python -m jetdask.<sub>.cli ARGS``: one subcommand with its own parser and the same boundary."""
    ap = Parser(prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter)
    configure(ap)
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    from .. import validation
    return boundary(lambda a: (validation.check_jetdask_config(), a.func(a))[1], args)


def client_from_args(args):
    """The cluster of ``--cluster/--workers/--jobs/--memory-per-worker/--profile`` (None with ``--serial``)."""
    if args.serial:
        return None
    from ..cluster import start_cluster
    kind = args.cluster or "local"
    opts = {}
    if kind == "gateway":
        from ..cluster.gateway import options_from_args
        return start_cluster(kind, **options_from_args(args))
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
