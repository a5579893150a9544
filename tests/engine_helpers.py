"""Helpers shared by engine tests: copies of samples, output comparison."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys

import cloudpickle
import numpy as np

import engine_analyses

cloudpickle.register_pickle_by_value(engine_analyses)


def copy_sample(fileset_path: str, dest) -> str:
    """Copy the synthetic sample into ``dest`` and write a fileset pointing to the copies."""
    from jetdask.fileset import load_fileset
    fs = load_fileset(fileset_path).to_dict()       # paths resolved against the fileset's directory
    os.makedirs(dest, exist_ok=True)
    for ds in fs.values():
        files = {}
        for path, tree in ds["files"].items():
            new = os.path.join(str(dest), os.path.basename(path))
            shutil.copy(path, new)
            files[new] = tree
        ds["files"] = files
    out = os.path.join(str(dest), "fileset.json")
    with open(out, "w") as f:
        json.dump(fs, f)
    return out


def assert_same_output(a, b, atol_of_largest: float = 0.0):
    """Histograms equal bin for bin (values and variances to 1e-12 relative, plus ``atol_of_largest``
    times the histogram's largest bin: weighted sums with negative weights cancel, so the
    summation order of chunks can show at the 1e-12 level there), counters equal, something filled."""
    assert set(a.hists) == set(b.hists)
    for ds in a.hists:
        assert set(a.hists[ds]) == set(b.hists[ds]), ds
        for name, h in a.hists[ds].items():
            h2 = b.hists[ds][name]
            assert h.axes == h2.axes, (ds, name)
            for x, y in ((h.values(flow=True), h2.values(flow=True)),
                         (h.variances(flow=True), h2.variances(flow=True))):
                if x is None:
                    continue
                atol = atol_of_largest * max(np.abs(y).max(), 1.0) if atol_of_largest else 0.0
                np.testing.assert_allclose(x, y, rtol=1e-12, atol=atol, err_msg=f"{ds}/{name}")
        assert a.counters[ds].keys() == b.counters[ds].keys()
        for k, v in a.counters[ds].items():
            assert np.isclose(v, b.counters[ds][k], rtol=1e-12), (ds, k, v, b.counters[ds][k])
    assert sum(h.sum().value if hasattr(h.sum(), "value") else h.sum()
               for hs in a.hists.values() for h in hs.values()) > 0


@contextlib.contextmanager
def local_client(n_workers: int = 2, memory_limit: str = "1GiB"):
    """A client of a real LocalCluster of single-threaded worker processes, closed afterwards."""
    from distributed import Client, LocalCluster
    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, memory_limit=memory_limit, processes=True,
                           dashboard_address=":0", host="127.0.0.1")
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def serial_output(sample: str, run_dir, chunk_size: int):
    """The reference output: the engine tests' analysis run serially (no cluster) over ``sample``."""
    from engine_analyses import DimuonJets
    from jetdask.engine.runner import Runner
    with Runner(DimuonJets(), sample, str(run_dir), serial=True, chunk_size=chunk_size, progress=False) as r:
        return r.run()


def ledger_rows(run_dir, sql):
    """Rows of ``sql`` on a run directory's ledger (read by the test, never written)."""
    import sqlite3
    db = sqlite3.connect(os.path.join(run_dir, "ledger.sqlite"))
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def slow_inspections(match: str, seconds: float, stamp_dir: str, once: bool = False) -> None:
    """In a worker (``client.run``): this process's file inspections of paths containing ``match``
    sleep ``seconds`` first (``once``: only the first one of all processes, marked in ``stamp_dir``),
    and append the time they return to ``stamp_dir/returned``. :func:`unslow_inspections` undoes it."""
    import time

    from jetdask.nanoaod import io
    orig = getattr(io, "_unslowed_file_info", io.file_info)

    def file_info(path, *args, **kwargs):
        if match in path:
            marker = os.path.join(stamp_dir, "slept")
            if not (once and os.path.exists(marker)):
                open(marker, "a").close()
                time.sleep(seconds)
            with open(os.path.join(stamp_dir, "returned"), "a") as f:
                f.write(f"{time.time()}\n")
        return orig(path, *args, **kwargs)
    io._unslowed_file_info = orig
    io.file_info = file_info


def unslow_inspections() -> None:
    from jetdask.nanoaod import io
    if hasattr(io, "_unslowed_file_info"):
        io.file_info = io._unslowed_file_info
        del io._unslowed_file_info


def hold(x):
    """A task whose result stays on its worker (the only copy, while its future is kept)."""
    return x


def close_gracefully_soon(dask_worker=None, restart: bool = False) -> None:
    """In a worker (``client.run``): start its own graceful close, as ``lifetime`` does (with
    ``restart``: as ``lifetime_restart``, its nanny starts it again), and return at once."""
    import asyncio
    asyncio.get_running_loop().create_task(dask_worker.close_gracefully(restart=restart, reason="lifetime-reached"))


cloudpickle.register_pickle_by_value(sys.modules[__name__])   # these run in worker processes
