"""The waiting-chunk queue on its own: which chunks a worker gets, and how many per task."""
from __future__ import annotations

import pytest

from jetdask.chunk import Chunk
from jetdask.engine.pending import BATCH_MAX, NEVER, Pending, batch_size, steal_threshold


def chunks(path: str, n: int, size: int = 100) -> list[Chunk]:
    return [Chunk("ds", path, "Events", i * size, (i + 1) * size, "u-" + path) for i in range(n)]


def ranges(cs):
    return [(c.path, c.entry_start) for c in cs]


BATCH_CASES = [
    # (name, chunk_seconds, target, unfinished, threads, held by the worker, its threads, expected)
    ("no measurement yet: one chunk", None, 0.25, 1000, 16, 0, 1, 1),
    ("batching off", 0.001, 0.0, 1000, 16, 0, 1, 1),
    ("long chunks: one", 2.0, 0.25, 1000, 16, 0, 1, 1),
    ("short chunks: target / duration", 0.05, 0.25, 1000, 16, 0, 1, 5),
    ("tiny chunks: capped", 0.0001, 0.25, 10**6, 16, 0, 1, BATCH_MAX),
    ("run ending: a thread's share", 0.001, 0.25, 40, 16, 0, 1, 2),
    ("fewer unfinished than threads: one", 0.001, 0.25, 10, 16, 0, 1, 1),
    ("two files, two workers: a file's rest in one task", 0.09, 1.0, 19, 2, 0, 1, 9),
    ("a worker that holds its share gets one", 0.09, 1.0, 19, 2, 9, 1, 1),
    ("a worker's threads share what it holds", 0.001, 0.25, 80, 8, 8, 4, 8),
]


@pytest.mark.parametrize("name,secs,target,unfinished,threads,mine,own,expected", BATCH_CASES,
                         ids=[c[0] for c in BATCH_CASES])
def test_batch_size(name, secs, target, unfinished, threads, mine, own, expected):
    assert batch_size(secs, target, unfinished, threads, mine, own) == expected


def make(files: dict[str, int], homes: dict[str, str] | None = None) -> Pending:
    p = Pending(homes)
    for path, n in files.items():
        p.extend(chunks(path, n))
    return p


TAKE_CASES = [
    # (name, files {path: chunks}, homes, worker, n, expected [(path, start)], expected home of that path)
    ("home file first", {"a": 3, "b": 3}, {"b": "w1"}, "w1", 2, [("b", 0), ("b", 100)], "w1"),
    ("homeless file, in order", {"a": 3, "b": 3}, {"a": "w0"}, "w1", 1, [("b", 0)], "w1"),
    ("first homeless file when no home", {"a": 3, "b": 3}, {}, "w1", 2, [("a", 0), ("a", 100)], "w1"),
    ("file moves from a worker with two", {"a": 3, "b": 2}, {"a": "w0", "b": "w0"}, "w1", 5,
     [("b", 0), ("b", 100)], "w1"),
    ("steal from the back of the longest", {"a": 5, "b": 2}, {"a": "w0", "b": "w2"}, "w1", 2,
     [("a", 300), ("a", 400)], "w0"),
    ("n larger than the file", {"a": 2}, {}, "w1", 10, [("a", 0), ("a", 100)], "w1"),
]


@pytest.mark.parametrize("name,files,homes,worker,n,expected,home", TAKE_CASES, ids=[c[0] for c in TAKE_CASES])
def test_take(name, files, homes, worker, n, expected, home):
    p = make(files, homes)
    before = len(p)
    got = p.take(worker, n)
    assert ranges(got) == expected
    assert p.home[got[0].path] == home
    assert len(p) == before - len(got) == sum(1 for _ in p)


