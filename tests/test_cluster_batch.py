"""Batch clusters without a pool: generated SLURM job scripts and HTCondor submit descriptions.

No HTCondor pool can be installed here: these tests check what jetdask hands to HTCondor
(the submit description, the worker command, TLS material), not a run on a pool.
"""
from __future__ import annotations

import os

import pytest

from jetdask.cluster.batch import build_cluster, cluster_options
from jetdask.errors import ConfigError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def tls_dir(tmp_path):
    return str(tmp_path / "tls")


def test_htcondor_submit_description(tls_dir, tmp_path):
    tarball = str(tmp_path / "env.tar.gz")
    c = build_cluster("htcondor", profile=os.path.join(REPO, "cluster", "htcondor.yaml"), cores=2, memory="6GiB",
                      disk="20GiB", lifetime="50m", lifetime_stagger="5m", shared_temp_directory=tls_dir,
                      environment={"kind": "packed", "path": tarball},
                      job_extra_directives={"+MaxRuntime": "3600", "+JobFlavour": '"workday"'})
    try:
        script = c.job_script()
    finally:
        c.close()
    assert "RequestCpus = MY.DaskWorkerCores" in script and "MY.DaskWorkerCores = 2" in script
    assert "MY.DaskWorkerMemory = 6442450944" in script or "6GiB" in script or "6.44" in script
    assert "+MaxRuntime = 3600" in script and '+JobFlavour = "workday"' in script
    assert f"transfer_input_files = {tarball}" in script.replace('"', "") or "env.tar.gz" in script
    assert "tar -xzf env.tar.gz" in script
    assert "--lifetime 50m" in script and "--lifetime-stagger 5m" in script
    # TLS: the worker connects with tls:// and gets the certificate files
    assert "tls://" in script
    for opt in ("--tls-ca-file", "--tls-cert", "--tls-key"):
        assert opt in script
    files = os.listdir(tls_dir)
    assert files and all(os.path.getsize(os.path.join(tls_dir, f)) > 0 for f in files)


def test_slurm_job_script_options(tls_dir):
    c = build_cluster("slurm", profile="slurm", cores=4, memory="16GiB", processes=2, walltime="02:00:00",
                      account="cms", queue="short", job_extra_directives=["--constraint=cpu"],
                      lifetime="115m", shared_temp_directory=tls_dir, local_directory="/scratch/$USER")
    try:
        script = c.job_script()
    finally:
        c.close()
    for line in ("#SBATCH -A cms", "#SBATCH -p short", "#SBATCH -t 02:00:00", "#SBATCH --constraint=cpu",
                 "#SBATCH --cpus-per-task=4"):
        assert line in script, line
    assert "--nworkers 2" in script and "--lifetime 115m" in script
    assert "--local-directory /scratch/$USER" in script
    assert "tls://" in script and "--tls-ca-file" in script
    import sys
    assert f"source {os.path.join(sys.prefix, 'bin', 'activate')}" in script
    # the worker malloc settings are exported before the worker starts
    from jetdask import config
    env = config.get("worker-environ")
    assert set(env) >= {"MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_"}
    for key, value in env.items():
        assert script.index(f"export {key}={value}") < script.index("distributed.cli.dask_worker"), key


def test_insecure_needs_opt_out(tls_dir):
    with pytest.warns(UserWarning, match="without TLS"):
        c = build_cluster("slurm", cores=1, memory="2GiB", secure=False)
    try:
        script = c.job_script()
    finally:
        c.close()
    assert "tls://" not in script and "--tls-ca-file" not in script


def test_bad_options_name_the_key():
    with pytest.raises(ConfigError) as err:
        cluster_options("slurm", cores=1, memroy="2GiB")
    assert err.value.key == "cluster.memroy"
    with pytest.raises(ConfigError, match="not found"):
        cluster_options("slurm", profile="nope")
    with pytest.raises(ConfigError) as err:
        build_cluster("slurm", cores=1, memory="1GiB", environment={"kind": "docker"})
    assert err.value.key == "cluster.environment.kind"


