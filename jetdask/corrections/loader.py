"""Correction files by path (local or ``root://``), read once per worker process and cached.

A :class:`FileRef` (path, sha256) is what travels with a task: a few hundred bytes whatever the
file's size. :func:`load` looks the file up in a module-level cache keyed by path *and* sha256;
the first call in a process reads it, checks its sha256 against the one the client recorded
(a file changed since the run started is an error, never a silent different result), parses it
with correctionlib and keeps the parsed set. ``load_count()`` says how many times this process
read a file (tests check "once per worker").
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import os
import threading

from ..errors import FileAccessError

_CACHE: dict = {}
_LOCK = threading.Lock()
_LOADS = {"count": 0}


@dataclasses.dataclass(frozen=True)
class FileRef:
    """A correction file as a task carries it: where it is and what it must hash to."""
    path: str
    sha256: str


@dataclasses.dataclass
class Loaded:
    """A parsed correction file: the evaluator set, its JSON document and its provenance."""
    ref: FileRef
    cset: object            # correctionlib.highlevel.CorrectionSet
    document: dict          # the JSON (for input edges and availability)

    def corrections(self) -> list[dict]:
        """``[{"name", "version"}]`` of every correction and compound correction."""
        out = [{"name": c["name"], "version": c.get("version")} for c in self.document.get("corrections", [])]
        out += [{"name": c["name"], "version": None, "compound": True}
                for c in self.document.get("compound_corrections", []) or []]
        return out


def read_bytes(path: str) -> bytes:
    """The (decompressed) bytes of a local file or a URL (``root://`` needs fsspec-xrootd)."""
    try:
        if "://" in path and not path.startswith("file://"):
            import fsspec
            with fsspec.open(path, "rb") as f:
                data = f.read()
        else:
            with open(path.removeprefix("file://"), "rb") as f:
                data = f.read()
    except (OSError, ValueError, ImportError) as err:
        raise FileAccessError(path, f"correction file not readable ({_one_line(err)})") from None
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def _one_line(err: BaseException) -> str:
    """The reason of a read error on one line: the server's own words (``[3011] Unable to locate
    ...``) without the client's prefixes and line breaks."""
    text = " ".join(str(err).split()) or type(err).__name__
    for prefix in ("XRootD error:", "[ERROR]", "Server responded with an error:"):
        text = text.replace(prefix, "").strip()
    return text


def sha256_of(path: str) -> str:
    """sha256 of the file's decompressed content (what the cache key and the provenance name)."""
    return hashlib.sha256(read_bytes(path)).hexdigest()


def ref_for(path: str) -> FileRef:
    """A :class:`FileRef` for ``path`` (absolute when local), hashed now (on the client)."""
    if "://" not in path:
        path = os.path.abspath(path)
    return FileRef(path, sha256_of(path))


def load(ref: FileRef) -> Loaded:
    """The parsed file of ``ref``, from this process's cache or read now (once)."""
    key = (ref.path, ref.sha256)
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            return hit
        data = read_bytes(ref.path)
        digest = hashlib.sha256(data).hexdigest()
        if digest != ref.sha256:
            raise FileAccessError(ref.path, f"correction file changed since the run started (sha256 {digest[:12]}, "
                                            f"expected {ref.sha256[:12]})")
        import correctionlib
        text = data.decode()
        try:
            cset = correctionlib.CorrectionSet.from_string(text)
        except Exception as err:  # noqa: BLE001 - correctionlib's parse errors are plain RuntimeErrors
            raise FileAccessError(ref.path, f"not a correctionlib JSON file: {err}") from None
        loaded = Loaded(ref, cset, json.loads(text))
        _CACHE[key] = loaded
        _LOADS["count"] += 1
        return loaded


def load_count() -> int:
    """How many correction files this process has read and parsed."""
    return _LOADS["count"]


def clear_cache() -> None:
    with _LOCK:
        _CACHE.clear()
