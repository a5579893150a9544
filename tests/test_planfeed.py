"""Files planned while the run goes (engine/planfeed.py), on a real LocalCluster.

A file whose open is slow (a late XRootD server, a busy disk) is imitated by making the
workers' inspection of that one file sleep (``engine_helpers.slow_inspections``, installed
in the worker processes with ``client.run``); everything else is the real engine.
"""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from engine_analyses import DimuonJets
from engine_helpers import (
    assert_same_output,
    ledger_rows,
    local_client,
    serial_output,
    slow_inspections,
    unslow_inspections,
)
from jetdask.engine.ledger import Ledger
from jetdask.engine.runner import Runner
from jetdask.fileset import load_fileset

pytestmark = pytest.mark.cluster
HERE = os.path.dirname(__file__)


@pytest.fixture(scope="module")
def clean(small_sample, tmp_path_factory):
    return serial_output(small_sample, tmp_path_factory.mktemp("clean"), 1000)


def _first_file(sample) -> str:
    return next(iter(load_fileset(sample))).files[0].path


def _returned(stamps) -> list[float]:
    with open(os.path.join(stamps, "returned")) as f:
        return [float(x) for x in f.read().split()]


def test_chunks_start_before_a_slow_file_is_planned(clean, small_sample, tmp_path):
    slow = _first_file(small_sample)
    stamps = tmp_path / "stamps"
    stamps.mkdir()
    with local_client() as client:
        client.run(slow_inspections, os.path.basename(slow), 8.0, str(stamps))
        try:
            with Runner(DimuonJets(), small_sample, str(tmp_path / "run"), client, chunk_size=1000,
                        progress=False) as r:
                out = r.run()
        finally:
            client.run(unslow_inspections)
    assert out.complete
    assert_same_output(out, clean)
    slow_back = min(_returned(stamps))
    finished = ledger_rows(str(tmp_path / "run"), "SELECT path, finished FROM chunks WHERE state='done'")
    early = [p for p, t in finished if t < slow_back]
    # whole files ran while the slow one was being opened (before: no chunk started until every file was planned)
    assert len(early) >= 3 and slow not in early, (early, slow_back)
    led = Ledger(str(tmp_path / "run" / "ledger.sqlite"), readonly=True)
    try:
        assert led.get_meta("fileset") is not None and "chunks" in led.get_meta("chunk_plan")
        assert {f["path"] for f in led.files()} == {f.path for d in load_fileset(small_sample) for f in d.files}
    finally:
        led.close()


DRIVER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {here!r})
    from engine_analyses import DimuonJets
    from engine_helpers import local_client, slow_inspections
    from jetdask.engine.runner import Runner
    if __name__ == "__main__":
        with local_client() as client:
            client.run(slow_inspections, {match!r}, 600.0, {stamps!r})
            Runner(DimuonJets(), {sample!r}, {run!r}, client, chunk_size=1000, progress=False).run()
