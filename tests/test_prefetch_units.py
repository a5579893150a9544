"""Read-ahead policy (pure functions), size settings, and the file cache's bounds on real trees."""
from __future__ import annotations

import gc
import tracemalloc

import dask
import pytest

from jetdask.chunk import Chunk
from jetdask.config_schema import size_bytes, validate
from jetdask.errors import ConfigError
from jetdask.nanoaod import filecache, io, prefetch
from jetdask.nanoaod.prefetch import Next, allowance, following, next_range


@pytest.mark.parametrize("budget, estimate, files, held, cap, want", [
    (1000, 100, 0, 0, 10_000, 900),       # the budget bounds it
    (1000, 100, 0, 0, 300, 300),          # the cap bounds it
    (1000, 100, 0, 250, 300, 50),         # what is held counts against the cap
    (1000, 600, 300, 0, 10_000, 100),     # the running chunk and the open files count against the budget
    (1000, 900, 300, 0, 10_000, 0),       # nothing left: never negative
    (1000, 100, 0, 400, 300, 0),          # held beyond the cap (cap lowered meanwhile)
    (1000, 0, 0, 0, 0, 0),                # prefetch-bytes 0 reads nothing ahead
])
def test_allowance(budget, estimate, files, held, cap, want):
    assert allowance(budget, estimate, files, held, cap) == want


@pytest.mark.parametrize("start, stop, n, want", [
    (0, 100, 1000, (100, 200)),
    (900, 1000, 1000, None),        # the file's last range
    (850, 950, 1000, (950, 1000)),  # cut at the end
    (0, 100, 100, None),
    (5, 5, 100, None),              # an empty range has no successor
])
def test_next_range(start, stop, n, want):
    assert next_range(start, stop, n) == want


def test_following_is_the_batch_then_the_queued_tasks_in_order():
    c = [Chunk("d", f"f{i // 2}.root", "Events", 10 * i, 10 * i + 10, f"u{i // 2}") for i in range(5)]
    got = following(c[1:2], [("jetdask-a", c[2:4]), ("jetdask-b", c[4:])])
    assert [(n.path, n.start, n.task) for n in got] == [
        ("f0.root", 10, None), ("f1.root", 20, "jetdask-a"), ("f1.root", 30, "jetdask-a"), ("f2.root", 40, "jetdask-b")]
    assert got[0] == Next(("f0.root",), "Events", 10, 20, None, "u0")


@pytest.mark.parametrize("value, want", [
    ("256MiB", 256 * 2**20), ("1 GB", 10**9), (0, 0), (1024, 1024), ("0", 0),
    ("lots", None), (-1, None), (True, None), (1.5, None), (None, None),
])
def test_size_values(value, want):
    assert size_bytes(value) == want


def test_size_keys_are_validated():
    assert validate({"prefetch-bytes": "64MiB", "file-cache-bytes": 0, "prefetch": False})["prefetch-bytes"] == "64MiB"
    with dask.config.set({"jetdask.prefetch-bytes": "lots"}):
        with pytest.raises(ConfigError, match="prefetch-bytes.*a size such as 256MiB.*'lots'"):
            validate()


def _trees(paths):
    return [io.open_tree(p, cache=False) for p in paths]


def test_cache_is_bounded_by_bytes_and_count(small_sample):
    from jetdask.fileset import load_fileset
    paths = [p for ds in load_fileset(small_sample) for p in (f.path for f in ds.files)]
    trees = _trees(paths)
    size = filecache.tree_bytes(trees[0])
    cache = filecache.FileCache()
    for i, t in enumerate(trees):
        cache.put((paths[i], "Events"), t, size, max_bytes=int(2.5 * size), max_count=64)
    assert cache.keys() == [(p, "Events") for p in paths[-2:]]          # the two most recent fit
    assert cache.bytes == 2 * size and all(t.file.closed for t in trees[:-2])
    assert not any(t.file.closed for t in trees[-2:])
    cache.put(("again", "Events"), io.open_tree(paths[0], cache=False), size, max_bytes=10**12, max_count=1)
    assert len(cache) == 1 and trees[-1].file.closed                    # and by their number
    cache.clear()


