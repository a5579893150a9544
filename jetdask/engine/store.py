"""The results store: chunk results in the ledger, folded into one partial per file.

A done chunk's result is stored as a compact binary blob
(:mod:`jetdask.engine.histcodec`) in ``chunk_results``, in the transaction that
marks the chunk done. When the last leaf chunk of a file is done, the file's
chunk results are summed in entry order into one row of ``file_results`` and
the chunk rows are deleted (:meth:`ResultStore.fold_file`), in the same
transaction. A finished run's ledger therefore holds one result per file, and
:meth:`ResultStore.merged` (what ``finalize`` reads) costs O(files), not O(chunks).

Exactness. The sum of a dataset is, always: per file, its chunk results in
entry order (a file that is not complete yet is summed the same way at read
time, so folding never changes a bit); then the files in (dataset, path)
order. The result therefore does not depend on the order in which chunks
finished, on the number of workers, or on how often a run was interrupted,
resumed or resubmitted: those runs are bit-for-bit equal. Different chunk
sizes (or memory splits) change which events each chunk histogram sums before
the chunk results are added, so float contents (Double, Weight) agree to the
rounding of a float sum (~1e-15 relative) and integer contents (Int64, or
weights that are integers) exactly; tests assert both.

Ledgers of earlier layouts are migrated to this one when they are opened
(:mod:`jetdask.engine.schema`).
"""
from __future__ import annotations

import sqlite3

from ..chunk import Chunk
from ..result import Result
from . import histcodec
from .partial import Partial
from .protocol import OPEN_STATES, ChunkState

SCHEMA = """
CREATE TABLE IF NOT EXISTS chunk_results (chunk_id TEXT PRIMARY KEY, blob BLOB);
CREATE TABLE IF NOT EXISTS file_results (
  dataset TEXT, path TEXT, n_chunks INTEGER, blob BLOB, PRIMARY KEY (dataset, path));
CREATE INDEX IF NOT EXISTS chunks_file ON chunks(dataset, path, entry_start);
CREATE INDEX IF NOT EXISTS chunks_file_state ON chunks(dataset, path, state);
"""


class ResultStore:
    """Results of a ledger's chunks and files, on the ledger's SQLite connection.

    Writes happen inside the caller's transaction (:meth:`Ledger.mark_done`).
    """

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    # -- writing ---------------------------------------------------------------------------
    def put(self, chunk: Chunk, result: Result | bytes) -> int:
        """Store a chunk's result (a :class:`Result` or a blob from :func:`histcodec.encode`)."""
        blob = result if isinstance(result, (bytes, bytearray, memoryview)) else histcodec.encode(result)
        self.db.execute("INSERT OR REPLACE INTO chunk_results VALUES (?, ?)", (chunk.id, sqlite3.Binary(blob)))
        return len(blob)

    def file_complete(self, dataset: str, path: str) -> bool:
        """Every leaf chunk of the file is done (split chunks are replaced by their halves): none is open."""
        open_ = self.db.execute("SELECT 1 FROM chunks WHERE dataset=? AND path=? AND state IN (%s) LIMIT 1"
                                % ",".join("?" * len(OPEN_STATES)), (dataset, path, *OPEN_STATES)).fetchone()
        return open_ is None and self.db.execute("SELECT 1 FROM chunks WHERE dataset=? AND path=? LIMIT 1",
                                                 (dataset, path)).fetchone() is not None

    def fold_file(self, dataset: str, path: str) -> bool:
        """Sum a complete file's chunk results into its partial and delete the chunk rows."""
        if not self.file_complete(dataset, path):
            return False
        rows = self._chunk_rows(dataset, path)
        if not rows:
            return False
        partial = self.file_partial(dataset, path, rows)
        self.db.execute("INSERT OR REPLACE INTO file_results VALUES (?, ?, ?, ?)",
                        (dataset, path, partial.n_chunks, sqlite3.Binary(partial.to_blob())))
        self.db.executemany("DELETE FROM chunk_results WHERE chunk_id=?", [(cid,) for _, cid, _ in rows])
        return True

    # -- reading ---------------------------------------------------------------------------
    def file_partial(self, dataset: str, path: str, rows=None) -> Partial:
        """The file's folded partial (if any) plus its unfolded done chunks, in entry order."""
        total = Partial()
        row = self.db.execute("SELECT blob, n_chunks FROM file_results WHERE dataset=? AND path=?",
                              (dataset, path)).fetchone()
        if row:
            total.add(Partial.from_blob(row[0], row[1]))
        for _, _, blob in (self._chunk_rows(dataset, path) if rows is None else rows):
            total.add(Partial.from_blob(blob))
        return total

    def merged(self) -> dict[str, Result]:
        """Per dataset, the sum of its files' partials in path order (see the module docstring)."""
        out: dict[str, Partial] = {}
        for dataset, path in self.files_with_results():
            out.setdefault(dataset, Partial()).add(self.file_partial(dataset, path))
        return {ds: p.to_result() for ds, p in out.items()}

    def files_with_results(self) -> list[tuple[str, str]]:
        """(dataset, path) of every file with a partial or a stored chunk result, in canonical order."""
        return self._distinct([_FOLDED, _UNFOLDED])

    def files_with_chunk_rows(self) -> list[tuple[str, str]]:
        """(dataset, path) of the files that still have unfolded chunk results."""
        return self._distinct([_UNFOLDED])

    def _distinct(self, parts: list[str]) -> list[tuple[str, str]]:
        return self.db.execute("SELECT DISTINCT * FROM (" + " UNION ALL ".join(parts) + ") ORDER BY 1, 2").fetchall()

    def _chunk_rows(self, dataset: str, path: str) -> list[tuple]:
        """(entry_start, chunk id, blob) of the file's done chunks with a stored result, in entry order."""
        return self.db.execute(
            "SELECT c.entry_start, c.id, r.blob FROM chunks c JOIN chunk_results r ON r.chunk_id=c.id"
            f" WHERE c.dataset=? AND c.path=? AND c.state='{ChunkState.DONE}' ORDER BY c.entry_start, c.id",
            (dataset, path)).fetchall()

    def sizes(self) -> dict[str, dict[str, int]]:
        """Rows and bytes of stored results, by table (benchmarks, ``jetdask status``)."""
        out = {}
        for table in ("chunk_results", "file_results"):
            n, b = self.db.execute(f"SELECT COUNT(*), COALESCE(SUM(LENGTH(blob)), 0) FROM {table}").fetchone()
            out[table] = {"rows": n, "bytes": int(b)}
        return out


_FOLDED = "SELECT dataset, path FROM file_results"
_UNFOLDED = ("SELECT c.dataset, c.path FROM chunks c JOIN chunk_results r ON r.chunk_id=c.id"
             f" WHERE c.state='{ChunkState.DONE}'")
