"""What the XRootD benchmarks share (``remote.py``, ``wan.py``, ``manyfiles.py``): the server's
command-line options, the sample linked into the server's directory, its root:// fileset, and
delay-adding TCP proxies (``cluster/latency-proxy.py`` of the shared directory).

Not a benchmark itself; the scripts beside it import it (``python benchmarks/x.py`` puts this
folder first on ``sys.path``).
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PROXY = os.path.join(os.environ.get("JETDASK_SHARED", os.path.join(HERE, "..", "..", "shared")),
                     "cluster", "latency-proxy.py")


def add_server_args(ap: argparse.ArgumentParser, from_env: bool = True) -> None:
    """``--url``/``--export`` of the server (from ``LOCAL_XROOTD_URL``/``_EXPORT`` when ``from_env``)
    and ``--workdir`` (samples and run directories, default ``benchmarks/.cache``)."""
    ap.add_argument("--url", default=os.environ.get("LOCAL_XROOTD_URL") if from_env else None,
                    help="the XRootD server, root://host:port/")
    ap.add_argument("--export", default=os.environ.get("LOCAL_XROOTD_EXPORT") if from_env else None,
                    help="the server's directory")
    ap.add_argument("--workdir", default=os.path.join(HERE, ".cache"))


def require_server(args: argparse.Namespace) -> None:
    """Exit with one line when no server was given."""
    if not args.url or not args.export:
        sys.exit("no XRootD server: start ../shared/cluster/start-local-xrootd.sh (see the docstring)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def link_files(fs: dict, export: str, sub: str) -> dict:
    """``{local path: path under the server}`` of every file of the fileset dict ``fs``, linked
    (or copied, across file systems) into ``export/sub`` and readable by the server's user."""
    served = os.path.join(export, sub)
    os.makedirs(served, exist_ok=True)
    os.chmod(served, 0o755)
    out = {}
    for ds in fs.values():
        for path in ds["files"]:
            dest = os.path.join(served, os.path.basename(path))
            if os.path.exists(dest):
                os.remove(dest)
            try:
                os.link(path, dest)          # same filesystem: no second copy of the sample
            except OSError:
                shutil.copyfile(path, dest)
            os.chmod(dest, 0o644)
            out[path] = f"/{sub}/{os.path.basename(path)}"
    return out


def remote_fileset(fs: dict, served: dict, port: int, host: str, out: str) -> str:
    """Write the fileset ``fs`` with its files as ``root://host:port/`` URLs (``served`` from
    :func:`link_files`) to ``out``; return ``out``."""
    fs = copy.deepcopy(fs)
    for ds in fs.values():
        ds["files"] = {f"root://{host}:{port}/{served[p]}": t for p, t in ds["files"].items()}
    with open(out, "w") as f:
        json.dump(fs, f)
    return out


class Ports(dict):
    """``{delay_ms: port}`` of the proxies, and their process ids (``pids``, by delay)."""

    def __init__(self):
        super().__init__()
        self.pids: dict = {}


@contextlib.contextmanager
def proxies(host: str, port: int, delays: list[float]):
    """:class:`Ports` of one latency proxy per delay, stopped (by pid) at the end."""
    procs, ports = [], Ports()
    try:
        for d in delays:
            p = free_port()
            procs.append(subprocess.Popen([sys.executable, PROXY, str(p), host, str(port), str(d)],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            ports[d] = p
            ports.pids[d] = procs[-1].pid
        time.sleep(1.0)
        yield ports
    finally:
        for pr in procs:
            pr.send_signal(signal.SIGTERM)
        for pr in procs:
            try:
                pr.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pr.kill()


def listening_pid(port: int) -> int | None:
    """The id of the process listening on ``port`` of this machine (the server), if visible."""
    import psutil
    try:
        for c in psutil.net_connections(kind="tcp"):
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port:
                return c.pid
    except psutil.Error:
        return None
    return None
