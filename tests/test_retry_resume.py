"""A run that stops after some of a chunk's retries were spent, resumed: the resumed run goes on
with the retries that were left (the history is read back from the ledger), in the serial loop
and on a real LocalCluster worker; ``jetdask resubmit`` then gives the failed chunk its full
budget again."""
from __future__ import annotations

import errno
import os
import sys

import cloudpickle
import dask.config
import pytest

from engine_analyses import DimuonJets
from engine_helpers import local_client
from jetdask.engine.ledger import Ledger
from jetdask.engine.runner import Runner
from jetdask.errors import DiskFullError, TransientError
from jetdask.fileset import load_fileset

cloudpickle.register_pickle_by_value(sys.modules[__name__])

RETRIES = 3


class BusyServer(DimuonJets):
    """The first chunk of ``target`` (a file) fails with a transient error every time; each of its
    attempts adds a byte to ``counter``. While the file ``stop`` exists, its third attempt finds the
    disk full instead, which stops the run with the chunk left to do."""

    def __init__(self, target: str, counter: str, stop: str):
        super().__init__(save_arrays=False)
        self.target, self.counter, self.stop = target, counter, stop

    def process(self, events, chunk):
        if chunk.path == self.target and chunk.entry_start == 0:
            with open(self.counter, "a") as f:
                f.write("x")
            if os.path.getsize(self.counter) == 3 and os.path.exists(self.stop):
                raise OSError(errno.ENOSPC, "No space left on device")
            raise TransientError("the server is busy")
        return super().process(events, chunk)


def _attempts(path: str) -> int:
    return os.path.getsize(path) if os.path.exists(path) else 0


def _histories(run_dir: str) -> dict:
    led = Ledger(os.path.join(run_dir, "ledger.sqlite"))
    try:
        return led.histories()
    finally:
        led.close()


@pytest.mark.parametrize("where", ["serial", "cluster"])
def test_a_resumed_run_goes_on_with_the_retries_left(small_sample, tmp_path, where):
    target = sorted(f.path for ds in load_fileset(small_sample) for f in ds.files)[0]
    counter, stop = str(tmp_path / "attempts"), str(tmp_path / "stop")
    open(stop, "w").close()
    analysis = BusyServer(target, counter, stop)
    run_dir = str(tmp_path / "run")

    def run(fileset, resubmit=False):
        def go(client):
            with Runner(analysis, fileset, run_dir, client, serial=client is None, chunk_size=1000,
                        retries=RETRIES, progress=False) as r:
                return r.resubmit() if resubmit else r.run()
        if where == "serial":
            return go(None)
        with local_client(1) as client:
            return go(client)

    with dask.config.set({"jetdask.retry-backoff": 0.0}):
        with pytest.raises(DiskFullError):
            run(small_sample)                      # 2 transient errors (2 retries spent), then the full disk
        assert _attempts(counter) == 3
        (spent,) = _histories(run_dir).values()
        assert spent == {"transient_failures": 2}

        os.remove(stop)                            # space again: the run is resumed
        out = run(None)
        # one retry was left: the resumed run tries the chunk twice (with the budget reset it would be 4)
        assert _attempts(counter) == 3 + 2
        assert not out.complete and len(out.failed) == 1
        (failed,) = out.failed
        assert failed["kind"] == "transient" and f"still failing after {RETRIES} retries" in failed["message"]
        assert out.counts["done"] == sum(out.counts.values()) - 1

        again = run(None, resubmit=True)           # a resubmit gives the failed chunk its full budget
    assert _attempts(counter) == 5 + RETRIES + 1
    assert len(again.failed) == 1
