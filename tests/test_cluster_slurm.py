"""SLURM for real: workers through dask-jobqueue on the local SLURM that .ci/run starts.

Skipped when ``sbatch`` is missing or no controller answers, unless JETDASK_REQUIRE_SLURM=1
(CI), then it fails.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time

import dask
import pytest

from engine_analyses import DimuonJets
from engine_helpers import assert_same_output
from jetdask.engine.runner import Runner

pytestmark = [pytest.mark.slurm, pytest.mark.cluster]


def _slurm_missing() -> str:
    """Why SLURM cannot be used here ('' when it can): no sbatch, or a controller that does not answer."""
    if not shutil.which("sbatch"):
        return "sbatch not found"
    try:
        probe = subprocess.run(["sinfo", "-h"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"sinfo failed: {err}"
    if probe.returncode != 0:
        return f"the SLURM controller does not answer: {probe.stderr.strip()[:200]}"
    return ""


_why = _slurm_missing()
if _why:
    if os.environ.get("JETDASK_REQUIRE_SLURM") == "1":
        pytest.fail(f"SLURM required (JETDASK_REQUIRE_SLURM=1) but {_why}", pytrace=False)
    pytest.skip(f"no SLURM on this machine ({_why})", allow_module_level=True)


def squeue(name):
    out = subprocess.run(["squeue", "-h", "-n", name, "-o", "%i %T"], capture_output=True, text=True).stdout
    return [line.split() for line in out.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def slurm_client(tmp_path_factory):
    from jetdask.cluster import close_cluster, start_cluster
    tmp = tmp_path_factory.mktemp("slurm")
    name = f"jetdask-test-{os.getpid()}"
    with dask.config.set({"distributed.deploy.lost-worker-timeout": "3s"}):
        client = start_cluster("slurm", cores=1, processes=1, memory="3GiB", walltime="00:20:00",
                               job_name=name, minimum=2, maximum=2, log_directory=str(tmp / "logs"),
                               shared_temp_directory=str(tmp / "tls"),
                               queue=os.environ.get("LOCAL_SLURM_PARTITION"))
        client.wait_for_workers(2, timeout=120)
        yield client, name
        close_cluster(client)
    assert not squeue(name), "SLURM jobs left after close"


def test_workers_in_squeue_and_tls(slurm_client):
    client, name = slurm_client
    jobs = squeue(name)
    assert len(jobs) == 2 and all(state == "RUNNING" for _, state in jobs)
    assert client.scheduler.address.startswith("tls://")
    ids = set(client.run(lambda: os.environ.get("SLURM_JOB_ID")).values())
    assert ids == {j for j, _ in jobs}
    # the memory guard sees the memory SLURM gave each worker
    from jetdask.cluster import worker_memory_limits
    assert all(v == 3 * 2**30 for v in worker_memory_limits(client).values())
    # a plain-TCP client cannot talk to the TLS scheduler
    from distributed import Client
    plain = "tcp://" + client.scheduler.address[len("tls://"):]
    with pytest.raises((OSError, TimeoutError)):   # refused by TLS: comm closed, or no answer in time
        Client(plain, timeout=3)


def test_run_survives_scancel(slurm_client, small_sample, tmp_path):
    client, name = slurm_client
    clean = Runner(DimuonJets(), small_sample, str(tmp_path / "clean"), serial=True, chunk_size=500,
                   progress=False).run()
    runner = Runner(DimuonJets(sleep=0.3), small_sample, str(tmp_path / "run"), client, chunk_size=500,
                    progress=False)
    cancelled = []

    def cancel_one():
        db = os.path.join(str(tmp_path / "run"), "ledger.sqlite")
        import sqlite3
        for _ in range(200):
            time.sleep(0.2)
            try:
                n = sqlite3.connect(db).execute("SELECT COUNT(*) FROM chunks WHERE state='done'").fetchone()[0]
            except sqlite3.Error:   # the ledger is being created or written
                continue
            if n >= 3:
                victim = squeue(name)[0][0]
                subprocess.run(["scancel", victim], check=True)
                cancelled.append(victim)
                return

    t = threading.Thread(target=cancel_one)
    t.start()
    out = runner.run()
    t.join()
    assert cancelled, "no job was cancelled mid-run"
    assert out.complete, out.failed
    assert runner.stats["workers_died"] + runner.stats["workers_retired"] >= 1 or runner.stats["rerun"] >= 1
    assert_same_output(out, clean)
    # adaptive scaling replaced the cancelled job
    deadline = time.time() + 90
    while time.time() < deadline and len(client.nthreads()) < 2:
        time.sleep(0.5)
    assert len(client.nthreads()) == 2
    assert cancelled[0] not in {j for j, _ in squeue(name)}


def test_workers_retiring_by_lifetime_during_a_run(small_sample, tmp_path):
    """Workers with a short ``lifetime`` retire mid-run and the adaptive cluster replaces them:
    no failure, no suspect, output bin-exact."""
    from jetdask.cluster import close_cluster, start_cluster
    name = f"jetdask-life-{os.getpid()}"
    clean = Runner(DimuonJets(), small_sample, str(tmp_path / "clean"), serial=True, chunk_size=250,
                   progress=False).run()
    client = start_cluster("slurm", cores=1, processes=1, memory="2GiB", walltime="00:20:00", job_name=name,
                           minimum=2, maximum=2, lifetime="15s", lifetime_stagger="4s",
                           log_directory=str(tmp_path / "logs"), shared_temp_directory=str(tmp_path / "tls"),
                           queue=os.environ.get("LOCAL_SLURM_PARTITION"))
    try:
        client.wait_for_workers(2, timeout=120)
        runner = Runner(DimuonJets(sleep=1.0), small_sample, str(tmp_path / "run"), client, chunk_size=250,
                        progress=False)
        out = runner.run()
    finally:
        close_cluster(client)
    assert out.complete, out.failed
    assert runner.stats["workers_retired"] >= 1, dict(runner.stats)
    assert runner.stats["suspects"] == 0 and not out.failed, dict(runner.stats)
    assert_same_output(out, clean)
