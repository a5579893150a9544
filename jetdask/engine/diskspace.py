"""A full disk, recognised wherever a run writes: the ledger (SQLite), the outputs, a worker's arrays.

Each writer raises its own error for the same cause: SQLite ``database or disk is full``
(``SQLITE_FULL``), ``OSError`` with ``ENOSPC`` or ``EDQUOT`` (Python's own writes), and
pyarrow's ``OSError`` whose text says ``No space left on device`` without an ``errno``.
:func:`disk_full` turns any of them into a :class:`~jetdask.errors.DiskFullError` that names the
directory, which stops the run (exit code 3) with one line: the ledger commits a chunk's result
and state in one transaction, so what could not be written is simply not done yet, and the next
run computes only that.
"""
from __future__ import annotations

import errno
import os
import sqlite3

from ..errors import DiskFullError

NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
NO_SPACE_TEXTS = ("no space left on device", "disk quota exceeded", "database or disk is full")
SQLITE_FULL = 13


def is_disk_full(err: BaseException) -> bool:
    """``err`` says that a write found no space (or no quota) left."""
    if isinstance(err, DiskFullError):
        return True
    if isinstance(err, OSError) and err.errno in NO_SPACE_ERRNOS:
        return True
    if isinstance(err, sqlite3.Error) and getattr(err, "sqlite_errorcode", None) == SQLITE_FULL:
        return True
    if isinstance(err, (OSError, sqlite3.Error)):
        text = str(err).lower()
        return any(t in text for t in NO_SPACE_TEXTS)
    return False


def disk_full(err: BaseException, directory: str, what: str = "") -> DiskFullError | None:
    """The :class:`DiskFullError` of ``err`` (``None`` when it is about something else).

    ``directory``: where the write went when ``err`` does not name a file (SQLite errors);
    ``what``: what was being written, for the message.
    """
    if isinstance(err, DiskFullError):
        return err
    if not is_disk_full(err):
        return None
    filename = getattr(err, "filename", None) if isinstance(err, OSError) else None
    where = os.path.dirname(os.path.abspath(filename)) if filename else directory
    reason = os.strerror(err.errno) if isinstance(err, OSError) and err.errno in NO_SPACE_ERRNOS else \
        " ".join(str(err).split())
    return DiskFullError(where, f"{what}: {reason}" if what else reason)
