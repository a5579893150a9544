"""Open files on a real worker: released after their last chunk, bounded by bytes, one open each."""
from __future__ import annotations

import sys

import cloudpickle
import dask
import pytest

from engine_analyses import DimuonJets
from engine_helpers import assert_same_output, local_client, serial_output
from jetdask.engine.runner import Runner
from jetdask.fileset import load_fileset
from jetdask.nanoaod import filecache, io, prefetch

pytestmark = pytest.mark.cluster
cloudpickle.register_pickle_by_value(sys.modules[__name__])   # its helpers run in worker processes


def _reset(values: dict) -> None:
    dask.config.set(values)
    io.clear_cache()
    io.stats.update(opens=0, hits=0, open_seconds=0.0)
    prefetch.reset_stats()


def _state() -> dict:
    return dict(prefetch.stats_snapshot(), opens=io.stats["opens"], paths=io.cached_paths(),
                released_bytes=io._cache.finished_bytes())


def _tree_bytes(path) -> int:
    t = io.open_tree(path, cache=False)
    try:
        return filecache.tree_bytes(t)
    finally:
        io._close(t)


@pytest.fixture(scope="module")
def reference(small_sample, tmp_path_factory):
    return serial_output(small_sample, tmp_path_factory.mktemp("ref"), 1000)


@pytest.mark.parametrize("trees", [64, 2])
def test_files_are_released_after_their_last_chunk_and_bounded_by_bytes(small_sample, reference, tmp_path, trees):
    """One worker runs 4 files of 3 chunks each. With room for 64 trees every file is released
    after its last chunk, each is opened once (planning's open serves its chunks) and the
    released ones stay open for a next run (a quarter of the bound holds them); with room for
    2 trees the cache never holds more than that, and released trees are closed at once."""
    paths = [f.path for ds in load_fileset(small_sample) for f in ds.files]
    one = _tree_bytes(paths[0])
    with local_client(1, memory_limit="2GiB") as client:
        client.run(_reset, {"jetdask.file-cache-bytes": trees * one + one // 2})
        with Runner(DimuonJets(), small_sample, str(tmp_path / "run"), client, chunk_size=1000,
                    progress=False) as r:
            out = r.run()
        assert out.complete
        assert_same_output(out, reference)
        state = list(client.run(_state).values())[0]
    assert state["files_peak"] <= (trees + 1) * one
    if trees == 64:
        assert state["released"] == len(paths)
        assert state["opens"] == len(paths)
        assert sorted(state["paths"]) == sorted(paths) and state["released_bytes"] <= 16 * one
    else:
        assert state["opens"] >= len(paths) and state["paths"] == []
