"""The results store: binary codec round trips, per-file folds, old-format ledgers, exact outputs."""
from __future__ import annotations

import os
import sqlite3

import hist
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine_analyses import DimuonJets
from engine_helpers import assert_same_output
from jetdask.chunk import Chunk
from jetdask.engine import histcodec
from jetdask.engine.ledger import Ledger
from jetdask.engine.outputs import finalize
from jetdask.engine.partial import Partial
from jetdask.engine.runner import Runner
from jetdask.engine.task import Outcome, run_chunk
from jetdask.result import Result

STORAGES = {"Weight": hist.storage.Weight, "Double": hist.storage.Double, "Int64": hist.storage.Int64,
            "Mean": hist.storage.Mean, "WeightedMean": hist.storage.WeightedMean}


@st.composite
def axes(draw):
    kind = draw(st.sampled_from(["Regular", "Variable", "Integer", "StrCategory", "IntCategory", "Boolean"]))
    name = draw(st.sampled_from(["x", "pt", "flav"])) + str(draw(st.integers(0, 99)))
    flow = dict(underflow=draw(st.booleans()), overflow=draw(st.booleans()))
    if kind == "Regular":
        return hist.axis.Regular(draw(st.integers(1, 30)), -1.0, draw(st.floats(0.5, 9.0)), name=name,
                                 label="a $label$", **flow)
    if kind == "Variable":
        edges = sorted(set(draw(st.lists(st.floats(-5, 5, allow_nan=False), min_size=2, max_size=12))))
        if len(edges) < 2:
            edges = [0.0, 1.0]
        return hist.axis.Variable(edges, name=name, **flow)
    if kind == "Integer":
        return hist.axis.Integer(-2, draw(st.integers(0, 12)), name=name, growth=draw(st.booleans()), **flow)
    if kind == "StrCategory":
        return hist.axis.StrCategory(["b", "c", "light"], name=name, growth=draw(st.booleans()))
    if kind == "IntCategory":
        return hist.axis.IntCategory([0, 4, 5], name=name, growth=draw(st.booleans()))
    return hist.axis.Boolean(name=name)


def _sample(ax, rng, n):
    if isinstance(ax, hist.axis.StrCategory):
        return rng.choice(["b", "c", "light", "tau"], n)
    if isinstance(ax, hist.axis.IntCategory):
        return rng.choice([0, 4, 5, 15], n)
    if isinstance(ax, hist.axis.Boolean):
        return rng.random(n) < 0.3
    if isinstance(ax, hist.axis.Integer):
        return rng.integers(-4, 16, n)
    return rng.normal(0.5, 3.0, n)


def filled(ax_list, storage: str, n: int, seed: int) -> hist.Hist:
    names = [a.name for a in ax_list]
    if len(set(names)) != len(names):
        ax_list = [a for i, a in enumerate(ax_list) if a.name not in names[:i]]
    h = hist.Hist(*ax_list, storage=STORAGES[storage]())
    rng = np.random.default_rng(seed)
    data = {a.name: _sample(a, rng, n) for a in h.axes}
    kw = {}
    if storage in ("Weight", "Double", "WeightedMean"):
        kw["weight"] = rng.normal(1.0, 0.4, n)
    if storage in ("Mean", "WeightedMean"):
        kw["sample"] = rng.normal(10.0, 2.0, n)
    h.fill(**data, **kw)
    return h


def assert_bits_equal(a: hist.Hist, b: hist.Hist):
    """Same axes and storage, every bin's bits equal (Mean storages: as the UHI form keeps them)."""
    assert a.axes == b.axes
    assert [ax.traits for ax in a.axes] == [ax.traits for ax in b.axes]
    assert a.storage_type == b.storage_type
    if a.storage_type in (hist.storage.Mean, hist.storage.WeightedMean):
        # UHI keeps mean and variance, so the internal sum of squared deltas comes back through
        # variance * (n - 1): equal to the last bits, not bit for bit (jetdask's own hists are not Mean)
        for f in ("count", "value", "variance"):
            np.testing.assert_allclose(getattr(a, f"{f}s" if f != "count" else "counts")(flow=True),
                                       getattr(b, f"{f}s" if f != "count" else "counts")(flow=True),
                                       rtol=1e-14, atol=0, err_msg=f)
        return
    va, vb = a.view(flow=True), b.view(flow=True)
    fields = va.dtype.names or (None,)
    for f in fields:
        x, y = (va, vb) if f is None else (va[f], vb[f])
        np.testing.assert_array_equal(np.ascontiguousarray(x).view(np.uint8),
                                      np.ascontiguousarray(y).view(np.uint8), err_msg=str(f))