def test_every_chunk_handed_out_once_and_files_stay_on_their_worker():
    p = make({"a": 40, "b": 40})
    seen, workers_of = [], {}
    turn = 0
    while p:
        w = ("w0", "w1")[turn % 2]
        turn += 1
        got = p.take(w, 3)
        seen += ranges(got)
        workers_of.setdefault(got[0].path, set()).add(w)
    assert sorted(seen) == sorted(ranges(chunks("a", 40) + chunks("b", 40)))
    assert workers_of == {"a": {"w0"}, "b": {"w1"}}     # two workers, two files: each opened once


def test_split_halves_go_in_front_and_a_departed_home_frees_its_files():
    p = make({"a": 2, "b": 2}, {"a": "w0", "b": "w0"})
    first = p.take("w0", 1)[0]
    halves = first.split(2)
    for c in reversed(halves):
        p.push(c, front=True)
    assert ranges(p.take("w0", 2)) == ranges(halves)
    p.drop_worker("w0")
    assert "a" not in p.home and "b" not in p.home
    assert ranges(p.take("w1", 5)) == [("a", 100)]      # the first file without a home
    assert p.home["a"] == "w1"


def test_empty_queue_gives_nothing():
    p = Pending()
    assert p.take("w0", 4) == [] and not p and len(p) == 0


def test_files_a_worker_has_open_come_first():
    p = make({"a": 4, "b": 4, "c": 4})
    p.note_open("w1", ["c"])
    assert ranges(p.take("w1", 1)) == [("c", 0)]                 # homeless: its open file, not the first
    p2 = make({"a": 4, "b": 4, "c": 4}, {"a": "w0", "b": "w0", "c": "w0"})
    p2.note_open("w1", ["b"])
    assert ranges(p2.take("w1", 1)) == [("b", 0)] and p2.home["b"] == "w1"   # moved from the busy home
    p3 = make({"a": 6, "b": 3}, {"a": "w0", "b": "w2"})
    p3.note_open("w1", ["b"])
    assert ranges(p3.take("w1", 1)) == [("b", 200)]               # steals where it has the file open


def test_open_files_are_remembered_up_to_the_cache_size():
    p = Pending(cache_size=2)
    p.note_open("w", ["a", "b", "c"])
    assert list(p.open["w"]) == ["b", "c"]


STEAL_CASES = [
    # (name, open_seconds, chunk_seconds, expected)
    ("nothing measured: no file, until the first chunk's time is known", None, None, NEVER),
    ("chunk time not measured", 0.4, None, NEVER),
    ("open not measured: 0.5 s", None, 0.1, 5),
    ("cheap open, long chunks", 0.01, 1.0, 1),
    ("open of 0.4 s, chunks of 0.14 s", 0.4, 0.14, 3),
]


@pytest.mark.parametrize("name,open_s,chunk_s,expected", STEAL_CASES, ids=[c[0] for c in STEAL_CASES])
def test_steal_threshold(name, open_s, chunk_s, expected):
    assert steal_threshold(open_s, chunk_s) == expected


def test_no_steal_of_a_short_tail_from_a_file_the_worker_has_not_open():
    p = make({"a": 3}, {"a": "w0"})
    assert p.take("w1", 1, min_steal=4) == []
    assert ranges(p.take("w1", 1, min_steal=3)) == [("a", 200)]
    assert p.take("w1", 1, min_steal=4) != []          # now it has the file open: no threshold


def test_a_file_many_workers_help_with_is_not_opened_again():
    p = make({"a": 12, "b": 8}, {"a": "w0", "b": "w1"})
    p.note_open("w2", ["a"])
    p.note_open("w3", ["a"])
    # a: 12 waiting for 3 workers (4 each), b: 8 for 1: b is where an open helps most
    assert ranges(p.take("w4", 1, min_steal=5))[0][0] == "b"
    # 7 left of b for its 2 workers (3.5 each), 4 each of a: neither is worth an open of 5 chunks' time
    assert p.take("w5", 1, min_steal=5) == []
    assert ranges(p.take("w5", 1, min_steal=4))[0][0] == "a"
