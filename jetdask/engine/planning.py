"""Chunk plans: every file of a fileset becomes chunks of at most ``chunk_size`` events.

Chunk edges follow the tree's cluster boundaries (``common_entry_offsets``)
where possible, so a chunk never decompresses a basket that another chunk also
needs; a cluster larger than ``chunk_size`` is cut evenly. Opening the files
for their metadata is itself a set of tasks: on a ``distributed.Client`` when
one is given (``client.map``), else in a thread pool. An unreadable file is
reported with its path and reason and does not stop the plan.

Chunk sizes a healthy run keeps: given the analysis (its columns), each file's inspection
also estimates the memory of one event (uncompressed basket bytes of the branches read,
times ``jetdask.memory-overhead``, as the chunk's memory guard does) and the chunk budget of
the worker that inspected it (``jetdask.memory-fraction`` of its memory limit). The file's
chunks are then at most ``PLAN_MARGIN`` x budget / (memory per event) events, so the guard's
split is the exception (a worker with less memory than the planning one, an estimate that
moved). :meth:`Plan.describe` says what was chosen.

Directories and globs on an XRootD server are listed here, once, in the
planning process (:func:`jetdask.nanoaod.remote.expand`); the files found are
planned like any other and carry ``"pattern"`` (what named them), so the ledger
records them and a resubmit reads the same files. A file with replicas is
inspected at the first URL that answers.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from ..chunk import Chunk
from ..errors import FileAccessError
from ..fileset import Fileset, FileSpec
from ..nanoaod import io, remote

log = logging.getLogger(__name__)

PLAN_MARGIN = 0.9   # planned chunks use at most this fraction of the guard's budget


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
    chunk_size: int = 0            # the requested largest chunk

    def add(self, info: dict | None, failure: FileFailure | None, chunks: list[Chunk]) -> None:
        """One file's part (:func:`planned_file`)."""
        if info is not None:
            self.files.append(info)
        if failure is not None:
            self.failures.append(failure)
        self.chunks.extend(chunks)

    def describe(self) -> str:
        """One line: the chunk sizes chosen and why (memory per event and budget, the files' clusters)."""
        sized = [f for f in self.files if f.get("max_events")]
        n = len(self.chunks)
        largest = max((c.num_entries for c in self.chunks), default=0)
        aligned = cluster_alignment(self.files, self.chunk_size, largest)
        if not sized:
            if aligned:
                return f"{n} chunks of at most {largest} events (requested {self.chunk_size}: {aligned})"
            return f"{n} chunks of at most {self.chunk_size} events"
        per_event = max(f["bytes_per_event"] for f in sized)
        budget = min(f["budget"] for f in sized)
        limited = sum(1 for f in sized if f["max_events"] < self.chunk_size)
        why = (f"memory {per_event / 1e3:.1f} kB/event (estimated), chunk budget {budget / 2**20:.0f} MiB per worker")
        if limited:
            return (f"{n} chunks of at most {largest} events (requested {self.chunk_size}, lowered to fit: {why})")
        if aligned:
            return f"{n} chunks of at most {largest} events (requested {self.chunk_size}: {aligned}; {why})"
        return f"{n} chunks of at most {largest} events ({why})"


def cluster_alignment(files: list[dict], chunk_size: int, largest: int) -> str:
    """Why the largest chunk is smaller than ``chunk_size`` though a file is longer (``""``: it is
    not): chunk edges follow the files' clusters (:func:`chunk_edges`)."""
    if not largest or largest >= chunk_size or not any(f.get("num_entries", 0) > largest for f in files):
        return ""
    lengths: set[int] = set()
    for f in files:
        n = int(f.get("num_entries") or 0)
        bounds = sorted({b for b in f.get("clusters") or () if 0 < b < n} | {0, n})
        lengths.update(b - a for a, b in zip(bounds[:-1], bounds[1:]) if b > a)
    if not lengths:
        return ""
    if max(lengths) > chunk_size:
        return f"the files' clusters of up to {max(lengths)} events are longer, and are cut evenly"
    low, high = min(lengths), max(lengths)
    size = f"{high}" if low == high else f"{low} to {high}"
    return f"chunk edges follow the files' clusters of {size} events, so that no two chunks decompress the same basket"


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


def max_events_for(bytes_per_event: float, budget: int, margin: float = PLAN_MARGIN) -> int:
    """Largest chunk (events) whose estimated memory stays within ``margin`` x ``budget``."""
    if bytes_per_event <= 0:
        return 2**62
    return max(1, int(margin * budget / bytes_per_event))


def file_chunks(info: dict, dataset: str, chunk_size: int, metadata=None) -> list[Chunk]:
    if info.get("max_events"):
        chunk_size = max(1, min(chunk_size, int(info["max_events"])))
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


