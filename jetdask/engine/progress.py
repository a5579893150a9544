"""What a run is doing, on stderr: the step's name, what earlier runs already did, a bar.

* :meth:`Progress.for_run` is what the runner calls: it names the step (``runner.step``, e.g.
  ``"preprocessing pass 1/2"``, else ``"run <analysis>"``), says what was done earlier
  (``14/16 chunks done earlier, 2 to run``), prints the dask dashboard link once per process,
  and shows a tqdm bar (terminal or Jupyter widget) of events with ``done/total`` chunks.
* :meth:`Progress.split`: the memory guard replaced one chunk by ``n`` smaller ones; the
  chunk count grows by ``n - 1`` so the bar never ends at "16 of 4 chunks".
* :func:`step`: a named long step outside the engine (training, evaluation, plotting):
  ``jetdask: evaluation ...`` then ``jetdask: evaluation done in 43 s``.
"""
from __future__ import annotations

import contextlib
import sys
import time

from .protocol import ChunkState

_announced: set[str] = set()     # dashboard links already printed by this process


def say(message: str) -> None:
    """One status line on stderr (stdout stays for results)."""
    print(f"jetdask: {message}", file=sys.stderr, flush=True)


def announce_dashboard(link: str | None, prefix: str = "dask dashboard at ") -> None:
    """Print the dashboard link once per process (several runs share one cluster)."""
    if link and link not in _announced:
        _announced.add(link)
        say(f"{prefix}{link}")


@contextlib.contextmanager
def step(name: str, enabled: bool = True):
    """Name a long step and its duration on stderr."""
    t0 = time.perf_counter()
    if enabled:
        say(f"{name} ...")
    yield
    if enabled:
        say(f"{name} done in {time.perf_counter() - t0:.0f} s")


class Progress:
    def __init__(self, total_events: int, n_chunks: int, enabled: bool = True, dashboard: str | None = None,
                 step: str = "run", done_before: int = 0, planned: str | None = None, planning: int = 0):
        self.step = step
        self.n_chunks = int(n_chunks)         # chunks of this call (grows when the memory guard splits)
        self.done_before = int(done_before)
        self.planning = int(planning)         # files still being planned: their chunks are added as they come
        self.failed = 0
        self.done = 0
        self.splits = 0
        self.t0 = time.perf_counter()
        self.bar = None
        self.enabled = enabled
        if not enabled:
            return
        announce_dashboard(dashboard)
        say(f"{self.step}: {planned}" if planned else self.plan_text())
        if (total_events <= 0 or n_chunks <= 0) and not planning:
            return
        from tqdm.auto import tqdm
        self.bar = tqdm(total=total_events, unit="ev", unit_scale=True, desc=self._desc(), dynamic_ncols=True,
                        smoothing=0.1, file=sys.stderr)

    @classmethod
    def for_run(cls, runner, chunks, planning: int = 0) -> "Progress":
        """The progress of ``runner`` about to run ``chunks`` (the rest of its plan is done or failed),
        and the chunks of ``planning`` files still being planned."""
        done_before = int(runner.ledger.counts().get(ChunkState.DONE, 0))
        label = getattr(runner.analysis, "label", None) or "analysis"
        name = getattr(runner, "step", None) or f"run {label}"
        dashboard = None if runner.serial else getattr(runner.client, "dashboard_link", None)
        planned = runner.ledger.get_meta("chunk_plan") if not done_before else None
        return cls(sum(c.num_entries for c in chunks), len(chunks), enabled=runner.progress, dashboard=dashboard,
                   step=name, done_before=done_before, planned=None if planning else planned, planning=planning)

    def plan_text(self) -> str:
        if self.planning:
            head = f"{self.done_before} chunks done earlier, " if self.done_before else ""
            more = f"{self.n_chunks} chunks and " if self.n_chunks else ""
            return (f"{self.step}: {head}{more}{self.planning} files to plan; each file's chunks start once it is "
                    "planned")
        if self.done_before:
            total = self.done_before + self.n_chunks
            return f"{self.step}: {self.done_before}/{total} chunks done earlier, {self.n_chunks} to run"
        return f"{self.step}: {self.n_chunks} chunks to run"

    def note(self, message: str) -> None:
        """A status line while the bar is shown (printed above it, not into it)."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(f"jetdask: {message}", file=sys.stderr)
        else:
            say(message)

    def _desc(self) -> str:
        return f"{self.step}: {self.done}/{self.n_chunks} chunks"

    def split(self, n_new_chunks: int) -> None:
        """One chunk was replaced by ``n_new_chunks`` smaller ones (memory guard, dead worker)."""
        self.n_chunks += int(n_new_chunks) - 1
        self.splits += 1
        if self.bar is not None:
            self.bar.set_description(self._desc(), refresh=False)

    def add(self, n_events: int, n_chunks: int) -> None:
        """A file was planned while the run goes: its chunks join the bar."""
        self.n_chunks += int(n_chunks)
        self.planning = max(0, self.planning - 1)
        if self.bar is not None:
            self.bar.total += int(n_events)
            self.bar.set_description(self._desc(), refresh=False)

    def update(self, n_events: int, done: bool) -> None:
        if done:
            self.done += 1
        else:
            self.failed += 1
        if self.bar is not None:
            self.bar.update(n_events)
            self.bar.set_description(self._desc(), refresh=False)
            post = {"failed": self.failed} if self.failed else {}
            if self.splits:
                post["split"] = self.splits
            self.bar.set_postfix(post, refresh=False)

    def close(self, finished: bool = True) -> None:
        """The bar ends; a ``finished`` run says what it did (a stopped one leaves that to its error)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if finished and self.enabled and (self.done or self.failed):
            extra = f", {self.failed} failed" if self.failed else ""
            extra += f", {self.splits} split by the memory guard" if self.splits else ""
            say(f"{self.step}: {self.done} chunks done in {time.perf_counter() - self.t0:.0f} s{extra}; merging")
