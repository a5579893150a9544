"""Reading ahead from a real XRootD server: the next chunk's baskets arrive without a request of
its own, the data are the file's, the bytes held stay within the budget, a failed read ahead
is read again with today's errors, and the engine's output is the same with and without it."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid

import awkward as ak
import cloudpickle
import dask
import pytest

from conftest import real_file
from engine_analyses import DimuonJets
from engine_helpers import assert_same_output, local_client, serial_output
from jetdask.chunk import Chunk
from jetdask.engine.runner import Runner
from jetdask.errors import TransientFileError
from jetdask.fileset import load_fileset
from jetdask.nanoaod import io, prefetch, readahead, uproot_speedups
from jetdask.nanoaod.columns import resolve_columns
from jetdask.nanoaod.prefetch import Next
from xrootd_server import SCRIPTS, PrivateServer, free_port, publish, shared_server

pytestmark = pytest.mark.xrootd
cloudpickle.register_pickle_by_value(sys.modules[__name__])   # its helpers run in worker processes
BRANCHES = ["Jet_pt", "Jet_eta", "nJet", "Muon_pt", "event"]


@pytest.fixture(scope="module")
def server():
    url, export = shared_server()
    tag = f"jetdask-prefetch-{uuid.uuid4().hex[:8]}"
    yield url, export, tag
    shutil.rmtree(os.path.join(export, tag), ignore_errors=True)


@pytest.fixture
def clean():
    uproot_speedups.apply()      # a chunk's baskets in one read, as on the run's workers
    io.clear_cache()
    prefetch.reset_stats()
    yield
    io.clear_cache()
    prefetch.shutdown()


def _file(small_sample) -> str:
    return next(iter(load_fileset(small_sample))).files[0].path


def _wait_arrived(tree, timeout=30):
    store = tree.file.source.store
    t0 = time.monotonic()
    while not all(r.done() for r in list(store._ranges.values())):
        assert time.monotonic() - t0 < timeout
        time.sleep(0.01)


def _read_after(url, tree, chunk, nxt, budget=10**9):
    """Read ``chunk`` as the task does, then read ahead ``nxt`` (None: the guess)."""
    arrays = io.read_arrays(tree, BRANCHES, chunk.entry_start, chunk.entry_stop, url)
    prefetch.expect([nxt] if nxt else [])
    prefetch.after_read(chunk, url, tree, lambda t, n: BRANCHES, 0, budget)
    return arrays


def test_next_chunk_is_read_without_a_request_of_its_own(server, small_sample, clean):
    url, export, tag = server
    local = _file(small_sample)
    remote = publish(export, url, local, f"{tag}/next/f.root")
    tree, ltree = io.open_tree(remote), io.open_tree(local)
    u = str(tree.file.uuid)
    first = Chunk("d", remote, "Events", 0, 1000, u)
    _read_after(remote, tree, first, None)                  # guesses: [1000, 2000), [2000, 3000)
    expected = prefetch.basket_ranges(tree, BRANCHES, 1000, 2000)
    after = prefetch.basket_ranges(tree, BRANCHES, 2000, 3000)
    assert readahead.held.bytes == sum(b - a for a, b in expected + after) > 0
    _wait_arrived(tree)
    source = tree.file.source
    requests = source._num_requests
    got = io.read_arrays(tree, BRANCHES, 1000, 2000, remote)
    assert source._num_requests == requests                          # no vector read of its own
    assert readahead.counts["taken"] == len(expected)
    assert readahead.held.bytes == sum(b - a for a, b in after)      # the chunk after stays read ahead
    want = io.read_arrays(ltree, BRANCHES, 1000, 2000, local)
    assert all(ak.array_equal(got[b], want[b]) for b in BRANCHES)


def test_the_first_entries_of_a_planned_file_are_read_ahead(server, small_sample, clean):
    """Planning opened the file here: its first entries (as many as the chunk budget plans in a
    chunk, here 1500) are asked for at once, and the first chunk reads nothing itself."""
    url, export, tag = server
    remote = publish(export, url, _file(small_sample), f"{tag}/first/f.root")
    tree = io.open_tree(remote)
    asked = prefetch.first_entries(remote, "Events", BRANCHES, {"budget": 10**9, "max_events": 1500})
    branches = resolve_columns(tree.keys(), BRANCHES)         # the counters of jagged columns too
    assert asked == readahead.held.bytes == sum(b - a for a, b in set(prefetch.basket_ranges(tree, branches, 0, 1500)))
    assert prefetch.first_entries(remote, "Events", BRANCHES, {"budget": 0}) == 0     # no budget, nothing
    _wait_arrived(tree)
    requests = tree.file.source._num_requests
    io.read_arrays(tree, branches, 0, 1000, remote)
    assert tree.file.source._num_requests == requests


def test_a_chunk_that_is_not_the_guess_reads_what_it_lacks(server, small_sample, clean):
    """Read ahead [1000, 2000) but read [500, 1500): half from the store, half by its own request;
    then a chunk of the batch ([2000, 3000)) replaces the guess, whose leftovers are dropped."""
    url, export, tag = server
    local = _file(small_sample)
    remote = publish(export, url, local, f"{tag}/other/f.root")
    tree, ltree = io.open_tree(remote), io.open_tree(local)
    u = str(tree.file.uuid)
    _read_after(remote, tree, Chunk("d", remote, "Events", 0, 1000, u), None)
    _wait_arrived(tree)
    source = tree.file.source
    requests = source._num_requests
    got = _read_after(remote, tree, Chunk("d", remote, "Events", 500, 1500, u),
                      Next((remote,), "Events", 2000, 3000, None, u))
    assert source._num_requests == requests + 1
    want = io.read_arrays(ltree, BRANCHES, 500, 1500, local)
    assert all(ak.array_equal(got[b], want[b]) for b in BRANCHES)
    held = {(r.start, r.stop) for r in tree.file.source.store._ranges.values()}
    assert held == set(prefetch.basket_ranges(tree, BRANCHES, 2000, 3000))
    assert readahead.held.bytes == sum(b - a for a, b in held)


@pytest.mark.parametrize("cap, left", [("20KiB", 10**9), ("1GiB", 20_000)])
def test_what_is_held_stays_within_the_cap_and_the_budget(server, small_sample, clean, cap, left):
    """At most ``prefetch-bytes``, and at most what the chunk budget leaves after the open file."""
    url, export, tag = server
    remote = publish(export, url, _file(small_sample), f"{tag}/cap/f.root")
    tree = io.open_tree(remote)
    u = str(tree.file.uuid)
    budget = io.held_bytes() + left
    with dask.config.set({"jetdask.prefetch-bytes": cap}):
        for start in range(0, 2000, 1000):
            _read_after(remote, tree, Chunk("d", remote, "Events", start, start + 1000, u), None, budget=budget)
            assert 0 < readahead.held.bytes <= 20 * 1024
    assert readahead.held.peak <= 20 * 1024 and prefetch.stats["over_budget"] > 0


def test_a_failed_read_ahead_is_read_again_with_the_usual_errors(small_sample, clean):
    server = PrivateServer()
    server.start()
    try:
        remote = server.publish(_file(small_sample), "fail/f.root")
        with dask.config.set({"jetdask.open-timeout": 2}):
            tree = io.open_tree(remote)
            u = str(tree.file.uuid)
            server.stop()
            prefetch.expect([Next((remote,), "Events", 0, 1000)])
            prefetch.after_read(Chunk("d", remote, "Events", 2000, 3000, u), remote, tree, lambda t, n: BRANCHES,
                                0, 10**9)
            _wait_arrived(tree)
            assert readahead.counts["failed"] > 0
            with pytest.raises(TransientFileError, match=r"\[0, 1000\).*(Operation expired|Connection)"):
                io.read_arrays(tree, BRANCHES, 0, 1000, remote)      # read again: the client's own error
            assert readahead.held.bytes == 0
            server.start()
            for _ in range(30):   # the client tries the server again every few seconds
                try:
                    again = io.open_tree(remote)
                    break
                except TransientFileError:
                    time.sleep(1)
            assert len(io.read_arrays(again, BRANCHES, 0, 1000, remote)["Jet_pt"]) == 1000
    finally:
        server.remove()


def _remote_fileset(small_sample, server, sub, out) -> str:
    url, export, tag = server
    fs = load_fileset(small_sample).to_dict()
    for ds in fs.values():
        ds["files"] = {publish(export, url, p, f"{tag}/{sub}/{os.path.basename(p)}"): t for p, t in ds["files"].items()}
    with open(out, "w") as f:
        json.dump(fs, f)
    return str(out)


def _set_worker_config(values: dict) -> None:
    dask.config.set(values)
    prefetch.reset_stats()


def _worker_stats() -> dict:
    return prefetch.stats_snapshot()


@pytest.fixture(scope="module")
def reference(small_sample, tmp_path_factory):
    return serial_output(small_sample, tmp_path_factory.mktemp("ref"), 500)


@pytest.mark.cluster
def test_engine_output_is_the_same_with_and_without_prefetch(server, small_sample, reference, tmp_path):
    """2 real workers over root://: prefetch on (baskets of the next chunk taken from the store),
    on with a 64 KiB budget, and off: the same output as the local serial run, bin for bin."""
    fileset = _remote_fileset(small_sample, server, "engine", tmp_path / "remote.json")
    with local_client(2, memory_limit="2GiB") as client:
        for name, values in (("on", {"jetdask.prefetch": True}),
                             ("small", {"jetdask.prefetch": True, "jetdask.prefetch-bytes": "64KiB"}),
                             ("off", {"jetdask.prefetch": False})):
            client.run(io.clear_cache)
            client.run(_set_worker_config, values)
            with Runner(DimuonJets(), fileset, str(tmp_path / name), client, chunk_size=500, progress=False) as r:
                out = r.run()
            assert out.complete
            assert_same_output(out, reference)
            stats = list(client.run(_worker_stats).values())
            taken = sum(s["ranges_taken"] for s in stats)
            if name == "off":
                assert sum(s["ranges_requested"] for s in stats) == 0
            else:
                assert taken > 0, stats
                assert all(s["held"] == 0 for s in stats)     # everything asked for was used or dropped
            if name == "small":
                assert max(s["held_peak"] for s in stats) <= 64 * 1024
        client.run(_set_worker_config, {"jetdask.prefetch": True, "jetdask.prefetch-bytes": "256MiB"})


def test_real_pfnano_over_xrootd_with_prefetch_equals_local(server, clean):
    """The real 1800-branch PFNano file (10 events), read in chunks of 3 events with the next read ahead."""
    url, export, tag = server
    local = real_file("pfnano.root")
    remote = publish(export, url, local, f"{tag}/real/pfnano.root")
    tree, ltree = io.open_tree(remote), io.open_tree(local)
    branches = resolve_columns(tree.keys(), ["Jet_pt", "Jet_btagDeepFlavB", "PFCands_pt", "event"])
    u = str(tree.file.uuid)
    for start in range(0, int(tree.num_entries), 3):
        stop = min(start + 3, int(tree.num_entries))
        got = io.read_arrays(tree, branches, start, stop, remote)
        prefetch.expect([])
        prefetch.after_read(Chunk("d", remote, "Events", start, stop, u), remote, tree, lambda t, n: branches, 0, 10**9)
        want = io.read_arrays(ltree, branches, start, stop, local)
        assert all(ak.array_equal(got[b], want[b]) for b in branches), start
    assert readahead.counts["taken"] > 0


def _until(fn, what: str, timeout: float = 30.0):
    t0 = time.monotonic()
    while True:
        got = fn()
        if got:
            return got
        assert time.monotonic() - t0 < timeout, what
        time.sleep(0.05)


@pytest.mark.cluster
def test_a_cancelled_task_and_the_run_end_drop_what_was_read_ahead(server, small_sample):
    """A real worker (one thread) runs a chunk whose analysis sleeps while the next task waits:
    that task's first chunk is read ahead; cancelling the task drops it; so does the run's end."""
    from jetdask.engine.workerside import SLOTS, RunPlugin, register, run_registered
    url, export, tag = server
    remote = publish(export, url, _file(small_sample), f"{tag}/cancel/f.root")
    u = io.file_info(remote)["uuid"]
    chunks = [Chunk("d", remote, "Events", a, a + 500, u) for a in range(0, 3000, 500)]
    with local_client(1, memory_limit="2GiB") as client:
        name = f"jetdask-run-{uuid.uuid4().hex[:8]}"
        register(client, RunPlugin(name, cloudpickle.dumps(DimuonJets(sleep=4, save_arrays=False))))
        client.run(_set_worker_config, {"jetdask.prefetch": True})

        def submit(i, priority=0):
            return client.submit(run_registered, name, [chunks[i]], {}, key=f"jetdask-{tag}-{i}", pure=False,
                                 resources={SLOTS: 1}, priority=priority)

        def held():
            return list(client.run(_worker_stats).values())[0]["held"]
        # the worker's one slot busy for a while: both tasks wait on the worker before the first
        # starts, so the second is known when the first chunk's baskets are in (not a guess);
        # the first runs first by its priority (of two tasks waiting, dask runs the newer first)
        busy = client.submit(time.sleep, 1.5, key=f"busy-{tag}", pure=False, resources={SLOTS: 1})
        first, second = submit(0, priority=1), submit(1)
        busy.result()
        _until(lambda: held() > 0, "the queued task's chunk was not read ahead")
        second.cancel()
        _until(lambda: held() == 0, "cancelling the task did not drop its read-ahead")
        assert first.result()[0].status == "done"
        stats = list(client.run(_worker_stats).values())[0]
        assert stats["ranges_dropped"] > 0 and stats["ranges_taken"] == 0
        third, fourth = submit(2), submit(3)
        _until(lambda: held() > 0, "the queued task's chunk was not read ahead")
        client.unregister_worker_plugin(name)                  # the run ends on the worker
        _until(lambda: held() == 0, "the run's end did not drop the read-ahead")
        for f in (third, fourth):
            f.cancel()


@pytest.mark.cluster
def test_inspections_of_remote_files_open_off_the_worker_thread(server, small_sample, tmp_path):
    """One single-threaded worker plans 6 files 50 ms (each way) away: their opens overlap."""
    from jetdask.engine import planning
    url, export, tag = server
    host_port = url.split("://", 1)[1].strip("/")
    port = free_port()
    proxy = subprocess.Popen([sys.executable, os.path.join(SCRIPTS, "latency-proxy.py"), str(port),
                              "127.0.0.1", host_port.rsplit(":", 1)[1], "50"])
    try:
        time.sleep(0.5)
        src = _file(small_sample)
        urls = [publish(export, url, src, f"{tag}/plan/f{i}.root").replace(host_port, f"127.0.0.1:{port}")
                for i in range(6)]
        with local_client(1, memory_limit="2GiB") as client:
            client.run(_set_worker_config, {"jetdask.prefetch": True})
            infos = planning.inspect_files([(u, "Events") for u in urls], client)
            assert [i["num_entries"] for i in infos] == [3000] * 6 and all("error" not in i for i in infos)
            stats = list(client.run(_worker_stats).values())[0]
            assert stats["off_thread_peak"] >= 2, stats
            client.run(_set_worker_config, {"jetdask.prefetch": False})
            client.run(io.clear_cache)
            planning.inspect_files([(u, "Events") for u in urls], client)
            assert list(client.run(_worker_stats).values())[0].get("off_thread_peak", 0) == 0
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)
