"""A scheduler jetdask did not start, with TLS (a facility's ``tls://localhost:8786``).

The scheduler and its two workers are real ``dask scheduler``/``dask worker`` processes started
here with certificate files; jetdask connects with ``start_cluster("tls://...", profile=...)``,
the files named in the profile's ``tls`` section through environment variables. On such a
scheduler jetdask changes no scheduler-wide setting: a chunk task errs at its worker's first
death by a mark on that task alone.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import cloudpickle
import pytest

from conftest import io_loops
from engine_analyses import DimuonJets
from engine_helpers import assert_same_output, serial_output
from jetdask.cluster import close_cluster, start_cluster
from jetdask.engine.runner import Runner
from jetdask.errors import ConfigError

pytestmark = pytest.mark.cluster
BIN = os.path.dirname(sys.executable)
cloudpickle.register_pickle_by_value(sys.modules[__name__])   # the facility's processes cannot import it


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    from distributed.security import Security
    sec = Security.temporary()      # one self-signed certificate: the CA and every party's
    d = tmp_path_factory.mktemp("tls")
    paths = {}
    for name, text in (("ca.pem", sec.tls_ca_file), ("cert.pem", sec.tls_client_cert), ("key.pem", sec.tls_client_key)):
        (d / name).write_text(text)
        os.chmod(d / name, 0o600)
        paths[name] = str(d / name)
    return d, paths


@pytest.fixture(scope="module")
def scheduler(tls_files, tmp_path_factory):
    """``tls://`` address of a scheduler with two 1-thread workers (nannies), as a facility runs them."""
    d, p = tls_files
    tls = ["--tls-ca-file", p["ca.pem"], "--tls-cert", p["cert.pem"], "--tls-key", p["key.pem"]]
    sched_file = d / "scheduler.json"
    procs = [subprocess.Popen([f"{BIN}/dask", "scheduler", "--protocol", "tls", "--host", "127.0.0.1", "--port", "0",
                               "--dashboard-address", ":0", "--scheduler-file", str(sched_file), *tls],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)]
    try:
        t = time.monotonic()
        while not sched_file.exists() or not sched_file.read_text().strip():
            assert time.monotonic() - t < 60, "the TLS scheduler did not start"
            time.sleep(0.2)
        time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        work = tmp_path_factory.mktemp("tls-workers")
        for i in range(2):
            procs.append(subprocess.Popen([f"{BIN}/dask", "worker", address, "--nthreads", "1",
                                           "--memory-limit", "1GiB", "--name", f"facility-{i}",
                                           "--local-directory", str(work), *tls],
                                          cwd=str(work), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                          start_new_session=True))
        yield address
    finally:
        for proc in reversed(procs):
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture
def profile(tls_files, tmp_path, monkeypatch):
    """A facility profile naming the files through the variables the facility's image exports."""
    d, _ = tls_files
    monkeypatch.setenv("FACILITY_TLS_DIR", str(d))
    path = tmp_path / "facility.yaml"
    path.write_text("tls:\n  ca-file: $FACILITY_TLS_DIR/ca.pem\n  cert: $FACILITY_TLS_DIR/cert.pem\n"
                    "  key: $FACILITY_TLS_DIR/key.pem\n")
    return str(path)


@pytest.fixture(scope="module")
def clean(small_sample, tmp_path_factory):
    return serial_output(small_sample, tmp_path_factory.mktemp("clean"), 1000)


def allowed_failures(dask_scheduler=None) -> int:
    return dask_scheduler.allowed_failures


def executing(dask_worker=None) -> list:
    return sorted(str(ts.key) for ts in dask_worker.state.executing)


def jetdask_plugins(dask_scheduler=None) -> list:
    return sorted(n for n in dask_scheduler.plugins if "jetdask" in n)


