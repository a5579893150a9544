"""Merged, persisted outputs of a run directory.

Layout of a run directory::

    RUN/ledger.sqlite        chunk states and results, folded per file (the source of truth)
    RUN/run.lock             held by the process that runs (see :mod:`jetdask.engine.lock`)
    RUN/arrays/NAME/DATASET/CHUNKID.parquet   arrays written by the workers
    RUN/output/hists.json    merged histograms per dataset (UHI JSON)
    RUN/output/metadata.json completeness per dataset, counters, run info

The merged output is always recomputed from the ledger's per-file partials in a
canonical order (chunks by entry within a file, files by path within a
dataset; see :mod:`jetdask.engine.store`), so a run that failed, was
resubmitted or resumed gives the same bits as one that never failed, at a cost
that grows with the number of files, not chunks.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time

import hist
import uhi.io.json as uhi_json

from ..atomicwrite import write_json
from ..result import Result
from .ledger import Ledger
from .protocol import ChunkState


@dataclasses.dataclass
class RunOutput:
    """A run's merged output (:func:`load_output`, :meth:`jetdask.Runner.run`).

    Per data set: ``hists`` (name -> :class:`hist.Hist`), ``counters``, ``array_files`` (name ->
    parquet paths), ``completeness`` (events and files processed out of planned); ``counts`` of
    chunks per state and the ``failed`` chunks with their reasons.
    """
    hists: dict[str, dict[str, hist.Hist]]          # dataset -> name -> Hist
    counters: dict[str, dict[str, float]]           # dataset -> name -> value
    array_files: dict[str, dict[str, list[str]]]    # dataset -> name -> parquet paths
    completeness: dict[str, dict]                   # dataset -> planned/processed accounting
    counts: dict[str, int]                          # chunk states
    failed: list[dict]
    run_dir: str = ""

    @property
    def complete(self) -> bool:
        """True when every planned chunk is done: none failed, pending or running."""
        return not self.failed and all(d.get("complete") for d in self.completeness.values()) \
            and self.counts.get(ChunkState.PENDING, 0) == 0 and self.counts.get(ChunkState.RUNNING, 0) == 0

    def __getitem__(self, dataset: str) -> dict[str, hist.Hist]:
        return self.hists[dataset]

    def arrays(self, name: str, dataset: str):
        """Concatenate the saved arrays ``name`` of ``dataset`` (in chunk order)."""
        import awkward as ak
        files = self.array_files.get(dataset, {}).get(name, [])
        return ak.concatenate([ak.from_parquet(f) for f in files]) if files else None


def merge_ledger(ledger: Ledger) -> tuple[dict[str, Result], dict]:
    return ledger.merged(), ledger.processed()


def finalize(run_dir: str, ledger: Ledger, extra_meta: dict | None = None) -> RunOutput:
    per_ds, completeness = merge_ledger(ledger)
    for ds, res in per_ds.items():
        c = completeness.setdefault(ds, {})
        if "sumw" in res.counters:
            c["sumw_processed"] = res.counters["sumw"]
    out = RunOutput({d: r.hists for d, r in per_ds.items()},
                    {d: r.counters for d, r in per_ds.items()},
                    {d: r.array_files for d, r in per_ds.items()},
                    completeness, ledger.counts(), failures(ledger), run_dir)
    write(run_dir, out, extra_meta)
    return out


def failures(ledger: Ledger) -> list[dict]:
    """The failed chunks of a run and its unreadable files, one record each."""
    return ledger.failed() + [
        {"dataset": f["dataset"], "path": f["path"], "kind": "file", "error_type": "FileAccessError",
         "message": f["reason"], "entry_start": None, "entry_stop": None, "events": [],
         "bad_range": None, "attempts": 0, "id": None}
        for f in ledger.failed_files()]


def write(run_dir: str, out: RunOutput, extra_meta: dict | None = None) -> None:
    d = os.path.join(run_dir, "output")
    os.makedirs(d, exist_ok=True)
    _atomic_json(os.path.join(d, "hists.json"), out.hists, default=uhi_json.default)
    meta = {"written": time.strftime("%Y-%m-%dT%H:%M:%S"), "complete": out.complete,
            "completeness": out.completeness, "counters": out.counters, "chunk_states": out.counts,
            "n_failed": len(out.failed), "array_files": out.array_files, **(extra_meta or {})}
    _atomic_json(os.path.join(d, "metadata.json"), meta)


def _atomic_json(path: str, obj, **kw) -> None:
    try:
        write_json(path, obj, **kw)   # a full disk: the old file stays whole, no partial one takes space
    except BaseException as err:
        from .diskspace import disk_full
        full = disk_full(err, os.path.dirname(os.path.abspath(path)), f"{os.path.basename(path)} could not be written")
        if full is not None:
            raise full from None
        raise


def load_output(run_dir: str) -> RunOutput:
    """Load ``RUN/output`` written by a run (no pickle: UHI JSON and JSON)."""
    d = os.path.join(run_dir, "output")
    with open(os.path.join(d, "hists.json")) as f:
        raw = json.load(f, object_hook=uhi_json.object_hook)
    with open(os.path.join(d, "metadata.json")) as f:
        meta = json.load(f)
    hists = {ds: {k: hist.Hist(v) for k, v in hs.items()} for ds, hs in raw.items()}
    return RunOutput(hists, meta["counters"], meta.get("array_files", {}), meta["completeness"],
                     meta["chunk_states"], _stored_failures(run_dir), run_dir)


def _stored_failures(run_dir: str) -> list[dict]:
    """The failures recorded in the run's ledger (none when the output was moved without it)."""
    path = os.path.join(run_dir, "ledger.sqlite")
    if not os.path.exists(path):
        return []
    ledger = Ledger(path, readonly=True)
    try:
        return failures(ledger)
    finally:
        ledger.close()