def test_a_tree_in_use_is_closed_by_its_reader(small_sample):
    from jetdask.fileset import load_fileset
    path = next(iter(load_fileset(small_sample))).files[0].path
    cache = filecache.FileCache()
    t = io.open_tree(path, cache=False)
    cache.put((path, "Events"), t, 100, max_bytes=10**9, max_count=8)
    cache.pin(t)
    assert cache.shrink(0) == 0 and len(cache) == 1                      # pinned: not evicted
    cache.pop(path, close=True)                                          # released while read
    assert len(cache) == 0 and not t.file.closed
    assert len(t["Jet_pt"].array(entry_stop=10)) == 10
    cache.unpin(t)
    assert t.file.closed


def test_released_trees_go_first_and_are_kept_only_within_a_quarter(small_sample):
    from jetdask.fileset import load_fileset
    paths = [p for ds in load_fileset(small_sample) for p in (f.path for f in ds.files)]
    trees = _trees(paths)
    size = 100
    cache = filecache.FileCache()
    for p, t in zip(paths, trees):
        cache.put((p, "Events"), t, size, max_bytes=10**9, max_count=64)
    cache.finish((paths[1], "Events"), keep=size)             # one released tree fits in keep: kept
    assert len(cache) == 4 and not trees[1].file.closed
    cache.get((paths[0], "Events"))                           # LRU order now 2, 3, 1(released), 0
    cache.shrink(3 * size)                                    # the released one goes first, not the oldest
    assert [k[0] for k in cache.keys()] == [paths[2], paths[3], paths[0]] and trees[1].file.closed
    cache.finish((paths[2], "Events"), keep=size)
    cache.finish((paths[3], "Events"), keep=size)             # two released > keep: the older closes
    assert [k[0] for k in cache.keys()] == [paths[3], paths[0]] and trees[2].file.closed
    assert cache.get((paths[3], "Events")) is trees[3]        # wanted again: no longer released
    cache.finish((paths[0], "Events"), keep=0)
    assert [k[0] for k in cache.keys()] == [paths[3]]
    cache.clear()


def test_release_and_make_room(small_sample):
    from jetdask.fileset import load_fileset
    paths = [p for ds in load_fileset(small_sample) for p in (f.path for f in ds.files)]
    io.clear_cache()
    try:
        trees = [io.open_tree(p) for p in paths]
        one = filecache.tree_bytes(trees[1])
        assert io.cached_paths() == paths and io.held_bytes() == sum(map(filecache.tree_bytes, trees))
        with dask.config.set({"jetdask.file-cache-bytes": 3 * one}):     # a quarter keeps no tree
            io.release(paths[0])
        assert paths[0] not in io.cached_paths() and trees[0].file.closed
        with dask.config.set({"jetdask.file-cache-bytes": 8 * one}):     # a quarter keeps two
            io.release(paths[1])
        assert paths[1] in io.cached_paths() and not trees[1].file.closed
        io.make_room(one, keep_path=paths[-1])          # room for one tree: the one a chunk reads stays
        assert io.cached_paths() == [paths[-1]] and io.held_bytes() <= one
        assert trees[1].file.closed
    finally:
        io.clear_cache()


def test_tree_bytes_estimates_what_an_open_tree_allocates(small_sample):
    """The estimate of an open tree is within a factor 2 of what opening it allocates (an
    889-branch synthetic PFNano file; Python and numpy allocations traced)."""
    from jetdask.fileset import load_fileset
    path = next(iter(load_fileset(small_sample))).files[0].path
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        t = io.open_tree(path, cache=False)
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    est = filecache.tree_bytes(t)
    io._close(t)
    assert 0.5 * used < est < 2 * used, (est, used)


def test_prefetch_off_does_nothing():
    with dask.config.set({"jetdask.prefetch": False}):
        assert prefetch.open_ahead("root://localhost:1//x.root") is None
        prefetch.after_read(None, "", None, None, 0, 0)      # not even looked at
