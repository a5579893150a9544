"""The run ledger: one SQLite file, the single source of truth of a run.

Only the client writes it. For each chunk it keeps the state (``pending``,
``running``, ``done``, ``failed``, or ``split`` when replaced by its halves),
attempts, error type and message, traceback, failing events, worker, times,
peak memory and events processed; a finished chunk's result is stored (by the
results store, :mod:`jetdask.engine.store`: binary, folded per file) in the
same transaction that marks it done, so a crash anywhere loses at most the
chunks in flight and never counts one twice. Files that could not be planned
are kept with their reason. A file's other URLs (``replicas``) and the
directory or glob it was listed from (``pattern``) are kept with it; a done
chunk records the URL that served it (``replica``). A file listed twice in a
data set under two paths (a symlink, a copy, two redirectors: the same UUID) is
read once: the second path is kept as a ``duplicate`` row naming the first, and
becomes one of the first's replicas.

Only the process holding the run lock (:mod:`jetdask.engine.lock`) writes it,
between :meth:`Ledger.begin_writing` and :meth:`Ledger.end_writing`; readers
open it with ``readonly=True`` (no file is created or changed). Journal: WAL
while a run writes to a local filesystem (no fsync per chunk), the rollback
journal (``DELETE``) on network and FUSE filesystems (NFS, EOS, CephFS,
Lustre, GPFS, ...), where WAL's shared-memory index is not safe. When the run
ends the ledger goes back to ``DELETE``, so a finished run directory is one
self-contained file that can be copied anywhere. Config
``jetdask.ledger-journal``: ``auto`` (default), ``wal`` or ``delete``.

The tables' layout has a version, migrated when an older ledger is opened
(:mod:`jetdask.engine.schema`).
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
from typing import Iterable

from .. import config
from ..chunk import Chunk
from ..errors import ConfigError
from ..result import Result
from . import schema
from .lock import wal_is_safe
from .protocol import OPEN_STATES, SETTLED_STATES
from .protocol import ChunkState as S
from .protocol import FileState as F
from .store import ResultStore


class Ledger:
    """The run's SQLite ledger; ``readonly=True`` for readers (status, plots) of a possibly busy run."""

    def __init__(self, path: str, readonly: bool = False):
        self.path = path
        self.readonly = readonly
        if readonly:
            if not os.path.exists(path):
                raise ConfigError(f"{path} does not exist", "run_dir")
            uri = "file:" + os.path.abspath(path).replace("?", "%3f").replace("#", "%23") + "?mode=ro"
            db = sqlite3.connect(uri, uri=True, timeout=60, isolation_level=None, check_same_thread=False)
            self.db = schema.readable_copy(db, path)   # an older ledger: migrated in memory, the file unchanged
        else:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self.db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA synchronous=NORMAL")
            try:
                schema.ensure(self.db, path)           # created, or migrated from an older version
            except BaseException:
                self.db.close()
                raise
        self.store = ResultStore(self.db)
        self.journal: str | None = None

    def begin_writing(self) -> str:
        """Called by the run-lock holder: choose the journal for this filesystem."""
        self.journal = journal_mode(os.path.dirname(os.path.abspath(self.path)))
        self.db.execute(f"PRAGMA journal_mode={self.journal}")
        return self.journal

    def end_writing(self) -> None:
        """Called by the run-lock holder before it lets go: leave one self-contained file (no -wal/-shm)."""
        if self.journal == "WAL":
            try:
                self.db.execute("PRAGMA journal_mode=DELETE")
            except sqlite3.OperationalError:  # a reader has it open: it stays WAL until the next run
                pass
        self.journal = None

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
        self.add_plan(files, failures, ())

    def add_chunks(self, chunks: Iterable[Chunk], parent: str | None = None) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self._insert_chunks(chunks, parent)

    def add_plan(self, files: Iterable[dict], failures: Iterable, chunks: Iterable[Chunk],
                 duplicates: Iterable[dict] = ()) -> None:
        """Files (planned or failed) and their chunks in one transaction: a file is never
        recorded without its chunks. ``duplicates``: files of the same UUID as a file of their
        data set (``"same_as"``: its path), recorded without chunks, their paths added to its replicas."""
        with self.db:
            self.db.execute("BEGIN")
            cols = "INSERT OR REPLACE INTO files (dataset, path, tree, uuid, num_entries, state, reason, " \
                   "replicas, pattern) VALUES (?,?,?,?,?,?,?,?,?)"
            for f in files:
                self.db.execute(cols, (f["dataset"], f["path"], f["tree"], f["uuid"], f["num_entries"], F.OK, None,
                                       json.dumps(f.get("replicas") or []), f.get("pattern")))
                if f.get("pattern"):   # listed now: the pattern's earlier listing failure is resolved
                    self.db.execute(f"DELETE FROM files WHERE dataset=? AND path=? AND state='{F.FAILED}'",
                                    (f["dataset"], f["pattern"]))
            for x in failures:
                self.db.execute(cols, (x.dataset, x.path, x.tree, None, None, F.FAILED, x.reason,
                                       json.dumps(list(getattr(x, "replicas", ()))), None))
            for d in duplicates:
                self._add_duplicate(d, cols)
            self._insert_chunks(chunks, None)

    def _add_duplicate(self, d: dict, cols: str) -> None:
        self.db.execute(cols, (d["dataset"], d["path"], d["tree"], d["uuid"], d["num_entries"], F.DUPLICATE,
                               f"the same file as {d['same_as']} (UUID {d['uuid']}): read once, as its replica",
                               json.dumps(d.get("replicas") or []), d.get("pattern")))
        row = self.db.execute("SELECT replicas FROM files WHERE dataset=? AND path=?",
                              (d["dataset"], d["same_as"])).fetchone()
        if row is not None:
            urls = json.loads(row[0] or "[]")
            urls += [u for u in [d["path"], *(d.get("replicas") or ())] if u not in urls and u != d["same_as"]]
            self.db.execute("UPDATE files SET replicas=? WHERE dataset=? AND path=?",
                            (json.dumps(urls), d["dataset"], d["same_as"]))

    def file_uuids(self) -> dict[tuple[str, str, str], str]:
        """``(dataset, uuid, tree)`` -> path of every readable file planned (what a duplicate is found by)."""
        return {(d, u, t): p for d, u, t, p in self.db.execute(
            f"SELECT dataset, uuid, tree, path FROM files WHERE state='{F.OK}' ORDER BY rowid DESC")}

    def duplicates(self) -> list[dict]:
        """Files read once as another file's replica: dataset, path, uuid, reason."""
        return [dict(zip(("dataset", "path", "uuid", "reason"), r)) for r in self.db.execute(
            f"SELECT dataset, path, uuid, reason FROM files WHERE state='{F.DUPLICATE}' ORDER BY dataset, path")]

    def unresolved_duplicates(self) -> list[dict]:
        """Readable files of one data set with the same UUID, both planned (directories made before
        duplicates were detected): ``{"dataset", "uuid", "paths"}``, the path its chunks name first."""
        out = []
        for ds, uuid, tree in self.db.execute(
                f"SELECT dataset, uuid, tree FROM files WHERE state='{F.OK}' AND uuid IS NOT NULL"
                " GROUP BY dataset, uuid, tree HAVING COUNT(*) > 1 ORDER BY dataset, uuid").fetchall():
            paths = [r[0] for r in self.db.execute("SELECT path FROM files WHERE dataset=? AND uuid=? AND tree=?"
                                                   f" AND state='{F.OK}' ORDER BY rowid", (ds, uuid, tree))]
            row = self.db.execute("SELECT path FROM chunks WHERE dataset=? AND uuid=? AND tree=? LIMIT 1",
                                  (ds, uuid, tree)).fetchone()
            if row and row[0] in paths:
                paths.remove(row[0])
                paths.insert(0, row[0])
            out.append({"dataset": ds, "uuid": uuid, "paths": paths})
        return out

    def resolve_duplicates(self) -> list[dict]:
        """Turn :meth:`unresolved_duplicates` into duplicate rows of the file their chunks name
        (the run-lock holder, when a run starts); the duplicates made."""
        made = []
        cols = "INSERT OR REPLACE INTO files (dataset, path, tree, uuid, num_entries, state, reason, " \
               "replicas, pattern) VALUES (?,?,?,?,?,?,?,?,?)"
        for group in self.unresolved_duplicates():
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                first = group["paths"][0]
                for path in group["paths"][1:]:
                    tree, n, pattern = self.db.execute("SELECT tree, num_entries, pattern FROM files WHERE dataset=?"
                                                       " AND path=?", (group["dataset"], path)).fetchone()
                    d = {"dataset": group["dataset"], "path": path, "tree": tree, "uuid": group["uuid"],
                         "num_entries": n, "pattern": pattern, "same_as": first}
                    self._add_duplicate(d, cols)
                    made.append(d)
        return made

    def _insert_chunks(self, chunks: Iterable[Chunk], parent: str | None) -> None:
        for c in chunks:
            self.db.execute(
                "INSERT OR IGNORE INTO chunks (id, dataset, path, tree, uuid, entry_start, entry_stop, parent, state)"
                f" VALUES (?,?,?,?,?,?,?,?, '{S.PENDING}')",
                (c.id, c.dataset, c.path, c.tree, c.file_uuid, c.entry_start, c.entry_stop, parent))

    def planned(self) -> set[tuple[str, str]]:
        """``(dataset, path)`` of every file planned so far, readable or not."""
        return set(self.db.execute("SELECT dataset, path FROM files").fetchall())

    def failed_files(self) -> list[dict]:
        rows = self.db.execute(f"SELECT dataset, path, tree, reason, replicas FROM files WHERE state='{F.FAILED}'")
        return [dict(zip(("dataset", "path", "tree", "reason"), r[:4]), replicas=tuple(json.loads(r[4] or "[]")))
                for r in rows.fetchall()]

    def files(self) -> list[dict]:
        rows = self.db.execute("SELECT dataset, path, tree, uuid, num_entries, state, reason FROM files").fetchall()
        return [dict(zip(("dataset", "path", "tree", "uuid", "num_entries", "state", "reason"), r)) for r in rows]

    # -- chunk states --------------------------------------------------------
    def chunks(self, states=OPEN_STATES, metadata: dict | None = None) -> list[Chunk]:
        q = ("SELECT c.dataset, c.path, c.tree, c.entry_start, c.entry_stop, c.uuid, f.replicas FROM chunks c"
             " LEFT JOIN files f ON f.dataset=c.dataset AND f.path=c.path WHERE c.state IN (%s)"
             " ORDER BY c.dataset, c.path, c.entry_start" % ",".join("?" * len(states)))
        md = metadata or {}
        return [Chunk(d, p, t, a, b, u, dict(md.get(d, {})), tuple(json.loads(r or "[]")))
                for d, p, t, a, b, u, r in self.db.execute(q, tuple(states))]

    def attempts(self, chunk_id: str) -> int:
        row = self.db.execute("SELECT attempts FROM chunks WHERE id=?", (chunk_id,)).fetchone()
        return row[0] if row else 0

    def histories(self) -> dict[str, dict[str, int]]:
        """The retry history of every chunk still to do that has spent something (chunk id -> the
        counters of :class:`jetdask.engine.policy.History`): what a resumed run goes on from."""
        q = (f"SELECT id, history FROM chunks WHERE history IS NOT NULL AND state IN "
             f"({','.join('?' * len(OPEN_STATES))})")
        return {cid: json.loads(h) for cid, h in self.db.execute(q, OPEN_STATES)}

    def set_history(self, chunk_id: str, counters: dict[str, int]) -> None:
        self.db.execute("UPDATE chunks SET history=? WHERE id=?",
                        (json.dumps(counters) if counters else None, chunk_id))

    def clear_history(self, state: S) -> int:
        """Forget the retry history of the chunks in ``state`` (a resubmit gives failed chunks a full budget)."""
        return self.db.execute("UPDATE chunks SET history=NULL WHERE state=? AND history IS NOT NULL",
                               (state,)).rowcount

    def mark_running(self, chunks: list[Chunk]) -> list[int]:
        """pending/failed/running -> running (a done or split chunk is left alone), in one
        transaction; the attempt number of each chunk."""
        now = time.time()
        out = []
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for chunk in chunks:
                row = self.db.execute(f"UPDATE chunks SET state='{S.RUNNING}', attempts=attempts+1, started=?"
                                      f" WHERE id=? AND state NOT IN ('{S.DONE}', '{S.SPLIT}') RETURNING attempts",
                                      (now, chunk.id)).fetchall()       # all rows: the statement completes
                out.append(row[0][0] if row else self.attempts(chunk.id))
        return out

    def reset_chunks(self, ids: list[str]) -> None:
        """Chunks that were in flight when a run stopped: back to pending (never a done one)."""
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany(f"UPDATE chunks SET state='{S.PENDING}' WHERE id=? AND state='{S.RUNNING}'",
                                [(i,) for i in ids])

    def reset_running(self) -> int:
        """running -> pending, for a run that resumes. Only the run-lock holder may call it."""
        return self.db.execute(f"UPDATE chunks SET state='{S.PENDING}' WHERE state='{S.RUNNING}'").rowcount

    def mark_done(self, chunk: Chunk, outcome, result: Result | bytes) -> bool:
        """Store ``result`` and mark the chunk done in one transaction; fold its file if complete.

        ``result``: the chunk's :class:`Result`, or a blob of it from
        :func:`jetdask.engine.histcodec.encode` (e.g. encoded on the worker).
        Returns False, storing nothing, when the chunk is already done or was
        split (a late duplicate must not count twice).
        """
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            row = self.db.execute("SELECT state FROM chunks WHERE id=?", (chunk.id,)).fetchone()
            if row is None or row[0] in SETTLED_STATES:
                return False
            self.store.put(chunk, result)
            self.db.execute(
                f"UPDATE chunks SET state='{S.DONE}', kind=NULL, error_type=NULL, message=NULL, traceback=NULL,"
                " events=NULL, bad_range=NULL, worker=?, started=?, finished=?, peak_rss=?, n_events=?, estimate=?,"
                " replica=? WHERE id=?",
                (outcome.worker, outcome.started, outcome.finished, outcome.peak_rss, outcome.n_events,
                 outcome.estimate, getattr(outcome, "replica", None) or None, chunk.id))
            self.store.fold_file(chunk.dataset, chunk.path)
        return True

    def merged(self) -> dict[str, Result]:
        """Per dataset, the sum of the done chunks' results (canonical order; see the store)."""
        return self.store.merged()

    def mark_failed(self, chunk: Chunk, kind: str, error_type: str, message: str, traceback: str = "",
                    outcome=None) -> None:
        o = outcome
        self.db.execute(
            f"UPDATE chunks SET state='{S.FAILED}', kind=?, error_type=?, message=?, traceback=?, events=?,"
            " bad_range=?, worker=?, finished=?, peak_rss=?, estimate=?"
            f" WHERE id=? AND state NOT IN ('{S.DONE}', '{S.SPLIT}')",
            (kind, error_type, message, traceback, json.dumps(o.events if o else []),
             json.dumps(o.bad_range if o else None), o.worker if o else None, time.time(),
             o.peak_rss if o else None, o.estimate if o else None, chunk.id))

    def mark_split(self, chunk: Chunk, children: list[Chunk], reason: str) -> bool:
        """Replace the chunk by its ``children`` (pending); False, changing nothing, if it is done."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            row = self.db.execute("SELECT state FROM chunks WHERE id=?", (chunk.id,)).fetchone()
            if row is not None and row[0] == S.DONE:
                return False
            self.db.execute(f"UPDATE chunks SET state='{S.SPLIT}', message=? WHERE id=?", (reason, chunk.id))
            for c in children:
                self.db.execute(
                    "INSERT OR IGNORE INTO chunks (id, dataset, path, tree, uuid, entry_start, entry_stop, parent,"
                    f" state) VALUES (?,?,?,?,?,?,?,?, '{S.PENDING}')",
                    (c.id, c.dataset, c.path, c.tree, c.file_uuid, c.entry_start, c.entry_stop, chunk.id))
                self.db.execute(f"UPDATE chunks SET state='{S.PENDING}' WHERE id=? AND state!='{S.DONE}'", (c.id,))
        return True

    # -- reading back --------------------------------------------------------
    def counts(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT state, COUNT(*) FROM chunks GROUP BY state").fetchall())

    def failed(self) -> list[dict]:
        cols = ("id", "dataset", "path", "entry_start", "entry_stop", "attempts", "kind", "error_type",
                "message", "traceback", "events", "bad_range", "worker", "peak_rss", "estimate")
        rows = self.db.execute(f"SELECT %s FROM chunks WHERE state='{S.FAILED}' ORDER BY dataset, path, entry_start"
                               % ",".join(cols)).fetchall()
        out = []
        for r in rows:
            d = dict(zip(cols, r))
            d["events"] = json.loads(d["events"] or "[]")
            d["bad_range"] = json.loads(d["bad_range"] or "null")
            out.append(d)
        return out

    def done_ids(self) -> set[str]:
        return {r[0] for r in self.db.execute(f"SELECT id FROM chunks WHERE state='{S.DONE}'")}

    def processed(self) -> dict[str, dict]:
        """Per dataset: events and chunks planned vs processed, from the ledger."""
        out: dict[str, dict] = {}
        for ds, n_files, n_ev in self.db.execute(
                f"SELECT dataset, COUNT(*), COALESCE(SUM(num_entries), 0) FROM files WHERE state != '{F.DUPLICATE}'"
                " GROUP BY dataset"):
            out[ds] = {"files_planned": n_files, "events_planned": int(n_ev)}
        for ds, state, n in self.db.execute("SELECT dataset, state, COUNT(*) FROM files"
                                            f" WHERE state IN ('{F.FAILED}', '{F.DUPLICATE}') GROUP BY dataset, state"):
            d = out.setdefault(ds, {"files_planned": 0, "events_planned": 0})
            d["files_unreadable" if state == F.FAILED else "files_duplicate"] = n
        for ds, state, n, ev in self.db.execute(
                "SELECT dataset, state, COUNT(*), COALESCE(SUM(entry_stop-entry_start),0) FROM chunks"
                f" WHERE state != '{S.SPLIT}' GROUP BY dataset, state"):
            d = out.setdefault(ds, {"files_planned": 0, "events_planned": 0})
            d[f"chunks_{state}"] = n
            if state == S.DONE:
                d["events_processed"] = int(ev)
        # files fully processed: every leaf chunk of the file done
        for ds, n in self.db.execute(
                f"SELECT f.dataset, COUNT(*) FROM files f WHERE f.state='{F.OK}' AND NOT EXISTS ("
                " SELECT 1 FROM chunks c WHERE c.path=f.path AND c.dataset=f.dataset"
                f" AND c.state NOT IN ('{S.DONE}','{S.SPLIT}'))"
                " GROUP BY f.dataset"):
            out[ds]["files_processed"] = n
        for d in out.values():
            d.setdefault("events_processed", 0)
            d.setdefault("files_processed", 0)
            d.setdefault("files_unreadable", 0)
            d.setdefault("files_duplicate", 0)
            d["complete"] = (d["events_processed"] == d["events_planned"] and d["files_unreadable"] == 0)
        return out


def journal_mode(directory: str) -> str:
    """``WAL`` on a local filesystem, ``DELETE`` elsewhere (or as configured)."""
    choice = str(config.get("ledger-journal") or "auto").lower()
    if choice not in ("auto", "wal", "delete"):
        raise ConfigError(f"must be auto, wal or delete, not {choice!r}", "jetdask.ledger-journal")
    if choice == "auto":
        return "WAL" if wal_is_safe(directory) else "DELETE"
    return choice.upper()
