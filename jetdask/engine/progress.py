"""Progress of a run: a tqdm bar (terminal or Jupyter widget) with events/s, ETA and failures."""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total_events: int, n_chunks: int, enabled: bool = True, dashboard: str | None = None):
        self.enabled = enabled and total_events > 0
        self.failed = 0
        self.done = 0
        self.t0 = time.perf_counter()
        self.bar = None
        if not self.enabled:
            return
        from tqdm.auto import tqdm
        if dashboard:
            print(f"jetdask: dask dashboard at {dashboard}", file=sys.stderr)
        self.bar = tqdm(total=total_events, unit="ev", unit_scale=True, desc=f"{n_chunks} chunks",
                        dynamic_ncols=True, smoothing=0.1)

    def update(self, n_events: int, done: bool) -> None:
        if done:
            self.done += 1
        else:
            self.failed += 1
        if self.bar is not None:
            self.bar.update(n_events)
            self.bar.set_postfix(done=self.done, failed=self.failed, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
