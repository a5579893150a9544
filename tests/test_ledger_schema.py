"""The ledger's schema version: every layout an earlier jetdask wrote is migrated on open, the same
results and states read back; readers never change the file; a newer ledger is refused; a migration
that fails leaves the file as it was.

The old layouts are built from their schema text as it stood in the history of
jetdask/engine/ledger.py and jetdask/engine/store.py (the commit named with each)."""
from __future__ import annotations

import hashlib
import sqlite3

import hist
import numpy as np
import pytest

from jetdask.chunk import Chunk
from jetdask.engine import histcodec, schema
from jetdask.engine.ledger import Ledger
from jetdask.engine.partial import Partial
from jetdask.errors import ConfigError
from jetdask.result import Result

# 4d5f4a1 (jetdask/ledger.py): the first ledger, results as UHI JSON per chunk
BASE = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS files (
  dataset TEXT, path TEXT, tree TEXT, uuid TEXT, num_entries INTEGER,
  state TEXT, reason TEXT, PRIMARY KEY (dataset, path));
CREATE TABLE IF NOT EXISTS chunks (
  id TEXT PRIMARY KEY, dataset TEXT, path TEXT, tree TEXT, uuid TEXT,
  entry_start INTEGER, entry_stop INTEGER, parent TEXT, state TEXT,
  attempts INTEGER DEFAULT 0, kind TEXT, error_type TEXT, message TEXT, traceback TEXT,
  events TEXT, bad_range TEXT, worker TEXT, started REAL, finished REAL,
  peak_rss INTEGER, n_events INTEGER, estimate INTEGER);
CREATE INDEX IF NOT EXISTS chunks_state ON chunks(state);
"""
RESULTS = "CREATE TABLE IF NOT EXISTS results (chunk_id TEXT PRIMARY KEY, payload TEXT);"
# 4d9982c: replicas, pattern (files) and the serving replica (chunks)
REPLICAS = BASE.replace("state TEXT, reason TEXT, PRIMARY KEY", "state TEXT, reason TEXT, replicas TEXT, "
                        "pattern TEXT, PRIMARY KEY").replace("estimate INTEGER);", "estimate INTEGER, replica TEXT);")
# 6e0dbc1 (jetdask/engine/store.py): binary chunk results, folded per file
STORE_V1 = """
CREATE TABLE IF NOT EXISTS chunk_results (chunk_id TEXT PRIMARY KEY, blob BLOB);
CREATE TABLE IF NOT EXISTS file_results (
  dataset TEXT, path TEXT, n_chunks INTEGER, blob BLOB, PRIMARY KEY (dataset, path));
