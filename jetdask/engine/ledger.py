"""The run ledger: one SQLite file, the single source of truth of a run.

Only the client writes it. For each chunk it keeps the state (``pending``,
``running``, ``done``, ``failed``, or ``split`` when replaced by its halves),
attempts, error type and message, traceback, failing events, worker, times,
peak memory and events processed; a finished chunk's result (histograms and
counters as JSON) is stored in the same transaction that marks it done, so a
crash anywhere loses at most the chunks in flight and never counts one twice.
Files that could not be planned are kept with their reason. A file's other
URLs (``replicas``) and the directory or glob it was listed from (``pattern``)
are kept with it; a done chunk records the URL that served it (``replica``).
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
from typing import Iterable

from ..chunk import Chunk

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS files (
  dataset TEXT, path TEXT, tree TEXT, uuid TEXT, num_entries INTEGER,
  state TEXT, reason TEXT, replicas TEXT, pattern TEXT, PRIMARY KEY (dataset, path));
CREATE TABLE IF NOT EXISTS chunks (
  id TEXT PRIMARY KEY, dataset TEXT, path TEXT, tree TEXT, uuid TEXT,
  entry_start INTEGER, entry_stop INTEGER, parent TEXT, state TEXT,
  attempts INTEGER DEFAULT 0, kind TEXT, error_type TEXT, message TEXT, traceback TEXT,
  events TEXT, bad_range TEXT, worker TEXT, started REAL, finished REAL,
  peak_rss INTEGER, n_events INTEGER, estimate INTEGER, replica TEXT);
CREATE INDEX IF NOT EXISTS chunks_state ON chunks(state);
CREATE TABLE IF NOT EXISTS results (chunk_id TEXT PRIMARY KEY, payload TEXT);
"""

ACTIVE_STATES = ("pending", "running", "failed")


