"""What the dispatcher knows of each worker: one :class:`WorkerRecord` per address."""
from __future__ import annotations

import dataclasses

from .protocol import Departure


@dataclasses.dataclass
class WorkerRecord:
    """One worker, as the dispatcher sees it."""
    nthreads: int = 1
    ready: bool = False                 # the run's plugin is set up there: chunks may be pinned to it
    load: int = 0                       # tasks in flight there
    held: int = 0                       # chunks in flight there
    suspect: str | None = None          # the key of the suspect it runs alone
    departed: Departure | None = None   # why it left
    lost_results: bool = False          # it left without handing on its results


class WorkerPool(dict):
    """Address -> :class:`WorkerRecord` of every worker the run heard of (ready, or gone)."""

    def record(self, addr: str) -> WorkerRecord:
        """The worker's record (a new one for a worker not heard of yet)."""
        w = self.get(addr)
        if w is None:
            w = self[addr] = WorkerRecord()
        return w

    def ready(self) -> list[str]:
        """The workers chunks may be pinned to now."""
        return [a for a, w in self.items() if w.ready]

    def is_ready(self, addr: str | None) -> bool:
        w = self.get(addr) if addr else None
        return w is not None and w.ready

    def set_ready(self, addr: str, nthreads: int) -> None:
        w = self.record(addr)
        w.ready, w.nthreads = True, int(nthreads or 1)

    def lost_results(self, addr: str) -> bool:
        """``addr`` left and took the results it held with it."""
        w = self.get(addr)
        return w is not None and not w.ready and w.lost_results

    def held(self) -> int:
        """Chunks in flight on every worker."""
        return sum(w.held for w in self.values())

    def take_back(self, addr: str, key: str, n_chunks: int) -> None:
        """A task of ``n_chunks`` chunks sent to ``addr`` is no longer in flight."""
        w = self.record(addr)
        w.load -= 1
        w.held -= n_chunks
        if w.suspect == key:
            w.suspect = None
