"""The DY study with corrections, plus fault injection for engine tests (shipped by value)."""
from __future__ import annotations

import os
import signal
import sys

import cloudpickle

import dy_jets

cloudpickle.register_pickle_by_value(dy_jets)


class FaultyDYJets(dy_jets.DYJets):
    """DYJets that SIGKILLs its worker once (``kill_marker`` absent), or raises while the file
    ``fail_flag`` exists (for a resubmitted run)."""

    def __init__(self, kill_marker=None, fail_flag=None, **kwargs):
        super().__init__(**kwargs)
        self.kill_marker = kill_marker
        self.fail_flag = fail_flag

    def process(self, events, chunk):
        if self.kill_marker and chunk.entry_start > 0 and not os.path.exists(self.kill_marker):
            open(self.kill_marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        if self.fail_flag and os.path.exists(self.fail_flag) and chunk.entry_start > 0:
            raise ValueError("deliberate failure (flag file present)")
        return super().process(events, chunk)


cloudpickle.register_pickle_by_value(sys.modules[__name__])
