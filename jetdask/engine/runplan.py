"""How a run puts its files into the ledger (the :class:`~jetdask.engine.runner.Runner`'s planning).

* a new directory, or one a run left while planning: the files not in the ledger yet are
  planned, here (serial runs) or on the cluster while the run goes
  (:class:`~jetdask.engine.planfeed.PlanFeed`);
* each file goes into the ledger with its chunks in one transaction; a file that is another
  file of its data set under a second path (the same UUID) is recorded as its duplicate, read
  once (:func:`~jetdask.engine.planning.split_duplicates`), and said on stderr;
* ``resubmit`` plans the unreadable files again, with their replicas.
"""
from __future__ import annotations

import time
from typing import Any

from ..chunk import Chunk
from ..errors import ConfigError
from .ledger import Ledger
from .pending import OPENED
from .planfeed import PlanFeed
from .planning import Plan, analysis_columns, plan, plan_entries, split_duplicates


class RunPlanning:
    """The planning part of :class:`~jetdask.engine.runner.Runner` (its attributes: ledger, fileset,
    analysis, chunk_size, client, serial, ...)."""

    # set by the Runner
    ledger: Ledger
    fileset: Any
    analysis: Any
    metadata: dict
    chunk_size: int
    serial: bool
    client: Any
    memory_limit: int | None
    progress: bool
    retries: int
    run_dir: str
    stats: Any
    _plan_homes: dict[str, str]
    _open_seconds: list[float]
    _allow_change: bool

    def _plan_start(self):
        """Plan the files not in the ledger yet (all of them in a new run directory; those a run
        that stopped while planning left out). On a cluster the files are planned while the
        run goes: the :class:`~jetdask.engine.planfeed.PlanFeed` returned feeds the dispatcher;
        ``None`` when nothing is left to plan or it was planned here (serial runs)."""
        complete = self.ledger.get_meta("fileset") is not None
        known = set() if complete else self.ledger.planned()
        if complete or known:   # an earlier run (or one stopped while planning): its chunks left running
            n = self.ledger.reset_running()
            if n:
                self.stats["resumed_running"] = n
            self._report_duplicates(self.ledger.resolve_duplicates())   # planned twice by an older jetdask
        self._uuids = self.ledger.file_uuids()
        if complete:
            return None
        if not known:
            for key, value in (("chunk_size", self.chunk_size), ("analysis", getattr(self.analysis, "_spec", None)),
                               ("analysis_kwargs", getattr(self.analysis, "_spec_kwargs", {})),
                               ("created", time.time()), ("fileset_planning", self.fileset.to_dict())):
                self.ledger.set_meta(key, value)
        prov = getattr(self.analysis, "provenance", None)   # e.g. correction files: sha256, names, versions
        if callable(prov):
            now, before = prov(), self.ledger.get_meta("provenance")
            if before is not None and before != now and not self._allow_change:
                raise ConfigError(f"{self.run_dir}: the analysis' inputs changed since the run started (e.g. a "
                                  "correction file's sha256); use a new run directory", "provenance")
            self.ledger.set_meta("provenance", now)
        if self.serial:
            p = plan(self.fileset, self.chunk_size, analysis=self.analysis, memory_limit=self.memory_limit, skip=known)
            p.chunks = self._record_file(p.files, p.failures, p.chunks)
            self._planned(p)
            return None
        entries, failures = plan_entries(self.fileset, skip=known)
        self.ledger.add_plan((), failures, ())
        if not entries:
            self._planned(Plan([], [], failures, self.chunk_size))
            return None
        return PlanFeed(self.client, entries, self.chunk_size, record=self._record_file, complete=self._planned,
                        columns=analysis_columns(self.analysis), memory_limit=self.memory_limit,
                        tries=self.retries)

    def _record_file(self, files, failures, chunks) -> list[Chunk]:
        """Files planned (one while the run goes): into the ledger, onto the progress bar; a file
        that is another's duplicate (same UUID in its data set) is recorded as such, without
        chunks. The chunks recorded."""
        files, dups, chunks = split_duplicates(list(files), list(chunks), self._uuids)
        self.ledger.add_plan(files, failures, chunks, dups)
        self._report_duplicates(dups)
        bar = getattr(self, "progress_bar", None)
        if bar is not None:
            bar.add(sum(c.num_entries for c in chunks), len(chunks))
        return chunks

    def _report_duplicates(self, dups) -> None:
        if dups:   # said even without a progress bar: the fileset names a file twice
            from .progress import say
            bar = getattr(self, "progress_bar", None)
            for d in dups:
                (bar.note if bar is not None and bar.bar is not None else say)(
                    f"{d['dataset']}: {d['path']} is the same file as {d['same_as']} (UUID {d['uuid']}): "
                    f"read once, the second path kept as a replica")

    def _planned(self, p: Plan) -> None:
        """Every file is planned: the plan's summary, and the mark that planning is complete."""
        self.ledger.set_meta("chunk_plan", p.describe())
        self.ledger.set_meta("fileset", self.fileset.to_dict())  # last: marks planning complete

    def _note_homes(self, p) -> None:
        """Planning left each file open on the worker that inspected it: send its chunks there first."""
        self._plan_homes.update({f["path"]: f["worker"] for f in p.files if f.get("worker")})
        self._open_seconds += [f["open_seconds"] for f in p.files if f.get("open_seconds", 0) > OPENED]   # not cached

    def _replan_failed_files(self) -> None:
        failed = self.ledger.failed_files()
        if not failed:
            return
        from ..fileset import Dataset, Fileset, FileSpec
        def spec(f):   # an unreadable file is planned again with its replicas
            return FileSpec(f["path"], f["tree"], tuple(f.get("replicas") or ()))
        sub = Fileset({ds: Dataset(ds, tuple(spec(f) for f in failed if f["dataset"] == ds),
                                   self.metadata.get(ds, {}))
                       for ds in {f["dataset"] for f in failed}})
        p = plan(sub, self.chunk_size, client=None if self.serial else self.client,
                 analysis=self.analysis, memory_limit=self.memory_limit)
        self._note_homes(p)
        self._record_file(p.files, p.failures, p.chunks)
