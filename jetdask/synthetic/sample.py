"""Top level: synthetic files and a coffea-style fileset of MC-like and data-like files.

Randomness: each batch of a file draws from its own ``numpy`` Generator seeded
by ``SeedSequence([seed, kind, first_event, batch])``; a file is therefore
fully determined by its arguments (same arguments -> identical arrays), and
the files of a sample differ because their ``first_event`` differ.
Memory stays bounded: events are generated in batches of about
:data:`BATCH_EVENTS` (a multiple of ``basket_events``) and written right away.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable

import numpy as np
import uproot

from . import batch as batchmod
from . import writer
from .conditions import KINDS, Conditions

BATCH_EVENTS = 10_000
MC_DATASET, DATA_DATASET = "DYJetsToLL_M-50", "DoubleMuon"
DY_XSEC_PB = 6077.22


def _batch_size(basket_events: int) -> int:
    return basket_events * max(1, round(BATCH_EVENTS / basket_events))


def generate_file(path, n_events: int, seed: int, kind: str = "mc", mismodel: float = 0.0,
                  first_event: int = 1, compression="zstd", basket_events: int = 2000,
                  on_batch: Callable[[int], None] | None = None, sf_mismodel: float | None = None) -> str:
    """Write one synthetic PFNano file with ``n_events`` events and return its path.

    ``kind`` is ``"mc"`` (DY+jets simulation with truth branches) or ``"data"``
    (no generator/truth branches; distorted by ``mismodel``, see
    :mod:`jetdask.synthetic.conditions`). Event numbers start at
    ``first_event``. ``compression``: ``"zstd"`` (ZSTD level 5), ``"zstd:3"``,
    ``"lzma"``, ``"none"`` or an uproot compression object. ``on_batch`` is
    called with the number of events after each written batch.

    ``sf_mismodel`` (default: ``mismodel``): strength of the injected b-tagging mismodelling
    (:mod:`jetdask.synthetic.truth`): candidate events are kept with the probability
    :func:`~jetdask.synthetic.truth.event_acceptance` until ``n_events`` are written; the
    ``Runs`` tree counts the candidates (``synthCandidates``, ``synthCandidateSumw``, attributed
    to the run of the next kept event) beside the usual sums of the written events.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    n_events, seed, first_event, basket_events = int(n_events), int(seed), int(first_event), int(basket_events)
    if n_events < 1 or seed < 0 or first_event < 1 or basket_events < 1:
        raise ValueError("need n_events >= 1, seed >= 0, first_event >= 1, basket_events >= 1")
    cond = Conditions.for_kind(kind, mismodel)
    strength = float(mismodel if sf_mismodel is None else sf_mismodel)
    if not strength >= 0.0:
        raise ValueError(f"sf_mismodel must be >= 0, got {sf_mismodel!r}")
    step = _batch_size(basket_events)
    runs: dict = {}
    accepted, written, i = 0, 0, 0
    pending = None          # kept events not written yet: writes go in whole baskets (the reserved capacity)
    with uproot.recreate(os.fspath(path), compression=writer.compression_from(compression)) as f:
        events = None
        while written < n_events:
            remaining = n_events - accepted
            if remaining > 0:
                n = min(step, remaining) if strength == 0 else min(step, remaining + remaining // 3 + 64)
                streams = [np.random.default_rng(np.random.SeedSequence([seed, KINDS.index(kind), first_event, i,
                                                                         *s])) for s in ((), (1,), (2,))]
                b = batchmod.simulate(streams[0], n, first_event + accepted, cond, aux=streams[1])
                b, used = _accept(b, streams[2], strength, cond.is_data, remaining)
                _renumber(b, first_event + accepted, cond.is_data)
                b.extras["candidates"] = used.astype(np.float64)
                accepted += b.n_events
                pending = batchmod.concat(pending, b)
                i += 1
            full = accepted == n_events
            n_write = pending.n_events if full else (pending.n_events // basket_events) * basket_events
            if n_write == 0:
                continue
            out, pending = batchmod.split(pending, n_write)
            if events is None:
                events = writer.EventsWriter(f, out, n_events, basket_events)
            events.write(out)
            _count_runs(runs, out, out.extras["candidates"])
            written += out.n_events
            if on_batch is not None:
                on_batch(out.n_events)
        keys = np.array(sorted(runs), dtype=np.int64)
        stats = np.array([runs[k] for k in keys], dtype=np.float64).reshape(-1, 5)
        writer.write_runs(f, keys, stats[:, 0], stats[:, 1], stats[:, 2], is_mc=not cond.is_data,
                          candidates=stats[:, 3], candidate_sumw=stats[:, 4])
    return os.fspath(path)


def _accept(b, rng, strength: float, is_data: bool, remaining: int):
    """Events of ``b`` kept by the injected mismodelling (at most ``remaining``) and, per kept
    event, the candidates it stands for (itself and the rejected ones before it)."""
    from . import truth
    if strength == 0:
        keep = np.ones(b.n_events, dtype=bool)
    else:
        counts, jf = b.collections["Jet"]
        ev = np.repeat(np.arange(b.n_events), counts)
        eligible = truth.eligible_jets(jf["pt"], jf["eta"], b.extras["jet_is_lepton"])
        flav = b.extras["jet_hadron_flavour"]   # simulated for data-like events too (then stripped)
        acc = truth.event_acceptance(ev, b.n_events, eligible, flav, jf["pt"], np.abs(jf["eta"]),
                                     jf["btagDeepFlavB"], strength, is_data)
        keep = rng.random(b.n_events) < acc
    idx = np.flatnonzero(keep)[:remaining]
    keep = np.zeros(b.n_events, dtype=bool)
    keep[idx] = True
    prev = np.concatenate([[-1], idx[:-1]])
    used = idx - prev
    w = b.scalars.get("genWeight")
    cs = np.concatenate([[0.0], np.cumsum(np.zeros(b.n_events) if w is None else w.astype(np.float64))])
    out = batchmod.select_events(b, keep)
    out.extras["candidate_sumw"] = cs[idx + 1] - cs[prev + 1]
    return out, used


def _renumber(b, first_event: int, is_data: bool) -> None:
    """Consecutive event ids from ``first_event`` for the kept events."""
    from . import event, schema
    ids = schema.cast("event", event.ids(b.n_events, first_event, is_data))
    b.scalars.update(ids)


def _count_runs(runs: dict, b, used: np.ndarray) -> None:
    run = b.scalars["run"]
    w = b.scalars.get("genWeight")
    w = np.zeros(len(run)) if w is None else w.astype(np.float64)
    cand_w = b.extras.get("candidate_sumw", np.zeros(len(run)))
    for r in np.unique(run):
        sel = run == r
        c = runs.setdefault(int(r), [0.0, 0.0, 0.0, 0.0, 0.0])
        c[0] += float(sel.sum())
        c[1] += float(w[sel].sum())
        c[2] += float((w[sel] ** 2).sum())
        c[3] += float(used[sel].sum())
        c[4] += float(cand_w[sel].sum())


def _file_job(job: dict, queue=None) -> str:
    """Run one :func:`generate_file` job (in this or a worker process)."""
    return generate_file(**job, on_batch=queue.put if queue is not None else None)


def _can_fork() -> bool:
    """fork needs no importable ``__main__`` (works from scripts and notebooks) but
    is unsafe in a multi-threaded parent (e.g. one running a dask client)."""
    import multiprocessing
    import threading

    return "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1


def _run_jobs(jobs: list, workers: int, bar) -> None:
    import multiprocessing

    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            _file_job(job, None if bar is None else _BarQueue(bar))
        return
    import queue as queue_mod
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = multiprocessing.get_context("fork")
    with ctx.Manager() as manager, ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        q = manager.Queue() if bar is not None else None
        pending = {pool.submit(_file_job, job, q) for job in jobs}
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for fut in done:
                fut.result()  # re-raise a worker's error here
            while q is not None:
                try:
                    bar.update(q.get_nowait())
                except queue_mod.Empty:
                    break


class _BarQueue:
    """Minimal ``put``-interface adaptor from a queue to a tqdm bar (serial case)."""

    def __init__(self, bar):
        self.put = bar.update


def _injected_lumi(paths: dict) -> float:
    """pb^-1 of the data: data candidates x MC acceptance (sum of kept / candidate genWeights) / xsec."""
    def runs_sum(files, branch):
        total = 0.0
        for p in files:
            with uproot.open(p) as f:
                total += float(np.sum(f["Runs"][branch].array(library="np")))
        return total
    acceptance = runs_sum(paths["mc"], "genEventSumw") / runs_sum(paths["mc"], "synthCandidateSumw")
    return runs_sum(paths["data"], "synthCandidates") * acceptance / DY_XSEC_PB


# what the figures state about the sample: synthetic events (never labelled as CMS data), sqrt(s) in TeV
SAMPLE_FACTS = {"synthetic": True, "energy": 13}


def generate_sample(out_dir, events: int = 100_000, files: int = 2, seed: int = 1, mismodel: float = 0.0,
                    compression="zstd", basket_events: int = 2000, progress: bool = False,
                    workers: int | None = None, sf_mismodel: float | None = None, corrections: bool = True) -> str:
    """Write ``files`` MC-like and ``files`` data-like files plus ``fileset.json``; return its path.

    Each file holds ``events // files`` events. MC files are ``mc_<i>.root``
    (dataset ``DYJetsToLL_M-50``, cross section 6077.22 pb), data files
    ``data_<i>.root`` (dataset ``DoubleMuon``) with ``lumi`` (pb^-1) set so that MC
    normalised to ``xsec * lumi`` and data agree (up to the mismodelling): the number of data
    candidate events times the MC acceptance of the injected b-tagging mismodelling
    (:mod:`jetdask.synthetic.truth`; both 1 when ``sf_mismodel`` is 0, the lumi is then the
    number of data events divided by the cross section). ``sf_mismodel`` defaults to ``mismodel``.
    With ``corrections`` the synthetic correction files and ``corrections.yaml``
    (:mod:`jetdask.synthetic.pog`) are written beside ``fileset.json``.
    Files are written by ``workers`` forked processes (default: one per CPU, at
    most one per file; serially when the caller has other threads running); the
    output does not depend on ``workers``.
    """
    events, files = int(events), int(files)
    if files < 1 or events < files:
        raise ValueError(f"need files >= 1 and events >= files, got events={events}, files={files}")
    out_dir = os.path.abspath(os.fspath(out_dir))
    os.makedirs(out_dir, exist_ok=True)
    per_file = events // files
    if workers is None:
        workers = min(os.cpu_count() or 1, 2 * files)
    if not _can_fork():  # checked before tqdm starts its monitor thread
        workers = 1
    jobs, paths = [], {"mc": [], "data": []}
    for kind in ("mc", "data"):
        for i in range(files):
            path = os.path.join(out_dir, f"{kind}_{i}.root")
            jobs.append(dict(path=path, n_events=per_file, seed=seed, kind=kind, mismodel=mismodel,
                             first_event=1 + i * per_file, compression=compression, basket_events=basket_events,
                             sf_mismodel=sf_mismodel))
            paths[kind].append(path)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=2 * per_file * files, unit="ev", desc="synthetic PFNano")
    try:
        _run_jobs(jobs, int(workers), bar)
    finally:
        if bar is not None:
            bar.close()
    # paths relative to the fileset file (load_fileset resolves them against its directory): the
    # sample directory can be moved or copied
    rel = {k: [os.path.basename(p) for p in v] for k, v in paths.items()}
    strength = float(mismodel if sf_mismodel is None else sf_mismodel)
    lumi = per_file * files / DY_XSEC_PB if strength == 0 else _injected_lumi(paths)
    truth = {"mismodel": float(mismodel), "sf_mismodel": strength}
    fileset = {
        MC_DATASET: {"files": {p: "Events" for p in rel["mc"]},
                     "metadata": {"is_data": False, "xsec": DY_XSEC_PB, "tree": "Events", **SAMPLE_FACTS, **truth}},
        DATA_DATASET: {"files": {p: "Events" for p in rel["data"]},
                       "metadata": {"is_data": True, "lumi": round(lumi, 6), "tree": "Events", **SAMPLE_FACTS,
                                    **truth}},
    }
    if corrections:
        from .pog import write_corrections
        write_corrections(out_dir, mismodel, strength)
    fileset_path = os.path.join(out_dir, "fileset.json")
    with open(fileset_path, "w") as fh:
        json.dump(fileset, fh, indent=2)
        fh.write("\n")
    return fileset_path
