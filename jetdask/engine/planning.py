"""Chunk plans: every file of a fileset becomes chunks of at most ``chunk_size`` events.

Chunk edges follow the tree's cluster boundaries (``common_entry_offsets``)
where possible, so a chunk never decompresses a basket that another chunk also
needs; a cluster larger than ``chunk_size`` is cut evenly. Opening the files
for their metadata is itself a set of tasks: on a ``distributed.Client`` when
one is given (``client.map``), else in a thread pool. An unreadable file is
reported with its path and reason and does not stop the plan.

Directories and globs on an XRootD server are listed here, once, in the
planning process (:func:`jetdask.nanoaod.remote.expand`); the files found are
planned like any other and carry ``"pattern"`` (what named them), so the ledger
records them and a resubmit reads the same files. A file with replicas is
inspected at the first URL that answers.
"""
from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

from ..chunk import Chunk
from ..errors import FileAccessError
from ..fileset import FileSpec, Fileset
from ..nanoaod import io, remote


@dataclasses.dataclass
class FileFailure:
    dataset: str
    path: str
    tree: str
    reason: str
    replicas: tuple = ()


@dataclasses.dataclass
class Plan:
    chunks: list[Chunk]
    files: list[dict]              # file_info dicts with "dataset" added
    failures: list[FileFailure]


def chunk_edges(num_entries: int, clusters: list[int], chunk_size: int) -> list[int]:
    """Edges ``[0, ..., num_entries]`` of chunks of at most ``chunk_size`` entries.

    Edges are taken from ``clusters`` (sorted boundaries, may be empty) whenever
    that keeps chunks within ``chunk_size``; long clusters are cut evenly.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    if num_entries <= 0:
        return [0]
    bounds = sorted({b for b in clusters if 0 < b < num_entries} | {0, num_entries})
    edges = [0]
    i = 0
    while edges[-1] < num_entries:
        start = edges[-1]
        # furthest cluster boundary within chunk_size of start
        best = None
        while i + 1 < len(bounds) and bounds[i + 1] - start <= chunk_size:
            i += 1
            best = bounds[i]
        if best is not None and best > start:
            edges.append(best)
            continue
        # the next cluster is longer than chunk_size: cut it evenly
        nxt = bounds[i + 1] if i + 1 < len(bounds) else num_entries
        span = nxt - start
        parts = -(-span // chunk_size)
        edges.extend(start + (span * k) // parts for k in range(1, parts + 1))
        i += 1
    return edges


def file_chunks(info: dict, dataset: str, chunk_size: int, metadata=None) -> list[Chunk]:
    edges = chunk_edges(info["num_entries"], info.get("clusters", []), chunk_size)
    replicas = tuple(info.get("replicas") or ())
    return [Chunk(dataset, info["path"], info["tree"], a, b, info["uuid"], dict(metadata or {}), replicas)
            for a, b in zip(edges[:-1], edges[1:])]


def _worker_address():
    try:
        from distributed import get_worker
        return get_worker().address
    except (ImportError, ValueError):
        return None


def _inspect(path: str, tree: str, replicas=()):
    """``file_info`` on a worker (the file stays in its cache; ``"worker"``: its address), else closed.

    The replicas are tried in order; the info names the primary ``path`` whichever answered.
    """
    addr = _worker_address()
    reasons = []
    for url in (path,) + tuple(replicas or ()):
        try:
            info = io.file_info(url, tree, cache=addr is not None)
            return dict(info, path=path, replicas=list(replicas or ()), worker=addr)
        except FileAccessError as err:
            reason = err.reason
        except Exception as err:  # anything uproot raises on a damaged file
            reason = f"{type(err).__name__}: {err}"
        reasons.append(f"{url}: {reason}" if replicas else reason)
    return {"path": path, "tree": tree, "replicas": list(replicas or ()), "error": "; ".join(reasons)}


def inspect_files(specs: list[tuple], client=None, max_workers: int = 8) -> list[dict]:
    """``file_info`` of each (path, tree[, replicas]), or ``{"error": reason}``; order preserved."""
    if not specs:
        return []
    specs = [(s[0], s[1], tuple(s[2]) if len(s) > 2 else ()) for s in specs]
    if client is not None:
        futures = client.map(_inspect, *map(list, zip(*specs)), pure=False)
        return client.gather(futures)
    with ThreadPoolExecutor(max_workers=min(max_workers, len(specs))) as pool:
        return list(pool.map(lambda s: _inspect(*s), specs))


def expand_patterns(files, dataset: str) -> tuple[list[tuple[FileSpec, str | None]], list[FileFailure]]:
    """Each file of a dataset as ``(FileSpec, pattern)``, remote directories and globs listed."""
    out, failures = [], []
    for f in files:
        if not remote.is_pattern(f.path):
            out.append((f, None))
            continue
        try:
            urls = remote.expand(f.path)
        except Exception as err:  # an unreachable server or a missing directory: reported, not fatal
            failures.append(FileFailure(dataset, f.path, f.tree, f"listing failed: {err}"))
            continue
        if not urls:
            failures.append(FileFailure(dataset, f.path, f.tree, "matches no file"))
        out.extend((FileSpec(u, f.tree), f.path) for u in urls)
    return out, failures


def plan(fileset: Fileset, chunk_size: int, client=None, datasets=None) -> Plan:
    """Plan chunks for ``fileset`` (optionally only ``datasets``)."""
    specs, owners, patterns, failures = [], [], [], []
    for ds in fileset:
        if datasets is not None and ds.name not in datasets:
            continue
        expanded, failed = expand_patterns(ds.files, ds.name)
        failures.extend(failed)
        for f, pattern in expanded:
            specs.append((f.path, f.tree, f.replicas))
            owners.append(ds)
            patterns.append(pattern)
    infos = inspect_files(specs, client)
    chunks, files = [], []
    for ds, info, pattern in zip(owners, infos, patterns):
        if "error" in info:
            failures.append(FileFailure(ds.name, info["path"], info["tree"], info["error"],
                                        tuple(info.get("replicas") or ())))
            continue
        info = dict(info, dataset=ds.name)
        if pattern:
            info["pattern"] = pattern
        files.append(info)
        if info["num_entries"] > 0:
            chunks.extend(file_chunks(info, ds.name, chunk_size, ds.metadata))
    return Plan(chunks, files, failures)
