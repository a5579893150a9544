"""Files written whole or not at all: the one way jetdask replaces a file it writes.

Every file a reader may open while it is being written (a run's ``output/``, checkpoints,
scalers, preprocessing metadata, correction files) is written to a temporary file beside its
final path (same directory, so same filesystem) and moved onto that path with ``os.replace``,
which is atomic: a reader sees the old file or the new one, never half of one. If the write
fails (a full disk, an error in the caller's block, Ctrl-C), the temporary file is removed, so
no partial file stays behind taking the space a rerun needs, and the old file stays as it was.
"""
from __future__ import annotations

import contextlib
import json
import os
import threading
from typing import Any, Iterator


def temporary_name(path: str | os.PathLike) -> str:
    """The temporary file for ``path``: beside it, unique to this process and thread, ending ``.tmp``."""
    return f"{os.fspath(path)}.{os.getpid()}-{threading.get_ident()}.tmp"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """A temporary path to write in the block; moved onto ``path`` when the block ends, removed
    if it raises."""
    tmp = temporary_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> str:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
    return os.fspath(path)


def write_text(path: str | os.PathLike, text: str) -> str:
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text)
    return os.fspath(path)


def write_json(path: str | os.PathLike, obj: Any, **kw) -> str:
    """``json.dumps(obj, **kw)`` written atomically (one string: the C encoder, where ``json.dump``
    to a file runs the Python one, 2x slower)."""
    return write_text(path, json.dumps(obj, **kw))
