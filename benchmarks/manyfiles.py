"""Thousands of small files: wall time per file against the open time, and the workers' memory.

    python benchmarks/manyfiles.py [--counts 100,1000] [--events-per-file 200] [--workers 2]

The synthetic PFNano sample (889 branches, as ``jetdask sample`` writes it): one MC and one
data file of ``--events-per-file`` events, each copied to half the largest count of files with
a UUID of its own (the 16 bytes of the ROOT file header's ``fUUID``: writing a thousand
889-branch files takes an hour on a busy 2-core machine; a copy takes milliseconds), once,
into ``--workdir``; a run over N files takes the first N/2 of each kind. Per count and round, a fresh
LocalCluster of single-threaded workers runs the engine's DY analysis over the files
(planning included), while this process samples the resident memory of every worker process
every 50 ms. ``--url``/``--export`` (a local XRootD server) read the files over root://
instead, ``--delay`` ms each way through ``cluster/latency-proxy.py``.

Prints per count: wall time, wall per file, the opens the workers made per file and the mean
worker time of one open, the workers' peak RSS (largest and mean over workers), the most
memory the file caches held, and the ratio of the peak RSS between the largest and the
smallest count (flat: 1.0).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time

import xrootd_bench

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))


def worker_io() -> dict:
    from jetdask.nanoaod import io
    out = {"opens": io.stats["opens"], "open_seconds": io.stats["open_seconds"], "files": len(io._cache),
           "files_peak": io._cache.peak}
    return out


def reset_worker() -> None:
    from jetdask.nanoaod import io
    io.clear_cache()
    io._cache.reset_peak()
    io.stats.update(opens=0, hits=0, open_seconds=0.0)


class RSSWatch:
    """Peak resident memory of each of ``pids``, sampled every ``interval`` seconds in a thread."""

    def __init__(self, pids, interval: float = 0.05):
        import psutil
        self.procs = {p: psutil.Process(p) for p in pids}
        self.peak = {p: 0 for p in pids}
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        import psutil
        while not self._stop.is_set():
            for p, proc in self.procs.items():
                try:
                    self.peak[p] = max(self.peak[p], proc.memory_info().rss)
                except psutil.Error:   # a worker that left
                    continue
            time.sleep(self.interval)

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        return self.peak


def copies(src: str, n: int, out_dir: str) -> list[str]:
    """``n`` copies of the ROOT file ``src`` in ``out_dir``, each with a fresh file UUID."""
    import shutil
    import struct
    import uuid
    with open(src, "rb") as f:
        head = f.read(64)
    version = struct.unpack(">i", head[4:8])[0]
    at = 59 if version >= 1000000 else 47          # fUUID in the small and the large header form
    base = os.path.splitext(os.path.basename(src))[0]
    out = []
    for i in range(n):
        dest = os.path.join(out_dir, f"{base}_{i:04d}.root")
        shutil.copyfile(src, dest)
        with open(dest, "r+b") as f:
            f.seek(at)
            f.write(uuid.uuid4().bytes)
        out.append(dest)
    return out


def make_sample(sample: str, n_files: int, events: int) -> str:
    """The fileset of ``n_files`` small files (see the module docstring); its path."""
    from jetdask.fileset import load_fileset
    from jetdask.synthetic import generate_sample
    seed_dir = os.path.join(sample, "seed")
    generate_sample(seed_dir, events=events, files=1, seed=11, mismodel=0.5)
    fs = load_fileset(os.path.join(seed_dir, "fileset.json")).to_dict()
    for ds in fs.values():
        (src, tree), = ds["files"].items()
        ds["files"] = {p: tree for p in copies(src, n_files // 2, sample)}
    path = os.path.join(sample, "fileset.json")
    with open(path, "w") as f:
        json.dump(fs, f)
    return path


def subset(fs: dict, n: int) -> dict:
    """The fileset with the first ``n / 2`` files of each data set (``n`` in all)."""
    import copy
    fs = copy.deepcopy(fs)
    per = max(1, n // len(fs))
    for ds in fs.values():
        ds["files"] = dict(list(ds["files"].items())[:per])
    return fs


def one_run(fs: dict, n_workers: int, memory_limit: str, workdir: str, chunk_size: int, config: dict) -> dict:
    import cloudpickle
    import dask

    import engine_analyses
    from engine_analyses import DimuonJets
    from jetdask.cluster import close_cluster, start_local
    from jetdask.engine.runner import Runner
    cloudpickle.register_pickle_by_value(engine_analyses)
    path = tempfile.mktemp(suffix=".json", dir=workdir)
    with open(path, "w") as f:
        json.dump(fs, f)
    with dask.config.set(config):
        client = start_local(n_workers=n_workers, threads_per_worker=1, memory_limit=memory_limit,
                             dashboard_address=None)
        try:
            client.submit(lambda: 1).result()
            client.run(reset_worker)
            pids = client.run(os.getpid)
            watch = RSSWatch(pids.values())
            base = dict(watch.peak)
            t = time.perf_counter()
            with Runner(DimuonJets(save_arrays=False), path, tempfile.mkdtemp(dir=workdir), client,
                        chunk_size=chunk_size, progress=False) as r:
                out = r.run()
            wall = time.perf_counter() - t
            peaks = watch.stop()
            assert out.complete, out.failed
            io_stats = client.run(worker_io)
        finally:
            close_cluster(client)
    n_files = sum(len(ds["files"]) for ds in fs.values())
    opens = sum(s["opens"] for s in io_stats.values())
    return {"files": n_files, "wall": wall, "opens": opens,
            "open_s": sum(s["open_seconds"] for s in io_stats.values()) / max(1, opens),
            "rss_max": max(peaks.values()), "rss_mean": statistics.mean(peaks.values()),
            "rss_start": max(base.values()),
            "files_peak": max(s["files_peak"] for s in io_stats.values()),
            "events": sum(c["events"] for c in out.counters.values())}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="100,1000", help="numbers of files to run over")
    ap.add_argument("--events-per-file", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--memory-limit", default="3GiB", help="per worker")
    ap.add_argument("--chunk-size", type=int, default=100_000)
    ap.add_argument("--set", action="append", default=[], help="jetdask config for the run, KEY=VALUE "
                    "(e.g. file-cache-bytes=128MiB; prefetch=false)")
    xrootd_bench.add_server_args(ap, from_env=False)     # --url: read over this server, not local files
    ap.add_argument("--delay", type=float, default=0.0, help="ms each way, through a latency proxy")
    ap.add_argument("--sample-dir", default=None)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))     # stops the clusters and proxy on the way out
    import yaml

    from jetdask.fileset import load_fileset
    counts = sorted(int(x) for x in args.counts.split(","))
    os.makedirs(args.workdir, exist_ok=True)
    sample = args.sample_dir or os.path.join(args.workdir, f"many-{counts[-1]}x{args.events_per_file}")
    if not os.path.exists(os.path.join(sample, "fileset.json")):
        make_sample(sample, counts[-1], args.events_per_file)
    fs = load_fileset(os.path.join(sample, "fileset.json")).to_dict()
    config = {f"jetdask.{k}": yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}
    with contextlib.ExitStack() as stack:
        if args.url:
            from XRootD import client as xrd
            if not args.export:
                sys.exit("--url needs --export, the server's directory")
            served = xrootd_bench.link_files(fs, args.export, "jetdask-many")
            server = xrd.URL(args.url)
            port = server.port
            if args.delay:
                ports = stack.enter_context(xrootd_bench.proxies(server.hostname, server.port, [args.delay]))
                port = ports[args.delay]
            out = tempfile.mktemp(suffix=".json", dir=args.workdir)
            with open(xrootd_bench.remote_fileset(fs, served, port, "127.0.0.1", out)) as f:
                fs = json.load(f)
        results = {}
        for rnd in range(args.repeat):
            for n in counts:
                got = one_run(subset(fs, n), args.workers, args.memory_limit, args.workdir, args.chunk_size, config)
                print(f"round {rnd}: {got['files']} files {got['wall']:.1f} s, {got['opens']} opens, "
                      f"peak RSS {got['rss_max'] / 2**20:.0f} MiB", flush=True)
                results.setdefault(n, []).append(got)
    print()
    where = f"root:// +{args.delay:g} ms each way" if args.url else "local files"
    print(f"{args.workers} workers x 1 thread, {args.events_per_file} events per file, {where}, "
          f"config {config or 'defaults'}; medians of {args.repeat}")
    print(f"{'files':>6}{'wall [s]':>10}{'per file':>10}{'opens/file':>11}{'open [s]':>10}"
          f"{'RSS max':>10}{'RSS mean':>10}{'cache max':>11}")
    med = {}
    for n, rs in results.items():
        m = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        med[n] = m
        print(f"{m['files']:>6.0f}{m['wall']:>10.1f}{1e3 * m['wall'] / m['files']:>8.0f}ms"
              f"{m['opens'] / m['files']:>11.2f}"
              f"{m['open_s']:>10.3f}{m['rss_max'] / 2**20:>8.0f}Mi{m['rss_mean'] / 2**20:>8.0f}Mi"
              f"{m['files_peak'] / 2**20:>9.0f}Mi")
    if len(counts) > 1:
        lo, hi = med[counts[0]], med[counts[-1]]
        extra = (hi["wall"] - lo["wall"]) / (hi["files"] - lo["files"])
        print()
        print(f"wall per extra file {1e3 * extra:.0f} ms; one open {1e3 * hi['open_s']:.0f} ms of worker time, "
              f"/ {args.workers} workers = {1e3 * hi['open_s'] / args.workers:.0f} ms")
        print(f"peak RSS {counts[-1]} / {counts[0]} files: largest worker {hi['rss_max'] / lo['rss_max']:.2f}, "
              f"mean {hi['rss_mean'] / lo['rss_mean']:.2f}")


if __name__ == "__main__":
    main()
