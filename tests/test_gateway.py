"""jetdask on a real dask-gateway server (tests/gateway_server.py): clusters, options, the engine.

The server is started once for this module (local backend, password authentication,
localhost); its workers run in a directory of their own with no ``sys.path`` entry of this
process, as at a facility. Worker counts stay small (the machine has 2 cores).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings

import pytest

import gateway_server
from conftest import REPO
from engine_analyses import DimuonJets
from engine_helpers import assert_same_output, serial_output
from jetdask.cluster import close_cluster, start_cluster, worker_memory_limits
from jetdask.engine.runner import Runner
from jetdask.errors import ConfigError

pytestmark = pytest.mark.cluster
GiB = 2**30


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = gateway_server.start(str(tmp_path_factory.mktemp("gateway")))
    yield srv
    srv.stop()


def conn(server, user="alice", **kw) -> dict:
    return dict(address=server.address, proxy_address=server.proxy_address, auth="basic",
                auth_kwargs={"username": user, "password": server.password}, **kw)


def running(server, user="alice") -> list[str]:
    from jetdask.cluster.gateway import close_gateway
    gw = server.gateway(user)
    try:
        return [c.name for c in gw.list_clusters()]
    finally:
        close_gateway(gw)


@pytest.fixture
def no_clusters_left(server):
    yield
    t = time.monotonic()
    while (left := running(server)) and time.monotonic() - t < 15:   # a stop the server is still doing
        time.sleep(0.5)
    gateway_server.stop_gateway_clusters(server)
    assert left == [], f"a gateway cluster was left running: {left}"


@pytest.fixture(scope="module")
def clean(small_sample, tmp_path_factory):
    return serial_output(small_sample, tmp_path_factory.mktemp("clean"), 1000)


class Logged(DimuonJets):
    """The engine tests' analysis, slowed down, writing which worker process ran each chunk."""

    def __init__(self, log_dir: str, sleep: float = 0.3):
        super().__init__(sleep=sleep, save_arrays=False)
        self.log_dir = log_dir

    def process(self, events, chunk):
        with open(os.path.join(self.log_dir, f"{os.getpid()}.log"), "a") as f:
            f.write(f"{chunk.id} {time.time()}\n")
        return super().process(events, chunk)


def started(logs, before: float = float("inf")) -> dict:
    """Worker process id -> the chunks it started (before ``before``), from the analysis' logs."""
    out = {}
    for path in logs.iterdir():
        rows = [line.split() for line in path.read_text().splitlines()]
        out[int(path.stem)] = {c for c, t in rows if float(t) < before}
    return out


def pids_of(client) -> dict:
    return client.run(os.getpid)


def attempts(run_dir) -> dict:
    import sqlite3
    db = sqlite3.connect(os.path.join(run_dir, "ledger.sqlite"))
    try:
        return dict(db.execute("SELECT id, attempts FROM chunks WHERE state='done'").fetchall())
    finally:
        db.close()