def _memory_limit_here(memory_limit):
    """The given limit, else the limit of the worker running this (as the chunk task reads it)."""
    from .task import _worker_memory_limit
    return memory_limit or _worker_memory_limit()


def _sizing(path: str, tree: str, columns, memory_limit) -> dict:
    """Estimated memory per event of ``columns`` in this file and the chunk budget here."""
    from ..nanoaod.columns import resolve_columns
    from .memory import chunk_budget, estimate_peak
    t = io.open_tree(path, tree)
    n = int(t.num_entries)
    if n <= 0:
        return {}
    branches = resolve_columns(t.keys(), list(columns), path=path)
    per_event = estimate_peak(io.estimate_bytes(t, branches, 0, n)) / n
    budget = chunk_budget(_memory_limit_here(memory_limit))
    return {"bytes_per_event": per_event, "budget": budget, "max_events": max_events_for(per_event, budget)}


def _inspect(path: str, tree: str, replicas=(), columns=None, memory_limit=None):
    """``file_info`` on a worker (the file stays in its cache; ``"worker"``: its address), else closed.

    The replicas are tried in order; the info names the primary ``path`` whichever answered.
    With ``columns``: also ``bytes_per_event``, ``budget`` and ``max_events`` (see the module docstring).
    """
    addr = _worker_address()
    if addr is not None:          # a worker that may not have the run's plugin yet
        from ..nanoaod import uproot_speedups
        from .memory import freeze_imports
        uproot_speedups.apply()
        freeze_imports()
    replicas = tuple(replicas or ())
    reasons = []
    for url in (path,) + replicas:
        try:
            t0 = time.perf_counter()
            info = dict(io.file_info(url, tree, cache=True if columns else addr is not None), worker=addr,
                        open_seconds=time.perf_counter() - t0)
            break
        except FileAccessError as err:
            reason = err.reason
        except Exception as err:  # noqa: BLE001 - anything uproot raises on a damaged file: the file's reason
            reason = f"{type(err).__name__}: {err}"
        reasons.append(f"{url}: {reason}" if replicas else reason)
    else:
        return {"path": path, "tree": tree, "replicas": list(replicas), "error": "; ".join(reasons)}
    info.update(path=path, replicas=list(replicas))
    if columns:
        try:
            info.update(_sizing(url, tree, columns, memory_limit))
            if addr is not None:          # its first chunk will run here: its baskets are read ahead
                from ..nanoaod import prefetch
                prefetch.first_entries(url, tree, columns, info)
        except Exception as err:  # noqa: BLE001 - a missing branch fails the chunks, with their context, not the plan
            log.debug("jetdask: sizing %s failed (its chunks will say why): %r", url, err)
        finally:
            if addr is None:
                io.forget(url)
    return info


def _holders(client) -> dict[str, str]:
    """File path -> a worker that has it open (from the workers' file caches; {} if unknown)."""
    try:
        have = client.run(io.cached_paths, on_error="ignore")
    except Exception as err:  # noqa: BLE001 - an older distributed, or a worker gone: planning just opens the files
        log.debug("jetdask: the workers' open files could not be read: %r", err)
        return {}
    return {p: w for w, paths in sorted(have.items()) if isinstance(paths, list) for p in paths}


def inspection_kwargs(columns=None, memory_limit=None) -> dict:
    return {"columns": tuple(columns), "memory_limit": memory_limit} if columns else {}


def submit_inspections(client, specs: list[tuple], **kw) -> list[tuple]:
    """``(future, worker)`` of each (path, tree, replicas) inspected on ``client``.

    A file a worker has open already is inspected there; the first files go one to each
    worker in turn, so the opens run in parallel; the rest go to whichever worker is free
    first (the scheduler's queue), so a file that opens slowly holds up one worker, not every
    file dealt to it. Each file stays open on the worker that inspected it, where its chunks
    are then sent first. ``worker``: where it was sent (``None``: anywhere).
    """
    workers = sorted(client.nthreads())
    holder = _holders(client)
    turn = iter(workers)
    out = []
    for s in specs:
        w = holder.get(s[0]) or next(turn, None)
        out.append((client.submit(_inspect, *s, pure=False, **kw,
                                  **({"workers": [w], "allow_other_workers": True} if w else {})), w))
    return out


def inspect_files(specs: list[tuple], client=None, max_workers: int = 8, columns=None,
                  memory_limit=None) -> list[dict]:
    """``file_info`` of each (path, tree[, replicas]), or ``{"error": reason}``; order preserved."""
    if not specs:
        return []
    specs = [(s[0], s[1], tuple(s[2]) if len(s) > 2 else ()) for s in specs]
    kw = inspection_kwargs(columns, memory_limit)
    if client is not None:
        return client.gather([f for f, _ in submit_inspections(client, specs, **kw)])
    with ThreadPoolExecutor(max_workers=min(max_workers, len(specs))) as pool:
        return list(pool.map(lambda s: _inspect(*s, **kw), specs))