""")


@pytest.mark.parametrize("attempt", range(2))
def test_killed_while_planning_resumes_with_the_files_left(clean, small_sample, tmp_path, attempt):
    """The client process is SIGKILLed while one file is still being opened: the files planned by
    then keep their done chunks; the next run plans only the file left and ends bin-exact."""
    slow = _first_file(small_sample)
    run, stamps = str(tmp_path / "run"), tmp_path / "stamps"
    stamps.mkdir()
    script = tmp_path / "driver.py"
    script.write_text(DRIVER.format(here=HERE, match=os.path.basename(slow), stamps=str(stamps),
                                    sample=small_sample, run=run))
    proc = subprocess.Popen([sys.executable, str(script)], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    db = os.path.join(run, "ledger.sqlite")
    deadline, done_files = time.time() + 120, 0
    try:
        while time.time() < deadline and proc.poll() is None:
            time.sleep(0.3)
            if not os.path.exists(db):
                continue
            try:
                con = sqlite3.connect(db)
                done_files = con.execute(
                    "SELECT COUNT(*) FROM files f WHERE f.state='ok' AND NOT EXISTS (SELECT 1 FROM chunks c"
                    " WHERE c.path=f.path AND c.state!='done')").fetchone()[0]
                con.close()
            except sqlite3.Error:
                continue
            if done_files >= 3:
                break
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        err = proc.communicate()[1]
    assert done_files == 3, err[-3000:]
    before = dict(ledger_rows(run, "SELECT id, finished FROM chunks WHERE state='done'"))
    assert slow not in {p for (p,) in ledger_rows(run, "SELECT path FROM files")}
    assert not ledger_rows(run, "SELECT value FROM meta WHERE key='fileset'")     # planning was not complete
    from jetdask.engine.status import run_status
    st = run_status(run)
    assert not st["complete"] and st["chunks"]["done"] == len(before)             # status reads it as is

    with local_client() as client, Runner(DimuonJets(), small_sample, run, client, progress=False) as r:
        out = r.run()
    assert out.complete
    assert_same_output(out, clean)
    after = dict(ledger_rows(run, "SELECT id, finished FROM chunks WHERE state='done'"))
    assert all(after[k] == v for k, v in before.items()), "a chunk done before the kill was recomputed"
    assert len(after) > len(before)


@pytest.mark.parametrize("attempt", range(3))
def test_workers_killed_while_opening_files_are_planned_again(clean, small_sample, tmp_path, attempt):
    """Every worker that holds an inspection is SIGKILLed while one of them opens a (slow) file: the
    nannies restart them, and the files are inspected again; before, an inspection pinned to a dead
    worker could wait in dask's no-worker state for good (found in this test, 1 try in 2)."""
    slow = _first_file(small_sample)
    stamps = tmp_path / "stamps"
    stamps.mkdir()
    with local_client() as client:
        client.run(slow_inspections, os.path.basename(slow), 60.0, str(stamps), once=True)
        try:
            r = Runner(DimuonJets(), small_sample, str(tmp_path / "run"), client, chunk_size=1000, progress=False)
            handle = r.submit()
            deadline = time.time() + 60
            while not (stamps / "slept").exists() and time.time() < deadline:
                time.sleep(0.1)
            time.sleep(0.3)
            busy = [w for w, keys in client.processing().items() if any("_inspect" in str(k) for k in keys)]
            assert busy, client.processing()
            pids = client.run(os.getpid, workers=busy)
            for pid in pids.values():
                os.kill(pid, signal.SIGKILL)
            out = handle.result(timeout=120)
            r.close()
        finally:
            client.run(unslow_inspections)
    assert out.complete, out.counts
    assert_same_output(out, clean)
    files = ledger_rows(str(tmp_path / "run"), "SELECT path, state FROM files")
    assert (slow, "ok") in files and len(files) == 4     # inspected again after its worker died


def test_a_run_stopped_while_a_file_is_inspected_reports_nothing_after_it(small_sample, tmp_path):
    """The run stops (its analysis returned an engine counter) while one file's inspection is still
    out: the inspection is cancelled, and its late report finds the feed closed without an error
    from the client's callback thread (it used to log a traceback after the one-line error)."""
    import logging

    from engine_analyses import EngineCounterClash
    from jetdask.errors import JetdaskError

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)
    handler = Keep(logging.ERROR)
    logging.getLogger("distributed").addHandler(handler)
    slow = _first_file(small_sample)
    stamps = tmp_path / "stamps"
    stamps.mkdir()
    try:
        with local_client() as client:
            client.run(slow_inspections, os.path.basename(slow), 6.0, str(stamps))
            try:
                with pytest.raises(JetdaskError, match="events"):
                    with Runner(EngineCounterClash(), small_sample, str(tmp_path / "run"), client,
                                chunk_size=1000, progress=False) as r:
                        r.run()
                time.sleep(2.0)   # the cancellation's callbacks arrive
            finally:
                client.run(unslow_inspections)
    finally:
        logging.getLogger("distributed").removeHandler(handler)
    assert not [r for r in records if "schedule new futures" in r.getMessage() + str(r.exc_info)], records
