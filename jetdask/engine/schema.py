"""The ledger's SQLite schema, its version (``PRAGMA user_version``) and the migrations to it.

A ledger records the layout it was written in as SQLite's ``user_version``: :data:`VERSION`
for this jetdask. Opening a ledger (:class:`jetdask.engine.ledger.Ledger`)

* creates the tables in an empty file and sets the version;
* migrates a ledger of an older version, in one transaction (a migration that fails leaves
  the file as it was), before anything else reads it;
* refuses a ledger of a newer version (written by a newer jetdask) with one line that says so.

A reader (``readonly=True``: ``jetdask status``, plots, ``load_output``) never changes the
file: an older ledger is copied into memory and migrated there.

Versions:

``0``
  every ledger written before the version was recorded. Their layouts differ in three ways,
  each of which the migration to 1 handles: the files' ``replicas`` and ``pattern`` and the
  chunks' ``replica`` columns may be missing (NULL in the migrated rows: no other URL, no
  pattern); chunk results may be a ``results`` table of UHI JSON text per chunk instead of (or
  beside) the binary ``chunk_results`` (:mod:`jetdask.engine.store`), which the migration
  encodes into ``chunk_results`` and drops; complete files may still have their chunk rows,
  which the migration folds into one partial per file.
``1``
  the tables of version 0's last layout and the store's (:data:`jetdask.engine.store.SCHEMA`).
``2``
  :data:`SCHEMA` below: each chunk's retry history (``chunks.history``: the counters the failure
  policy spends, :class:`jetdask.engine.policy.History`, JSON; NULL when none is spent), so a
  resumed run goes on with what the chunk already spent instead of a full budget.
"""
from __future__ import annotations

import sqlite3

from ..errors import ConfigError
from ..result import Result
from . import histcodec
from .store import SCHEMA as STORE_SCHEMA
from .store import ResultStore

VERSION = 2

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
  peak_rss INTEGER, n_events INTEGER, estimate INTEGER, replica TEXT, history TEXT);
CREATE INDEX IF NOT EXISTS chunks_state ON chunks(state);
""" + STORE_SCHEMA

# columns that version-0 ledgers may lack (all TEXT, NULL when absent)
_V0_COLUMNS = {"files": ("replicas", "pattern"), "chunks": ("replica",)}


def version(db: sqlite3.Connection) -> int:
    """The ledger's schema version (0: written before versions were recorded, or empty)."""
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def is_empty(db: sqlite3.Connection) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type='table' LIMIT 1").fetchone() is None


def check_not_newer(found: int, path: str) -> None:
    if found > VERSION:
        raise ConfigError(f"{path}: the ledger was written by a newer jetdask (schema version {found}; this "
                          f"jetdask reads up to {VERSION}); use that jetdask or a new run directory", "run_dir")


def ensure(db: sqlite3.Connection, path: str) -> None:
    """Make ``db`` (a writable connection in autocommit mode) a ledger of :data:`VERSION`: create
    it when empty, migrate it when older (one transaction), refuse it when newer."""
    if version(db) == VERSION:          # the usual case: no write, no lock taken
        return
    with db:
        db.execute("BEGIN IMMEDIATE")   # another process may be creating or migrating it too
        found = version(db)
        check_not_newer(found, path)
        if found == VERSION:
            return
        migrate(db, found, path)
        db.execute(f"PRAGMA user_version={VERSION}")


def migrate(db: sqlite3.Connection, found: int, path: str) -> None:
    """Bring a ledger of version ``found`` to :data:`VERSION`, inside the caller's transaction
    (an empty file: the tables created)."""
    if is_empty(db):
        _statements(db, SCHEMA)
        return
    for step in _STEPS[found:]:
        step(db, path)


def readable_copy(db: sqlite3.Connection, path: str) -> sqlite3.Connection:
    """``db`` itself when it is of :data:`VERSION`; an older ledger migrated in memory (the file is
    not changed: readers never write); a newer one refused."""
    found = version(db)
    check_not_newer(found, path)
    if found == VERSION:
        return db
    mem = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    db.backup(mem)
    db.close()
    with mem:
        mem.execute("BEGIN")
        migrate(mem, found, path)
        mem.execute(f"PRAGMA user_version={VERSION}")
    return mem


def _statements(db: sqlite3.Connection, script: str) -> None:
    """Run a script statement by statement (``executescript`` would commit the transaction)."""
    for stmt in script.split(";"):
        if stmt.strip():
            db.execute(stmt)


def _add_columns(db: sqlite3.Connection, wanted: dict[str, tuple[str, ...]]) -> None:
    """TEXT columns (NULL in the rows there are) that a table does not have yet."""
    for table, cols in wanted.items():
        have = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
        for col in cols:
            if col not in have:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {col} TEXT")


def _from_0(db: sqlite3.Connection, path: str) -> None:
    _add_columns(db, _V0_COLUMNS)
    _statements(db, STORE_SCHEMA)  # the store's tables and indexes (CREATE ... IF NOT EXISTS)
    if db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='results'").fetchone():
        for chunk_id, payload in db.execute("SELECT chunk_id, payload FROM results").fetchall():
            try:
                blob = histcodec.encode(Result.from_json(payload))
            except (ValueError, TypeError, KeyError) as err:
                raise ConfigError(f"{path}: the stored result of chunk {chunk_id} cannot be read "
                                  f"({type(err).__name__}: {err}); the ledger was left as it was", "run_dir") from None
            db.execute("INSERT OR IGNORE INTO chunk_results VALUES (?, ?)", (chunk_id, sqlite3.Binary(blob)))
        db.execute("DROP TABLE results")
    store = ResultStore(db)
    for dataset, file_path in store.files_with_chunk_rows():
        store.fold_file(dataset, file_path)


def _from_1(db: sqlite3.Connection, path: str) -> None:
    _add_columns(db, {"chunks": ("history",)})


#: The migration from each version to the next, in order (version ``i`` -> ``i + 1``).
_STEPS = (_from_0, _from_1)
assert len(_STEPS) == VERSION

__all__ = ["VERSION", "SCHEMA", "version", "ensure", "migrate", "readable_copy"]