@settings(max_examples=60, deadline=None)
@given(st.lists(axes(), min_size=1, max_size=3), st.sampled_from(sorted(STORAGES)),
       st.sampled_from([0, 3, 40, 3000]), st.integers(0, 2**16))
def test_codec_round_trips_every_storage_and_axis(ax_list, storage, n, seed):
    h = filled(ax_list, storage, n, seed)
    res = Result({"h": h}, {"n": n, "sumw": 0.1 + 0.2, "np": np.int64(7)}, {}, {"arr": ["a.parquet", "b.parquet"]})
    back = histcodec.decode_result(histcodec.encode(res))
    assert_bits_equal(back.hists["h"], h)
    assert back.counters == {"n": n, "sumw": 0.1 + 0.2, "np": 7}
    assert back.array_files == res.array_files
    assert back.hists["h"].axes[0].label == h.axes[0].label


def test_sparse_blob_is_smaller_and_exact():
    h = hist.Hist.new.StrCat(["mumu", "ee"], name="channel").StrCat(["b", "c", "light", "data"], name="flavour") \
        .Reg(400, 0, 1, name="v").Weight()
    h.fill(channel=["mumu"] * 5, flavour=["b", "c", "light", "b", "c"], v=[0.1, 0.2, 0.3, 0.35, 0.9],
           weight=[0.5, 1.5, -1.0, 2.0, 1e-300])
    blob = histcodec.encode(Result({"h": h}))
    dense = h.view(flow=True).nbytes
    assert len(blob) < dense / 20
    assert_bits_equal(histcodec.decode_result(blob).hists["h"], h)


@settings(max_examples=25, deadline=None)
@given(st.lists(axes(), min_size=1, max_size=2), st.sampled_from(["Double", "Int64", "Weight"]), st.integers(0, 2**16),
       st.integers(1, 6))
def test_partial_sum_equals_hist_sum_bit_for_bit(ax_list, storage, seed, k):
    """Partial adds UHI arrays (or falls back to hist); the bits equal Result.iadd's, also with growth."""
    chunks = [Result({"h": filled(ax_list, storage, 50 * (i + 1), seed + i)}, {"n": i + 0.1}) for i in range(k)]
    want = Result()
    got = Partial()
    for r in chunks:
        want.iadd(r)
        got.add(Partial.from_blob(histcodec.encode(r)))
    res = got.to_result()
    assert_bits_equal(res.hists["h"], want.hists["h"])
    assert res.counters == want.counters and got.n_chunks == k


# -- the ledger's store ---------------------------------------------------------------------
def _outcome():
    return Outcome("x", "done", worker="w", started=1.0, finished=2.0, n_events=1)


def _plant(led, files=2, per_file=4, step=100):
    chunks = [Chunk("DS", f"/data/f{i}.root", "Events", j * step, (j + 1) * step, f"u{i}")
              for i in range(files) for j in range(per_file)]
    led.add_files([{"dataset": "DS", "path": f"/data/f{i}.root", "tree": "Events", "uuid": f"u{i}",
                    "num_entries": per_file * step} for i in range(files)], [])
    led.add_chunks(chunks)
    return chunks


def _result(i):
    rng = np.random.default_rng(i)
    h = hist.Hist.new.Reg(30, 0, 1, name="x").Weight()
    h.fill(x=rng.random(200), weight=rng.normal(1.0, 0.7, 200))
    c = hist.Hist.new.StrCat([], name="c", growth=True).Int64()
    c.fill(c=rng.choice(["a", "b", "c"][: 1 + i % 3], 10))
    return Result({"x": h, "c": c}, {"n": 200, "w": float(rng.random())}, {}, {"arr": [f"{i}.parquet"]})