def done_count(run_dir) -> int:
    import sqlite3
    path = os.path.join(run_dir, "ledger.sqlite")
    if not os.path.exists(path):
        return 0
    db = sqlite3.connect(path, timeout=5)
    try:
        return db.execute("SELECT COUNT(*) FROM chunks WHERE state='done'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()


def wait_done(run_dir, n, timeout=120):
    t = time.monotonic()
    while done_count(run_dir) < n:
        assert time.monotonic() - t < timeout, f"fewer than {n} chunks done after {timeout} s"
        time.sleep(0.2)


# -- clusters ---------------------------------------------------------------------------------------
def test_cluster_options_memory_environ_and_close(server, no_clusters_left):
    """The worker memory limit is the one the gateway gives (the memory guard reads it there);
    jetdask.worker-environ reaches the workers through the 'environment' option; close shuts down."""
    import dask

    from jetdask import config
    from jetdask.engine.task import _worker_memory_limit
    with dask.config.set({"jetdask.worker-environ": {**config.get("worker-environ"), "JETDASK_GATEWAY_MARK": "here"}}):
        client = start_cluster("gateway", **conn(server), workers=1, cluster_options={"worker_memory": 0.75})
    try:
        client.wait_for_workers(1, timeout=120)
        assert set(worker_memory_limits(client).values()) == {int(0.75 * GiB)}
        assert client.submit(_worker_memory_limit, pure=False).result() == int(0.75 * GiB)   # in a task
        env = list(client.run(lambda: {k: os.environ.get(k) for k in ("JETDASK_GATEWAY_MARK", "MALLOC_TRIM_THRESHOLD_")}
                              ).values())[0]
        assert env == {"JETDASK_GATEWAY_MARK": "here", "MALLOC_TRIM_THRESHOLD_": str(config.get("worker-environ")[
            "MALLOC_TRIM_THRESHOLD_"])}
        assert len(running(server)) == 1
    finally:
        close_cluster(client)
    assert running(server) == []


def test_refusals_are_one_line(server, no_clusters_left):
    cases = [({"cluster_options": {"worker_mem": 1}}, "cluster_options.worker_mem",
              "offers no cluster option 'worker_mem'; it offers: environment, worker_cores, worker_memory"),
             ({"cluster_options": {"worker_memory": 64}}, "cluster_options.worker_memory", "worker_memory must be <="),
             ({"auth_kwargs": {"username": "alice", "password": "wrong"}}, "cluster.gateway",
              "refused the credentials"),
             ({"name": "no-such-cluster"}, "cluster.name", "no running cluster 'no-such-cluster'"),
             ({"address": "http://127.0.0.1:9"}, "cluster.gateway", "cannot reach the gateway http://127.0.0.1:9"),
             ({"worker_count": 2}, "cluster.worker_count", "unknown option")]
    for extra, key, text in cases:
        with pytest.raises(ConfigError) as err:
            start_cluster("gateway", **{**conn(server), **extra})
        assert err.value.key == key and text in str(err.value), (extra, str(err.value))
        assert "\n" not in str(err.value)


def test_no_environment_option_is_named(server, no_clusters_left):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = start_cluster("gateway", **conn(server, user="noenv"), workers=0)
    close_cluster(client)
    text = " ".join(str(w.message) for w in caught)
    assert "offers no 'environment' cluster option" in text and "MALLOC_TRIM_THRESHOLD_" in text


def test_keep_then_reattach_by_name(server, no_clusters_left):
    first = start_cluster("gateway", **conn(server), workers=1, keep=True)
    name = first.cluster.name
    first.wait_for_workers(1, timeout=120)
    worker = sorted(first.nthreads())
    close_cluster(first)                                 # kept: a kernel restart, say
    assert running(server) == [name]
    again = start_cluster("gateway", **conn(server), name=name, gateway_class="dask_gateway.Gateway")
    try:
        assert again.cluster.name == name
        again.wait_for_workers(1, timeout=60)
        assert sorted(again.nthreads()) == worker           # the same workers, not a new cluster
    finally:
        close_cluster(again)                             # reattached without keep: shut down
    assert running(server) == []


# -- the engine through the gateway ----------------------------------------------------------------
def gateway_env(server, user="alice") -> dict:
    """How a facility's JupyterHub points dask-gateway at its server: DASK_GATEWAY__* variables."""
    return {"DASK_GATEWAY__ADDRESS": server.address, "DASK_GATEWAY__PROXY_ADDRESS": server.proxy_address,
            "DASK_GATEWAY__AUTH__TYPE": "basic", "DASK_GATEWAY__AUTH__KWARGS__USERNAME": user,
            "DASK_GATEWAY__AUTH__KWARGS__PASSWORD": server.password}


def test_dy_study_through_gateway_cli_equals_local(server, no_clusters_left, small_sample, tmp_path):
    """``jetdask run --cluster gateway`` (gateway from DASK_GATEWAY__* variables, analysis file shipped
    by value to workers that cannot import it) equals a run on this machine, bin for bin."""
    spec = str(REPO / "analyses" / "dy_jets.py") + ":DYJets"
    local = Runner(__import__("jetdask").load_analysis(spec), small_sample, str(tmp_path / "local"), serial=True,
                   chunk_size=1500, progress=False).run()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_GATEWAY")} | gateway_env(server)
    env.pop("PYTHONPATH", None)
    run = str(tmp_path / "gw")
    p = subprocess.run([sys.executable, "-m", "jetdask.cli", "run", spec, "--fileset", small_sample, "--run-dir", run,
                        "--chunk-size", "1500", "--cluster", "gateway", "--workers", "2", "--no-progress"],
                       env=env, capture_output=True, text=True, timeout=300, cwd=str(tmp_path))
    assert p.returncode == 0, p.stderr[-3000:]
    assert running(server) == []                         # the run left no cluster behind
    from jetdask.engine.outputs import load_output
    assert_same_output(load_output(run), local)


def test_analysis_module_only_on_the_client(server, no_clusters_left, small_sample, clean, tmp_path):
    """An analysis imported from a directory only the client has (a notebook's home) runs there."""
    mod = tmp_path / "private_ana"
    mod.mkdir()
    (mod / "my_dimuon.py").write_text("from engine_analyses import DimuonJets\n\n\n"
                                      "class MyDimuon(DimuonJets):\n    pass\n")
    sys.path.insert(0, str(mod))
    try:
        from my_dimuon import MyDimuon
        client = start_cluster("gateway", **conn(server), workers=1)
        try:
            client.wait_for_workers(1, timeout=120)
            assert not any(client.run(lambda: __import__("importlib.util").util.find_spec("my_dimuon") is not None
                                      ).values())
            out = Runner(MyDimuon(), small_sample, str(tmp_path / "run"), client, chunk_size=1000,
                         progress=False).run()
        finally:
            close_cluster(client)
    finally:
        sys.path.remove(str(mod))
        sys.modules.pop("my_dimuon", None)
    assert out.complete
    assert_same_output(out, clean)


def fake_jetdask(dest) -> str:
    """A copy of this jetdask that says it is another version (a stale facility image)."""
    shutil.copytree(REPO / "jetdask", dest / "jetdask", ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "jetdask" / "_version.py").write_text('__version__ = "0.0.1"\n')
    return str(dest)


@pytest.mark.parametrize("late", [False, True], ids=["present", "joins-later"])
def test_other_jetdask_on_workers_is_refused(server, no_clusters_left, small_sample, tmp_path, late):
    from jetdask.engine.versions import VersionMismatchError
    other = fake_jetdask(tmp_path)
    client = start_cluster("gateway", **conn(server), workers=0 if late else 1,
                           cluster_options={"environment": {"PYTHONPATH": other}})
    try:
        if not late:
            client.wait_for_workers(1, timeout=120)
            assert set(client.run(lambda: __import__("jetdask").__version__).values()) == {"0.0.1"}
        else:
            threading.Timer(3.0, client.cluster.scale, (1,)).start()
        r = Runner(DimuonJets(save_arrays=False), small_sample, str(tmp_path / "run"), client, chunk_size=1000,
                   progress=False)
        with pytest.raises(VersionMismatchError) as err:
            r.run()
        r.close()
    finally:
        close_cluster(client)
    text = str(err.value)
    assert "runs jetdask 0.0.1, this client jetdask" in text and "before any chunk ran" in text and "\n" not in text
    assert done_count(str(tmp_path / "run")) == 0


# -- workers coming and going (slow: runs long enough to scale and kill in) ---------------------------
@pytest.mark.slow
def test_scale_3_to_1_to_3_loses_nothing(server, no_clusters_left, small_sample, clean, tmp_path):
    """Workers the gateway removes while chunks run are retirements: 0 failed chunks, none died."""
    logs = tmp_path / "logs"
    logs.mkdir()
    client = start_cluster("gateway", **conn(server), workers=3)
    run = str(tmp_path / "run")
    try:
        client.wait_for_workers(3, timeout=120)
        r = Runner(Logged(str(logs), sleep=0.4), small_sample, run, client, chunk_size=250, progress=False)
        handle = r.submit()
        wait_done(run, 6)
        client.cluster.scale(1)
        t = time.monotonic()
        while len(client.nthreads()) > 1:
            assert time.monotonic() - t < 60
            time.sleep(0.2)
        n = done_count(run)
        wait_done(run, n + 4)                       # it goes on with one worker
        client.cluster.scale(3)
        out = handle.result(timeout=300)
        r.close()
    finally:
        close_cluster(client)
    assert out.complete and out.counts.get("failed", 0) == 0
    assert r.stats["workers_retired"] >= 2 and r.stats["workers_died"] == 0, dict(r.stats)
    assert len(list(logs.iterdir())) >= 4            # 3 workers, then new ones
    assert_same_output(out, clean)


@pytest.mark.slow
def test_worker_killed_costs_only_its_chunks(server, no_clusters_left, small_sample, clean, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    client = start_cluster("gateway", **conn(server), workers=2)
    run = str(tmp_path / "run")
    try:
        client.wait_for_workers(2, timeout=120)
        r = Runner(Logged(str(logs)), small_sample, run, client, chunk_size=250, progress=False)
        handle = r.submit()
        wait_done(run, 8)
        victim = sorted(pids_of(client).values())[0]
        os.kill(victim, signal.SIGKILL)              # the worker process; its nanny starts another
        killed_at = time.time()
        out = handle.result(timeout=300)
        r.close()
    finally:
        close_cluster(client)
    assert out.complete and out.counts.get("failed", 0) == 0
    assert r.stats["workers_died"] >= 1
    rerun = {c for c, n in attempts(run).items() if n > 1}
    before = started(logs, killed_at)
    assert rerun & before[victim]                   # what it was running when it was killed runs again
    elsewhere = set().union(*(v for pid, v in before.items() if pid != victim))
    assert not rerun & elsewhere                    # nothing that other workers had started
    assert len(rerun) < len(attempts(run)) / 4, rerun   # its tasks in flight (2 per thread), not the run's
    assert_same_output(out, clean)


@pytest.mark.slow
def test_memory_hog_on_a_gateway_worker_is_split(server, no_clusters_left, small_sample, clean, tmp_path):
    """Chunks of 3000 events that need ~0.75 GB more on 0.75 GiB gateway workers: the nanny kills the
    worker at the limit the gateway set, the engine reads it as a memory kill and splits; halves fit."""
    client = start_cluster("gateway", **conn(server), workers=1, cluster_options={"worker_memory": 0.75})
    try:
        client.wait_for_workers(1, timeout=120)
        r = Runner(DimuonJets(hog_bytes=250_000, hog_path="mc_0", save_arrays=False), small_sample,
                   str(tmp_path / "run"), client, chunk_size=3000, split_floor=500, progress=False)
        out = r.run()
        r.close()
    finally:
        close_cluster(client)
    assert r.stats["split"] >= 1 and r.stats["workers_memory"] >= 1, dict(r.stats)
    assert out.complete, out.failed
    assert_same_output(out, clean)


@pytest.mark.slow
def test_resubmit_through_gateway_completes_a_local_run(server, no_clusters_left, small_sample, clean, tmp_path):
    """A run begun on a LocalCluster (its client killed midway) is completed by ``jetdask resubmit``
    through a new gateway cluster."""
    run = str(tmp_path / "run")
    spec = str(REPO / "tests" / "engine_analyses.py") + ":SlowDimuonJets"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_GATEWAY")}
    env["PYTHONPATH"] = str(REPO / "tests")
    proc = subprocess.Popen([sys.executable, "-m", "jetdask.cli", "run", spec, "--fileset", small_sample, "--run-dir",
                             run, "--chunk-size", "500", "--workers", "2", "--no-progress"], env=env,
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_done(run, 4, timeout=180)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    partial = done_count(run)
    assert 0 < partial < 24
    env = env | gateway_env(server)
    env.pop("PYTHONPATH")
    p = subprocess.run([sys.executable, "-m", "jetdask.cli", "resubmit", run, "--cluster", "gateway", "--workers", "2",
                        "--no-progress"], env=env, capture_output=True, text=True, timeout=400, cwd=str(tmp_path))
    assert p.returncode == 0, p.stderr[-3000:]
    assert running(server) == []
    from jetdask.engine.outputs import load_output
    out = load_output(run)
    assert out.counts == {"done": 24}
    assert_same_output(out, clean)


@pytest.mark.slow
def test_notebook_04_gateway(server, no_clusters_left, tmp_path_factory, monkeypatch):
    import nbformat
    from nbclient import NotebookClient
    for k, v in gateway_env(server).items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("JETDASK_NB_WORK", str(tmp_path_factory.getbasetemp() / "notebook-work"))
    monkeypatch.setenv("JETDASK_NB_EVENTS", os.environ.get("JETDASK_NB_EVENTS", "8000"))
    nb = nbformat.read(REPO / "notebooks" / "04_gateway.ipynb", as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO / "notebooks")}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "gateway run == local run, bin for bin" in text and "clusters left: []" in text
