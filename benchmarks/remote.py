"""Remote reads: the engine over a local XRootD server vs the same files on disk, same run.

    eval "$(bash ../shared/cluster/start-local-xrootd.sh)"    # as root; prints LOCAL_XROOTD_URL/_EXPORT
    python benchmarks/remote.py [--events 400000] [--repeat 3] [--workers 1]

The synthetic PFNano sample (``jetdask.synthetic``, as ``jetdask sample`` writes it) is copied
into the server's directory. Per round, back to back, with the workers' file caches emptied
(every run opens its files):

  * jetdask on the local files and on their root:// URLs (chunks of 100k events);
  * the reads alone in this process (``TTree.arrays`` of the analysis' branches, 100k-event
    steps): local file; root:// through jetdask's source (uproot's XRootD vector reads, the
    one jetdask uses); root:// through uproot's default fsspec-xrootd source.

Prints a table of medians, and the remote/local throughput ratios taken within each round,
median [min-max]. The server is on this machine: this measures the protocol and client cost,
not a wide-area network.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

import uproot
import xrootd_bench

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))


def engine(fileset_path, analysis, client, workdir):
    from jetdask.engine.runner import Runner
    client.run(lambda: __import__("jetdask.nanoaod.io", fromlist=["clear_cache"]).clear_cache())
    run = tempfile.mkdtemp(dir=workdir)
    with Runner(analysis, fileset_path, run, client, chunk_size=100_000, progress=False) as r:
        out = r.run()
    assert out.complete
    return sum(c["events"] for c in out.counters.values())


def read_only(urls, requested, handler=None):
    """Open each file and read the analysis' branches in 100k-event steps (no analysis); events read."""
    from jetdask.nanoaod import remote
    from jetdask.nanoaod.columns import resolve_columns
    n = 0
    for url in urls:
        opts = {"array_cache": None}
        if url.startswith("root://"):
            opts.update(remote.uproot_options())
            if handler is not None:
                opts["handler"] = handler
        with uproot.open(url, **opts) as f:
            t = f["Events"]
            branches = resolve_columns(t.keys(), requested)
            for start in range(0, t.num_entries, 100_000):
                stop = min(start + 100_000, t.num_entries)
                t.arrays(branches, entry_start=start, entry_stop=stop, how=dict)
                n += stop - start
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=400_000, help="events per file (one MC, one data file)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", type=int, default=1)
    xrootd_bench.add_server_args(ap)
    args = ap.parse_args()
    xrootd_bench.require_server(args)

    import cloudpickle
    from uproot.source.fsspec import FSSpecSource
    from XRootD.client import URL as XRootDURL

    import engine_analyses
    from engine_analyses import DimuonJets
    from jetdask.cluster import close_cluster, start_local
    from jetdask.engine.task import ID_COLUMNS
    from jetdask.fileset import load_fileset
    from jetdask.synthetic import generate_sample
    cloudpickle.register_pickle_by_value(engine_analyses)

    os.makedirs(args.workdir, exist_ok=True)
    sample_dir = os.path.join(args.workdir, f"sample-{args.events}")
    local_fs = os.path.join(sample_dir, "fileset.json")
    if not os.path.exists(local_fs):
        generate_sample(sample_dir, events=args.events, files=1, seed=3, mismodel=0.5, progress=True)
    fs = load_fileset(local_fs).to_dict()
    served = xrootd_bench.link_files(fs, args.export, "jetdask-bench")
    server = XRootDURL(args.url)
    remote_fs = xrootd_bench.remote_fileset(fs, served, server.port, server.hostname,
                                            os.path.join(args.workdir, "remote-fileset.json"))
    local_urls = list(served)
    remote_urls = [f"root://{server.hostname}:{server.port}/{served[p]}" for p in local_urls]

    analysis = DimuonJets(save_arrays=False)
    requested = list(analysis.columns) + ID_COLUMNS
    runs = os.path.join(args.workdir, "runs-remote")
    shutil.rmtree(runs, ignore_errors=True)
    os.makedirs(runs)

    paths = {
        "local": ("jetdask, local files", lambda c: engine(local_fs, analysis, c, runs)),
        "remote": ("jetdask, root:// (local server)", lambda c: engine(remote_fs, analysis, c, runs)),
        "read_local": ("reads only, local files", lambda c: read_only(local_urls, requested)),
        "read_vector": ("reads only, root://, vector reads (jetdask)", lambda c: read_only(remote_urls, requested)),
        "read_fsspec": ("reads only, root://, fsspec-xrootd",
                        lambda c: read_only(remote_urls, requested, FSSpecSource)),
    }
    times: dict = {}
    counts: dict = {}
    client = start_local(n_workers=args.workers, threads_per_worker=1, memory_limit="6GiB", dashboard_address=None)
    try:
        client.submit(lambda: 1).result()
        for rnd in range(args.repeat + 1):          # round 0: warm-up, not counted
            for key, (_, fn) in paths.items():
                t = time.perf_counter()
                n = fn(client)
                if rnd:
                    times.setdefault(key, []).append(time.perf_counter() - t)
                    counts[key] = n
    finally:
        close_cluster(client)

    print()
    print(f"{'path':<46}{'events':>10}{'time [s]':>10}{'events/s':>12}")
    for key, ts in times.items():
        med = statistics.median(ts)
        print(f"{paths[key][0]:<46}{counts[key]:>10}{med:>10.2f}{counts[key] / med:>12.0f}")

    def paired(num, den):
        r = sorted(a / b for a, b in zip(times[num], times[den]))
        return f"{statistics.median(r):.2f} [{r[0]:.2f}-{r[-1]:.2f}]"

    print()
    print(f"root:// / local throughput per round, median [min-max] over {args.repeat} rounds:")
    print(f"  jetdask ({args.workers} worker(s), 100k-event chunks): {paired('local', 'remote')}")
    print(f"  reads only, vector reads: {paired('read_local', 'read_vector')}")
    print(f"  reads only, fsspec-xrootd: {paired('read_local', 'read_fsspec')}")


if __name__ == "__main__":
    main()