def test_fold_equals_entry_order_sum_and_deletes_chunk_rows(tmp_path):
    led = Ledger(str(tmp_path / "ledger.sqlite"))
    chunks = _plant(led)
    results = {c.id: _result(i) for i, c in enumerate(chunks)}
    order = [chunks[i] for i in (3, 0, 6, 5, 2, 7, 4, 1)]   # completion order is not entry order
    mid = None
    for n, c in enumerate(order):
        assert led.mark_done(c, _outcome(), results[c.id])
        if n == 4:   # file 0 misses a chunk, file 1 too: nothing folded yet, merged reads chunk rows
            assert led.store.sizes()["file_results"]["rows"] == 0
            mid = led.merged()["DS"]
    sizes = led.store.sizes()
    assert sizes["file_results"]["rows"] == 2 and sizes["chunk_results"]["rows"] == 0
    assert "results" not in sizes
    want = Result()
    for f in range(2):   # per file in entry order, then files in path order
        part = Result()
        for c in chunks[4 * f: 4 * f + 4]:
            part.iadd(results[c.id])
        want.iadd(part)
    got = led.merged()["DS"]
    for k in want.hists:
        assert_bits_equal(got.hists[k], want.hists[k])
    assert got.counters == want.counters and got.array_files == want.array_files
    assert mid.counters["n"] == 5 * 200
    # a late duplicate or a result for a split chunk is refused and counts nothing
    assert not led.mark_done(chunks[0], _outcome(), results[chunks[0].id])
    assert led.merged()["DS"].counters == want.counters
    led.close()


def test_split_file_folds_when_all_leaves_are_done(tmp_path):
    led = Ledger(str(tmp_path / "ledger.sqlite"))
    chunks = _plant(led, files=1, per_file=2)
    a, b = chunks[1].split(2)
    assert led.mark_split(chunks[1], [a, b], "test")
    assert not led.mark_done(chunks[1], _outcome(), _result(9))   # split: its halves count instead
    led.mark_done(chunks[0], _outcome(), _result(0))
    led.mark_done(b, _outcome(), _result(2))
    assert led.store.sizes()["file_results"]["rows"] == 0
    led.mark_done(a, _outcome(), _result(1))
    assert led.store.sizes()["file_results"]["rows"] == 1
    want = _result(0) + _result(1) + _result(2)
    assert_bits_equal(led.merged()["DS"].hists["x"], want.hists["x"])
    led.close()


OLD_SCHEMA_RESULTS = "CREATE TABLE IF NOT EXISTS results (chunk_id TEXT PRIMARY KEY, payload TEXT);"