def expand_patterns(files, dataset: str) -> tuple[list[tuple[FileSpec, str | None]], list[FileFailure]]:
    """Each file of a dataset as ``(FileSpec, pattern)``, remote directories and globs listed."""
    out: list[tuple[FileSpec, str | None]] = []
    failures: list[FileFailure] = []
    for f in files:
        if not remote.is_pattern(f.path):
            out.append((f, None))
            continue
        try:
            urls = remote.expand(f.path)
        except Exception as err:  # noqa: BLE001 - an unreachable server or a missing directory: reported, not fatal
            failures.append(FileFailure(dataset, f.path, f.tree, f"listing failed: {err}"))
            continue
        if not urls:
            failures.append(FileFailure(dataset, f.path, f.tree, "matches no file"))
        out.extend((FileSpec(u, f.tree), f.path) for u in urls)
    return out, failures


def analysis_columns(analysis) -> tuple:
    """What a chunk task of ``analysis`` reads (its columns and the event ids)."""
    from .task import ID_COLUMNS
    return tuple(getattr(analysis, "columns", ()) or ()) + tuple(ID_COLUMNS)


def plan_entries(fileset: Fileset, datasets=None, skip=frozenset()) -> tuple[list[tuple], list[FileFailure]]:
    """The files to plan, as ``(dataset, (path, tree, replicas), pattern)``, and listing failures.

    ``skip``: ``(dataset, path)`` pairs planned already (a run that stopped while planning).
    """
    entries: list[tuple] = []
    failures: list[FileFailure] = []
    for ds in fileset:
        if datasets is not None and ds.name not in datasets:
            continue
        expanded, failed = expand_patterns(ds.files, ds.name)
        failures.extend(x for x in failed if (ds.name, x.path) not in skip)
        entries.extend((ds, (f.path, f.tree, tuple(f.replicas)), pattern) for f, pattern in expanded
                       if (ds.name, f.path) not in skip)
    return entries, failures


def planned_file(ds, info: dict, pattern, chunk_size: int) -> tuple[dict | None, FileFailure | None, list[Chunk]]:
    """What one file's inspection gives the plan: its ledger row, or its failure; its chunks."""
    if "error" in info:
        return None, FileFailure(ds.name, info["path"], info["tree"], info["error"],
                                 tuple(info.get("replicas") or ())), []
    info = dict(info, dataset=ds.name)
    if pattern:
        info["pattern"] = pattern
    chunks = file_chunks(info, ds.name, chunk_size, ds.metadata) if info["num_entries"] > 0 else []
    return info, None, chunks


def split_duplicates(files: list[dict], chunks: list[Chunk], known: dict) -> tuple[list[dict], list[dict], list[Chunk]]:
    """The planned ``files`` and ``chunks`` without the files that are another of their data set's
    files under a second path (the same UUID: a symlink, a copy, two redirectors), and those
    duplicates (``"same_as"``: the first path). ``known``: ``(dataset, uuid, tree)`` -> path of
    the files planned so far, updated with the files kept. The chunks of a duplicate would have the
    same ids as the first file's (:attr:`Chunk.id` hashes the UUID): it is read once."""
    kept, dups = [], []
    for f in files:
        first = known.setdefault((f["dataset"], f["uuid"], f["tree"]), f["path"])
        if first == f["path"]:
            kept.append(f)
        else:
            dups.append(dict(f, same_as=first))
    gone = {(d["dataset"], d["path"]) for d in dups}
    return kept, dups, [c for c in chunks if (c.dataset, c.path) not in gone]


def plan(fileset: Fileset, chunk_size: int, client=None, datasets=None, analysis=None,
         memory_limit: int | None = None, skip=frozenset()) -> Plan:
    """Plan chunks for ``fileset`` (optionally only ``datasets``; not the files in ``skip``).

    With ``analysis``, chunks are sized to fit the memory budget (module docstring);
    ``memory_limit``: the workers' limit in bytes when not planned on a worker (serial runs).
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    entries, failures = plan_entries(fileset, datasets, skip)
    infos = inspect_files([spec for _, spec, _ in entries], client,
                          columns=analysis_columns(analysis) if analysis is not None else None,
                          memory_limit=memory_limit)
    p = Plan([], [], failures, chunk_size)
    for (ds, _, pattern), info in zip(entries, infos):
        p.add(*planned_file(ds, info, pattern, chunk_size))
    return p
