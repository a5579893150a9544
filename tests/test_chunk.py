import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from jetdask.chunk import Chunk
from jetdask.engine.planning import chunk_edges


def test_id_stable_across_processes_and_independent_of_url():
    c = Chunk("DY", "/data/a.root", "Events", 0, 1000, "f2f7b0a2-043c-11ee-ada3-6ebde183beef")
    code = ("from jetdask.chunk import Chunk;"
            "print(Chunk('DY','root://eos//a.root','Events',0,1000,'f2f7b0a2-043c-11ee-ada3-6ebde183beef').id)")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert other == c.id
    assert Chunk("DY", "/x.root", "Events", 0, 1001, c.file_uuid).id != c.id
    assert Chunk("DY2", "/data/a.root", "Events", 0, 1000, c.file_uuid).id != c.id


def test_split_covers_range():
    c = Chunk("DY", "a.root", "Events", 10, 21, "u")
    halves = c.split(2)
    assert [(h.entry_start, h.entry_stop) for h in halves] == [(10, 15), (15, 21)]
    assert sum(h.num_entries for h in c.split(7)) == 11


@settings(max_examples=300, deadline=None)
@given(n=st.integers(0, 5000), size=st.integers(1, 700),
       clusters=st.lists(st.integers(0, 5000), max_size=30))
def test_chunk_edges_cover_every_entry_once(n, size, clusters):
    edges = chunk_edges(n, sorted(set(clusters)), size)
    assert edges[0] == 0 and edges[-1] == max(n, 0)
    widths = [b - a for a, b in zip(edges[:-1], edges[1:])]
    assert all(0 < w <= size for w in widths)
    assert sum(widths) == n


def test_chunk_edges_follow_clusters():
    # clusters every 1000 entries, chunk size 2500 -> edges on cluster boundaries
    clusters = list(range(0, 10001, 1000))
    assert chunk_edges(10000, clusters, 2500) == [0, 2000, 4000, 6000, 8000, 10000]
    # one cluster larger than the chunk size is cut evenly
    assert chunk_edges(10, [0, 10], 4) == [0, 3, 6, 10]