def test_without_the_files_one_line(scheduler, tmp_path):
    loops = io_loops()
    with pytest.raises(ConfigError) as err:
        start_cluster(scheduler, timeout=5)
    assert err.value.key == "--cluster" and "profile's tls section" in str(err.value)
    # the client that could not connect is closed: its IO loop is not left to the garbage
    # collector (which once stalled the next test's client start for 10 s, in CI)
    assert io_loops() == loops
    bad = tmp_path / "bad.yaml"
    bad.write_text("tls:\n  ca-file: $NO_SUCH_FACILITY_VAR/ca.pem\n  cert: /x\n  key: /y\n")
    with pytest.raises(ConfigError) as err:
        start_cluster(scheduler, profile=str(bad))
    assert err.value.key == "tls.ca-file" and "environment variable not set" in str(err.value)


def test_first_death_errs_only_jetdask_tasks(scheduler, profile, tmp_path):
    """The run's scheduler plugin marks chunk tasks (keys ``jetdask-...``): one death errs them
    (``KilledWorker``), while another user's task on the same worker is rerun by dask as always,
    and the scheduler's ``allowed-failures`` stays as it was."""
    from distributed import KilledWorker

    from jetdask.engine.departures import PLUGIN_NAME, WorkerWatch
    client = start_cluster(scheduler, profile=profile)
    try:
        client.wait_for_workers(2, timeout=60)
        before = client.run_on_scheduler(allowed_failures)
        client.register_plugin(WorkerWatch(), name=PLUGIN_NAME)
        a, b = sorted(client.nthreads())

        go = tmp_path / "go"

        def wait_then_where(flag: str) -> str:   # local: sent by value (the facility cannot import it)
            from distributed import get_worker
            while not os.path.exists(flag):
                time.sleep(0.05)
            return get_worker().address
        # theirs runs on a (a is idle: nothing to steal it away), ours waits there behind it
        # (bound to a); a 1-thread worker's queued task that may go elsewhere would be stolen
        theirs = client.submit(wait_then_where, str(go), key="someone-else-probe", workers=[a],
                               allow_other_workers=True, pure=False)
        t = time.monotonic()
        while "someone-else-probe" not in client.run(executing, workers=[a])[a]:
            assert time.monotonic() - t < 30, "the other user's task never started"
            time.sleep(0.05)
        ours = client.submit(time.sleep, 60, key="jetdask-probe", workers=[a], allow_other_workers=False, pure=False)
        while set(client.processing(workers=[a]).get(a, ())) != {"jetdask-probe", "someone-else-probe"}:
            assert time.monotonic() - t < 30, client.processing()
            time.sleep(0.05)
        os.kill(client.run(os.getpid, workers=[a])[a], signal.SIGKILL)
        assert isinstance(ours.exception(timeout=60), KilledWorker)
        go.touch()
        assert theirs.result(timeout=60) != a               # rerun elsewhere, not erred
        assert client.run_on_scheduler(allowed_failures) == before
        client.unregister_scheduler_plugin(PLUGIN_NAME)
        client.wait_for_workers(2, timeout=60)             # the nanny restarted the worker
    finally:
        close_cluster(client)


def test_run_on_a_prestarted_tls_scheduler(scheduler, profile, small_sample, clean, tmp_path):
    """A run with a worker killed midway completes there, the scheduler's settings untouched during
    the run, nothing of the run left on it, and the scheduler still up after the client closed."""
    client = start_cluster(scheduler, profile=profile)
    seen = set()
    try:
        client.wait_for_workers(2, timeout=60)
        before = client.run_on_scheduler(allowed_failures)
        r = Runner(DimuonJets(kill_marker=str(tmp_path / "killed"), save_arrays=False), small_sample,
                   str(tmp_path / "run"), client, chunk_size=1000, progress=False)
        handle = r.submit()
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                seen.add(client.run_on_scheduler(allowed_failures))
                time.sleep(0.2)
        th = threading.Thread(target=watch, daemon=True)
        th.start()
        out = handle.result(timeout=300)
        r.close()
        stop.set()
        th.join()
        assert (tmp_path / "killed").exists()                # a worker really died
        assert seen == {before}
        assert client.run_on_scheduler(jetdask_plugins) == []
    finally:
        close_cluster(client)
    assert out.complete and r.stats["workers_died"] >= 1
    assert_same_output(out, clean)
    again = start_cluster(scheduler, profile=profile)       # close_cluster closed only the client
    close_cluster(again)