class Ledger:
    def __init__(self, path: str):
        self.path = path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self._add_columns({"files": ("replicas", "pattern"), "chunks": ("replica",)})

    def _add_columns(self, wanted: dict) -> None:
        """Columns added after a run directory was made (older ledgers): TEXT, NULL."""
        for table, cols in wanted.items():
            have = {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}
            for col in cols:
                if col not in have:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN {col} TEXT")

    def close(self):
        self.db.close()

    # -- metadata ----------------------------------------------------------
    def set_meta(self, key: str, value) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def get_meta(self, key: str, default=None):
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    # -- planning ----------------------------------------------------------
    def add_files(self, files: Iterable[dict], failures: Iterable) -> None:
        with self.db:
            self.db.execute("BEGIN")
            cols = "INSERT OR REPLACE INTO files (dataset, path, tree, uuid, num_entries, state, reason, " \
                   "replicas, pattern) VALUES (?,?,?,?,?,?,?,?,?)"
            for f in files:
                self.db.execute(cols, (f["dataset"], f["path"], f["tree"], f["uuid"], f["num_entries"], "ok", None,
                                       json.dumps(f.get("replicas") or []), f.get("pattern")))
                if f.get("pattern"):   # listed now: the pattern's earlier listing failure is resolved
                    self.db.execute("DELETE FROM files WHERE dataset=? AND path=? AND state='failed'",
                                    (f["dataset"], f["pattern"]))
            for x in failures:
                self.db.execute(cols, (x.dataset, x.path, x.tree, None, None, "failed", x.reason,
                                       json.dumps(list(getattr(x, "replicas", ()))), None))

    def add_chunks(self, chunks: Iterable[Chunk], parent: str | None = None) -> None:
        with self.db:
            self.db.execute("BEGIN")
            for c in chunks:
                self.db.execute(
                    "INSERT OR IGNORE INTO chunks (id, dataset, path, tree, uuid, entry_start, entry_stop, parent, state)"
                    " VALUES (?,?,?,?,?,?,?,?, 'pending')",
                    (c.id, c.dataset, c.path, c.tree, c.file_uuid, c.entry_start, c.entry_stop, parent))

    def failed_files(self) -> list[dict]:
        rows = self.db.execute("SELECT dataset, path, tree, reason, replicas FROM files WHERE state='failed'")
        return [dict(zip(("dataset", "path", "tree", "reason"), r[:4]), replicas=tuple(json.loads(r[4] or "[]")))
                for r in rows.fetchall()]

    def files(self) -> list[dict]:
        rows = self.db.execute("SELECT dataset, path, tree, uuid, num_entries, state, reason FROM files").fetchall()
        return [dict(zip(("dataset", "path", "tree", "uuid", "num_entries", "state", "reason"), r)) for r in rows]

    # -- chunk states --------------------------------------------------------
    def chunks(self, states=ACTIVE_STATES, metadata: dict | None = None) -> list[Chunk]:
        q = ("SELECT c.dataset, c.path, c.tree, c.entry_start, c.entry_stop, c.uuid, f.replicas FROM chunks c"
             " LEFT JOIN files f ON f.dataset=c.dataset AND f.path=c.path WHERE c.state IN (%s)"
             " ORDER BY c.dataset, c.path, c.entry_start" % ",".join("?" * len(states)))
        md = metadata or {}
        return [Chunk(d, p, t, a, b, u, dict(md.get(d, {})), tuple(json.loads(r or "[]")))
                for d, p, t, a, b, u, r in self.db.execute(q, tuple(states))]

    def attempts(self, chunk_id: str) -> int:
        row = self.db.execute("SELECT attempts FROM chunks WHERE id=?", (chunk_id,)).fetchone()
        return row[0] if row else 0

    def mark_running(self, chunk: Chunk) -> None:
        self.db.execute("UPDATE chunks SET state='running', attempts=attempts+1, started=? WHERE id=? AND state!='done'",
                        (time.time(), chunk.id))

    def reset_chunks(self, ids: list[str]) -> None:
        """Chunks that were in flight when a run stopped: back to pending (never a done one)."""
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("UPDATE chunks SET state='pending' WHERE id=? AND state='running'", [(i,) for i in ids])

    def reset_running(self) -> int:
        return self.db.execute("UPDATE chunks SET state='pending' WHERE state='running'").rowcount

    def mark_done(self, chunk: Chunk, outcome, payload: str) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute("INSERT OR REPLACE INTO results VALUES (?, ?)", (chunk.id, payload))
            self.db.execute(
                "UPDATE chunks SET state='done', kind=NULL, error_type=NULL, message=NULL, traceback=NULL,"
                " events=NULL, bad_range=NULL, worker=?, started=?, finished=?, peak_rss=?, n_events=?, estimate=?,"
                " replica=? WHERE id=?",
                (outcome.worker, outcome.started, outcome.finished, outcome.peak_rss, outcome.n_events,
                 outcome.estimate, getattr(outcome, "replica", None) or None, chunk.id))

    def mark_failed(self, chunk: Chunk, kind: str, error_type: str, message: str, traceback: str = "",
                    outcome=None) -> None:
        o = outcome
        self.db.execute(
            "UPDATE chunks SET state='failed', kind=?, error_type=?, message=?, traceback=?, events=?, bad_range=?,"
            " worker=?, finished=?, peak_rss=?, estimate=? WHERE id=?",
            (kind, error_type, message, traceback, json.dumps(o.events if o else []),
             json.dumps(o.bad_range if o else None), o.worker if o else None, time.time(),
             o.peak_rss if o else None, o.estimate if o else None, chunk.id))

    def mark_split(self, chunk: Chunk, children: list[Chunk], reason: str) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute("UPDATE chunks SET state='split', message=? WHERE id=?", (reason, chunk.id))
            for c in children:
                self.db.execute(
                    "INSERT OR IGNORE INTO chunks (id, dataset, path, tree, uuid, entry_start, entry_stop, parent, state)"
                    " VALUES (?,?,?,?,?,?,?,?, 'pending')",
                    (c.id, c.dataset, c.path, c.tree, c.file_uuid, c.entry_start, c.entry_stop, chunk.id))
                self.db.execute("UPDATE chunks SET state='pending' WHERE id=? AND state!='done'", (c.id,))

    # -- reading back --------------------------------------------------------
    def counts(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT state, COUNT(*) FROM chunks GROUP BY state").fetchall())

    def failed(self) -> list[dict]:
        cols = ("id", "dataset", "path", "entry_start", "entry_stop", "attempts", "kind", "error_type",
                "message", "traceback", "events", "bad_range", "worker", "peak_rss", "estimate")
        rows = self.db.execute("SELECT %s FROM chunks WHERE state='failed' ORDER BY dataset, path, entry_start"
                               % ",".join(cols)).fetchall()
        out = []
        for r in rows:
            d = dict(zip(cols, r))
            d["events"] = json.loads(d["events"] or "[]")
            d["bad_range"] = json.loads(d["bad_range"] or "null")
            out.append(d)
        return out

    def done_payloads(self):
        """(dataset, payload) of every done chunk in a canonical order (stable sums)."""
        q = ("SELECT c.dataset, r.payload FROM chunks c JOIN results r ON r.chunk_id=c.id"
             " WHERE c.state='done' ORDER BY c.dataset, c.path, c.entry_start")
        yield from self.db.execute(q)

    def done_ids(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT id FROM chunks WHERE state='done'")}

    def processed(self) -> dict[str, dict]:
        """Per dataset: events and chunks planned vs processed, from the ledger."""
        out: dict[str, dict] = {}
        for ds, n_files, n_ev in self.db.execute(
                "SELECT dataset, COUNT(*), COALESCE(SUM(num_entries), 0) FROM files GROUP BY dataset"):
            out[ds] = {"files_planned": n_files, "events_planned": int(n_ev)}
        for ds, n_failed in self.db.execute("SELECT dataset, COUNT(*) FROM files WHERE state='failed' GROUP BY dataset"):
            out[ds]["files_unreadable"] = n_failed
        for ds, state, n, ev in self.db.execute(
                "SELECT dataset, state, COUNT(*), COALESCE(SUM(entry_stop-entry_start),0) FROM chunks"
                " WHERE state != 'split' GROUP BY dataset, state"):
            d = out.setdefault(ds, {"files_planned": 0, "events_planned": 0})
            d[f"chunks_{state}"] = n
            if state == "done":
                d["events_processed"] = int(ev)
        # files fully processed: every leaf chunk of the file done
        for ds, n in self.db.execute(
                "SELECT f.dataset, COUNT(*) FROM files f WHERE f.state='ok' AND NOT EXISTS ("
                " SELECT 1 FROM chunks c WHERE c.path=f.path AND c.dataset=f.dataset AND c.state NOT IN ('done','split'))"
                " GROUP BY f.dataset"):
            out[ds]["files_processed"] = n
        for d in out.values():
            d.setdefault("events_processed", 0)
            d.setdefault("files_processed", 0)
            d.setdefault("files_unreadable", 0)
            d["complete"] = (d["events_processed"] == d["events_planned"] and d["files_unreadable"] == 0)
        return out