CREATE INDEX IF NOT EXISTS chunks_file ON chunks(dataset, path, entry_start);
"""
# baac0dc .. c33afd1: one more index
STORE_V2 = STORE_V1 + "CREATE INDEX IF NOT EXISTS chunks_file_state ON chunks(dataset, path, state);\n"

# layout name -> (schema script, where the done chunks' results are: "json", "blob", or "mixed":
# the first file's as JSON, the others' as blobs, as an old directory resumed by 6e0dbc1 left them)
LAYOUTS = {
    "4d5f4a1": (BASE + RESULTS, "json"),
    "4d9982c": (REPLICAS + RESULTS, "json"),
    "6e0dbc1": (BASE + STORE_V1, "blob"),
    "6e0dbc1-over-4d5f4a1": (BASE + RESULTS + STORE_V1, "mixed"),
    "c33afd1": (REPLICAS + STORE_V2, "blob"),
}

F1, F2 = "/data/f1.root", "/data/f2.root"
# (path, start, stop, state, parent): f1 complete; f2 with a failed chunk and a split one
CHUNKS = [(F1, 0, 1000, "done", None), (F1, 1000, 2000, "done", None),
          (F2, 0, 1000, "done", None), (F2, 1000, 2000, "failed", None), (F2, 2000, 4000, "split", None),
          (F2, 2000, 3000, "done", "split-parent"), (F2, 3000, 4000, "pending", "split-parent")]


def _chunk(path, a, b) -> Chunk:
    return Chunk("DS", path, "Events", a, b, "u1" if path == F1 else "u2")


def _result(seed: int) -> Result:
    rng = np.random.default_rng(seed)
    h = hist.Hist.new.Reg(10, 0, 1, name="x").StrCat(["b", "light"], name="flav").Weight()
    n = 50 + seed
    h.fill(x=rng.random(n), flav=rng.choice(["b", "light"], n), weight=rng.integers(1, 4, n).astype(float))
    return Result({"x": h}, {"events": 1000.0, "selected": float(n)})


def _build(path: str, layout: str) -> dict:
    """An old-layout ledger; the results of its done chunks by chunk id."""
    script, where = LAYOUTS[layout]
    db = sqlite3.connect(path)
    db.executescript(script)
    cols = [r[1] for r in db.execute("PRAGMA table_info(files)")]
    for p, uuid, n in ((F1, "u1", 2000), (F2, "u2", 4000)):
        row = {"dataset": "DS", "path": p, "tree": "Events", "uuid": uuid, "num_entries": n, "state": "ok"}
        db.execute(f"INSERT INTO files ({','.join(row)}) VALUES ({','.join('?' * len(row))})", list(row.values()))
    if "replicas" in cols:
        db.execute("UPDATE files SET replicas=? WHERE path=?", ('["root://b//f2.root"]', F2))
    db.execute("INSERT INTO files (dataset, path, tree, state, reason) VALUES ('DS', '/data/bad.root', 'Events',"
               " 'failed', 'cannot open')")
    results = {}
    parent_id = _chunk(F2, 2000, 4000).id
    for i, (p, a, b, state, parent) in enumerate(CHUNKS):
        c = _chunk(p, a, b)
        db.execute("INSERT INTO chunks (id, dataset, path, tree, uuid, entry_start, entry_stop, parent, state,"
                   " attempts, kind, message) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                   (c.id, "DS", p, "Events", c.file_uuid, a, b, parent and parent_id, state, 1,
                    "error" if state == "failed" else None, "boom" if state == "failed" else None))
        if state == "done":
            results[c.id] = r = _result(i)
            if where == "json" or (where == "mixed" and p == F1):
                db.execute("INSERT INTO results VALUES (?, ?)", (c.id, r.to_json()))
            else:
                db.execute("INSERT INTO chunk_results VALUES (?, ?)", (c.id, histcodec.encode(r)))
    if where == "blob":   # a complete file was folded when its last chunk was done
        part = Partial()
        for (p, a, b, _, _) in CHUNKS:
            if p == F1:
                part.add(Partial.from_result(results[_chunk(p, a, b).id]))
        db.execute("INSERT INTO file_results VALUES ('DS', ?, 2, ?)", (F1, part.to_blob()))
        db.executemany("DELETE FROM chunk_results WHERE chunk_id=?",
                       [(_chunk(F1, a, b).id,) for p, a, b, _, _ in CHUNKS if p == F1])
    db.execute("INSERT INTO meta VALUES ('chunk_size', '1000')")
    db.commit()
    db.close()
    return results


def _expected(results: dict) -> dict:
    """Per file in path order, its chunks in entry order (the weights are integers: exact either way)."""
    total = None
    for p, a, b, state, _ in sorted(CHUNKS, key=lambda c: (c[0], c[1])):
        if state == "done":
            r = results[_chunk(p, a, b).id]
            total = r if total is None else total + r
    return total


def _check_contents(led: Ledger, results: dict, layout: str) -> None:
    want = _expected(results)
    got = led.merged()["DS"]
    assert set(got.hists) == {"x"} and got.counters == want.counters
    np.testing.assert_array_equal(got.hists["x"].view(flow=True)["value"], want.hists["x"].view(flow=True)["value"])
    np.testing.assert_array_equal(got.hists["x"].view(flow=True)["variance"],
                                  want.hists["x"].view(flow=True)["variance"])
    assert led.counts() == {"done": 4, "failed": 1, "split": 1, "pending": 1}
    replicas = ("root://b//f2.root",) if "replicas TEXT" in LAYOUTS[layout][0] else ()   # none recorded before
    assert [(c.path, c.entry_start, c.replicas) for c in led.chunks()] == [(F2, 1000, replicas), (F2, 3000, replicas)]
    assert [(f["path"], f["message"]) for f in led.failed()] == [(F2, "boom")]
    assert led.failed_files() == [{"dataset": "DS", "path": "/data/bad.root", "tree": "Events",
                                   "reason": "cannot open", "replicas": ()}]
    assert led.get_meta("chunk_size") == 1000
    # the complete file is one partial; the other keeps its done chunks until it completes
    assert led.store.files_with_chunk_rows() == [("DS", F2)]
    assert led.db.execute("SELECT path, n_chunks FROM file_results").fetchall() == [(F1, 2)]


def _cols(led, table):
    return {r[1] for r in led.db.execute(f"PRAGMA table_info({table})")}


def _tables(db) -> set:
    return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def _digest(path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_old_layout_migrated_on_open(tmp_path, layout):
    path = str(tmp_path / "ledger.sqlite")
    results = _build(path, layout)
    led = Ledger(path)
    assert schema.version(led.db) == schema.VERSION
    assert {"replicas", "pattern"} <= _cols(led, "files") and "replica" in _cols(led, "chunks")
    assert "results" not in _tables(led.db) and {"chunk_results", "file_results"} <= _tables(led.db)
    _check_contents(led, results, layout)
    # the migrated ledger takes the next result and folds the file it completes
    last = _chunk(F2, 3000, 4000)
    led.mark_running([last])
    led.db.execute("UPDATE chunks SET state='done' WHERE id=?", (_chunk(F2, 1000, 2000).id,))  # as if resubmitted
    from jetdask.engine.task import Outcome
    assert led.mark_done(last, Outcome(last.id, "done"), _result(99))
    assert led.store.files_with_chunk_rows() == []
    led.close()
    # opened again: nothing left to migrate, the same version
    again = Ledger(path)
    assert schema.version(again.db) == schema.VERSION
    again.close()


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_reader_of_an_old_layout_reads_it_unchanged(tmp_path, layout):
    path = str(tmp_path / "ledger.sqlite")
    results = _build(path, layout)
    before = _digest(path)
    led = Ledger(path, readonly=True)
    _check_contents(led, results, layout)
    led.close()
    assert _digest(path) == before
    db = sqlite3.connect(path)
    assert schema.version(db) == 0 and ("results" in _tables(db)) == (RESULTS in LAYOUTS[layout][0])
    db.close()


def test_new_ledger_has_the_version_and_a_newer_one_is_refused(tmp_path):
    path = str(tmp_path / "ledger.sqlite")
    Ledger(path).close()
    db = sqlite3.connect(path)
    assert schema.version(db) == schema.VERSION
    db.execute(f"PRAGMA user_version={schema.VERSION + 1}")
    db.commit()
    db.close()
    for readonly in (False, True):
        with pytest.raises(ConfigError, match="written by a newer jetdask"):
            Ledger(path, readonly=readonly)


def test_failed_migration_leaves_the_file_as_it_was(tmp_path):
    path = str(tmp_path / "ledger.sqlite")
    _build(path, "4d5f4a1")
    db = sqlite3.connect(path)
    db.execute("UPDATE results SET payload='{not json' WHERE rowid=2")
    db.commit()
    db.close()
    before = _digest(path)
    with pytest.raises(ConfigError, match=r"stored result of chunk .* cannot be read.*left as it was"):
        Ledger(path)
    db = sqlite3.connect(path)
    assert schema.version(db) == 0
    assert _tables(db) == {"meta", "files", "chunks", "results"}
    assert "replicas" not in {r[1] for r in db.execute("PRAGMA table_info(files)")}
    db.close()
    assert _digest(path) == before


def test_version_1_gains_the_retry_history(tmp_path):
    """85b3ec6 wrote version 1: the layout of c33afd1 without ``chunks.history``."""
    path = str(tmp_path / "ledger.sqlite")
    results = _build(path, "c33afd1")
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()
    led = Ledger(path)
    assert schema.version(led.db) == schema.VERSION and "history" in _cols(led, "chunks")
    _check_contents(led, results, "c33afd1")
    assert led.histories() == {}
    led.set_history(_chunk(F2, 1000, 2000).id, {"transient_failures": 2})
    assert led.histories() == {_chunk(F2, 1000, 2000).id: {"transient_failures": 2}}
    led.close()
