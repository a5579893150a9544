"""Chunk plans: every file of a fileset becomes chunks of at most ``chunk_size`` events.

Chunk edges follow the tree's cluster boundaries (``common_entry_offsets``)
where possible, so a chunk never decompresses a basket that another chunk also
needs; a cluster larger than ``chunk_size`` is cut evenly. Opening the files
for their metadata is itself a set of tasks: on a ``distributed.Client`` when
one is given (``client.map``), else in a thread pool. An unreadable file is
reported with its path and reason and does not stop the plan.
"""
from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

from ..chunk import Chunk
from ..errors import FileAccessError
from ..fileset import Fileset
from ..nanoaod import io
@dataclasses.dataclass
class FileFailure:
    dataset: str
    path: str
    tree: str
    reason: str


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
    return [Chunk(dataset, info["path"], info["tree"], a, b, info["uuid"], dict(metadata or {}))
            for a, b in zip(edges[:-1], edges[1:])]


def _worker_address():
    try:
        from distributed import get_worker
        return get_worker().address
    except (ImportError, ValueError):
        return None


def _inspect(path: str, tree: str):
    """``file_info`` on a worker (the file stays in its cache; ``"worker"``: its address), else closed."""
    addr = _worker_address()
    try:
        return dict(io.file_info(path, tree, cache=addr is not None), worker=addr)
    except FileAccessError as err:
        return {"path": path, "tree": tree, "error": err.reason}
    except Exception as err:  # anything uproot raises on a damaged file
        return {"path": path, "tree": tree, "error": f"{type(err).__name__}: {err}"}


def inspect_files(specs: list[tuple[str, str]], client=None, max_workers: int = 8) -> list[dict]:
    """``file_info`` of each (path, tree), or ``{"error": reason}``; order preserved."""
    if not specs:
        return []
    if client is not None:
        futures = client.map(_inspect, [p for p, _ in specs], [t for _, t in specs], pure=False)
        return client.gather(futures)
    with ThreadPoolExecutor(max_workers=min(max_workers, len(specs))) as pool:
        return list(pool.map(lambda s: _inspect(*s), specs))


def plan(fileset: Fileset, chunk_size: int, client=None, datasets=None) -> Plan:
    """Plan chunks for ``fileset`` (optionally only ``datasets``)."""
    specs, owners = [], []
    for ds in fileset:
        if datasets is not None and ds.name not in datasets:
            continue
        for f in ds.files:
            specs.append((f.path, f.tree))
            owners.append(ds)
    infos = inspect_files(specs, client)
    chunks, files, failures = [], [], []
    for ds, info in zip(owners, infos):
        if "error" in info:
            failures.append(FileFailure(ds.name, info["path"], info["tree"], info["error"]))
            continue
        info = dict(info, dataset=ds.name)
        files.append(info)
        if info["num_entries"] > 0:
            chunks.extend(file_chunks(info, ds.name, chunk_size, ds.metadata))
    return Plan(chunks, files, failures)