def test_unknown_kind_and_missing_scheduler():
    from jetdask.cluster import start_cluster
    with pytest.raises(ConfigError):
        start_cluster("kubernetes")
    if not any(os.access(os.path.join(p, "condor_submit"), os.X_OK) for p in os.environ["PATH"].split(":")):
        with pytest.raises(ConfigError, match="HTCondor is not available"):
            start_cluster("htcondor", cores=1, memory="1GiB")


def test_local_workers_get_the_worker_environ(monkeypatch):
    """distributed's MALLOC_TRIM_THRESHOLD_=65536 is replaced for jetdask's LocalCluster workers."""
    import dask

    from jetdask.cluster import close_cluster, start_cluster
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")  # as a previous distributed nanny leaves it
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)  # restored (absent) after the test
    with dask.config.set({"jetdask.worker-environ.MALLOC_ARENA_MAX": 2}):
        client = start_cluster("local", n_workers=1, memory_limit="1GiB", dashboard_address=None)
    try:
        env = client.run(lambda: {k: os.environ.get(k) for k in
                                  ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_ARENA_MAX")})
        # the worker's own dask reads the DASK_* variables: no statistical profiler, a slow tick
        worker_dask = client.run(lambda: (dask.config.get("distributed.worker.profile.enabled"),
                                          dask.config.get("distributed.admin.tick.interval"),
                                          dask.config.get("distributed.admin.system-monitor.interval")))
        # chunk tasks are pinned: the scheduler here runs without work stealing
        extensions = client.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.extensions))
    finally:
        close_cluster(client)
    assert set(worker_dask.values()) == {(False, "1s", "2s")}
    assert "stealing" not in extensions and "amm" in extensions
    assert dask.config.get("distributed.admin.tick.interval") == "1s"   # the scheduler and nannies here
    from jetdask import config
    want = {k: str(v) for k, v in config.get("worker-environ").items()}
    assert want["MALLOC_TRIM_THRESHOLD_"] != "65536"
    want = {k: v for k, v in dict(want, MALLOC_ARENA_MAX="2").items() if k in next(iter(env.values()))}
    assert list(env.values()) == [want]


@pytest.mark.parametrize("kind", ["slurm", "htcondor"])
def test_shipped_profile_as_it_is(kind, tmp_path, monkeypatch):
    """Each shipped profile, unchanged: ``~`` in its TLS directory is the home directory, made 0700."""
    import stat
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    c = build_cluster(kind, profile=os.path.join(REPO, "cluster", f"{kind}.yaml"))
    try:
        script = c.job_script()
    finally:
        c.close()
    tls = home / ".jetdask" / "tls"
    assert tls.is_dir() and not (cwd / "~").exists()
    for d in (tls, tls.parent):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
    assert str(tls) in script and "tls://" in script
    assert os.listdir(tls)


@pytest.mark.parametrize("name", ["slurm", "htcondor"])
def test_profiles_ship_with_the_package_and_match_the_repository_copies(name):
    from jetdask.cluster.batch import load_profile, shipped_profile
    shipped = shipped_profile(name)
    assert shipped and os.path.dirname(shipped).endswith(os.path.join("jetdask", "cluster", "profiles"))
    with open(shipped) as a, open(os.path.join(REPO, "cluster", f"{name}.yaml")) as b:
        assert a.read() == b.read(), "cluster/*.yaml is the user-facing copy of jetdask/cluster/profiles/*.yaml"
    assert load_profile(name, name) == load_profile(name, os.path.join(REPO, "cluster", f"{name}.yaml"))


def test_tls_directory_expands_variables_and_refuses_one_open_to_others(tmp_path, monkeypatch):
    from jetdask.cluster.batch import prepare_tls_dir
    monkeypatch.setenv("JETDASK_TEST_BASE", str(tmp_path))
    made = prepare_tls_dir("$JETDASK_TEST_BASE/a/tls")
    assert made == str(tmp_path / "a" / "tls") and os.stat(made).st_mode & 0o777 == 0o700
    assert prepare_tls_dir(made) == made                      # an existing private one is fine
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)
    with pytest.raises(ConfigError, match="chmod 700") as err:
        prepare_tls_dir(str(shared))
    assert err.value.key == "cluster.shared_temp_directory" and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="NO_SUCH_VARIABLE"):
        prepare_tls_dir("$NO_SUCH_VARIABLE_JETDASK/tls")