@pytest.mark.slow
def test_old_format_ledger_finalizes_and_resubmits(small_sample, tmp_path):
    """A ledger whose results are UHI JSON per chunk (the first format, migrated when opened:
    engine/schema.py) gives the same bits."""
    clean_dir = str(tmp_path / "clean")
    with Runner(DimuonJets(save_arrays=False), small_sample, clean_dir, serial=True, chunk_size=1500,
                progress=False) as r:
        clean = r.run()
    old = str(tmp_path / "old")
    os.makedirs(old)
    src = sqlite3.connect(os.path.join(clean_dir, "ledger.sqlite"))
    dst = sqlite3.connect(os.path.join(old, "ledger.sqlite"))
    for (sql,) in src.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name IN ('meta','files','chunks')"):
        dst.execute(sql)
    dst.execute(OLD_SCHEMA_RESULTS)
    for table in ("meta", "files", "chunks"):
        rows = src.execute(f"SELECT * FROM {table}").fetchall()
        dst.executemany(f"INSERT INTO {table} VALUES ({','.join('?' * len(rows[0]))})", rows)
    cols = "dataset, path, tree, entry_start, entry_stop, uuid"
    for d, p, t, a, b, u in src.execute(f"SELECT {cols} FROM chunks WHERE state='done'").fetchall():
        out = run_chunk(DimuonJets(save_arrays=False), Chunk(d, p, t, a, b, u), {})
        dst.execute("INSERT INTO results VALUES (?, ?)", (Chunk(d, p, t, a, b, u).id, out.result.to_json()))
    dst.commit()
    dst.close()
    src.close()

    led = Ledger(os.path.join(old, "ledger.sqlite"), readonly=True)   # migrated in memory
    out = finalize(old, led)
    led.close()
    assert_same_output(out, clean)
    for ds in clean.hists:
        for k in clean.hists[ds]:
            assert_bits_equal(out.hists[ds][k], clean.hists[ds][k])
    with Runner(DimuonJets(save_arrays=False), None, old, serial=True, progress=False) as r:
        again = r.resubmit()   # nothing to run: the old rows are migrated and folded, the output is the same
        sizes = r.ledger.store.sizes()
        tables = {t for (t,) in r.ledger.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "results" not in tables and sizes["chunk_results"]["rows"] == 0 and sizes["file_results"]["rows"] == 4
    for ds in clean.hists:
        for k in clean.hists[ds]:
            assert_bits_equal(again.hists[ds][k], clean.hists[ds][k])


# -- bin-exact outputs on a real LocalCluster ------------------------------------------------
def _assert_bits(out, ref):
    assert_same_output(out, ref)
    for ds in ref.hists:
        for k, h in ref.hists[ds].items():
            assert_bits_equal(out.hists[ds][k], h)
        assert out.counters[ds] == ref.counters[ds]


@pytest.mark.cluster
@pytest.mark.slow
def test_run_resumed_resubmitted_equal_bin_for_bin(small_sample, tmp_path):
    """Same chunks: serial, 2 workers, killed + resumed, failed + resubmitted give the same bits;
    another chunk size gives the same counts and weights to float rounding."""
    import signal
    import subprocess
    import sys
    import time

    import uproot
    from distributed import Client, LocalCluster

    from jetdask.fileset import load_fileset

    here = os.path.dirname(__file__)
    with Runner(DimuonJets(), small_sample, str(tmp_path / "serial"), serial=True, chunk_size=1000,
                progress=False) as r:
        clean = r.run()
    # a run killed half way (kill -9 of a `jetdask run` process, 500-event chunks) ...
    killed = str(tmp_path / "resumed")
    env = dict(os.environ, PYTHONPATH=here + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "jetdask.cli", "run", os.path.join(here, "engine_analyses.py") + ":DimuonJets",
           "--fileset", small_sample, "--run-dir", killed, "--chunk-size", "500", "--serial", "--no-progress",
           "--kwargs", '{"sleep": 0.3}']
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = os.path.join(killed, "ledger.sqlite")
    deadline, done = time.time() + 300, 0
    while time.time() < deadline and done < 8:
        time.sleep(0.3)
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            done = con.execute("SELECT COUNT(*) FROM chunks WHERE state='done'").fetchone()[0]
            con.close()
        except sqlite3.Error:
            continue
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 8 <= done < 24

    fs = load_fileset(small_sample)
    f0 = fs[sorted(fs.datasets)[0]].files[0].path
    ids = uproot.open(f0)["Events"].arrays(["run", "luminosityBlock", "event"], entry_start=1234, entry_stop=1235)
    target = (int(ids.run[0]), int(ids.luminosityBlock[0]), int(ids.event[0]))
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                           host="127.0.0.1")
    client = Client(cluster)
    try:
        with Runner(DimuonJets(), small_sample, str(tmp_path / "dist"), client, chunk_size=1000,
                    progress=False) as r:
            dist = r.run()
        with Runner(DimuonJets(fail_event=target), small_sample, str(tmp_path / "resub"), client,
                    chunk_size=1000, progress=False) as r:
            assert len(r.run().failed) == 1
        with Runner(DimuonJets(), None, str(tmp_path / "resub"), client, progress=False,
                    allow_analysis_change=True) as r:   # the failure fixed
            resub = r.resubmit()
        # resumed without the sleep (which cannot change a result: allowed explicitly)
        with Runner(DimuonJets(), small_sample, killed, client, chunk_size=500, progress=False,
                    allow_analysis_change=True) as r:
            resumed = r.run()
            assert r.stats["done"] == 24 - done
        with Runner(DimuonJets(), small_sample, str(tmp_path / "dist500"), client, chunk_size=500,
                    progress=False) as r:
            dist500 = r.run()
    finally:
        client.close()
        cluster.close()
    assert all(o.complete for o in (clean, dist, resub, resumed, dist500))
    _assert_bits(dist, clean)
    _assert_bits(resub, clean)
    _assert_bits(resumed, dist500)
    assert_same_output(resumed, clean)   # other chunk size: float sums to rounding
    for ds in clean.counters:
        assert resumed.counters[ds] == clean.counters[ds]   # integer and +-|w| sums: exact
    for name in ("dimuon",):
        a, b = resumed.arrays(name, "DoubleMuon"), clean.arrays(name, "DoubleMuon")
        assert a.event.tolist() == b.event.tolist()
