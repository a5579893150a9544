"""SLURM and HTCondor clusters through dask-jobqueue, TLS by default.

Options are merged, in increasing precedence, from dask-jobqueue's own configuration
(``jobqueue.slurm`` / ``jobqueue.htcondor``), a profile YAML (a *complete* dask-jobqueue
section, see ``cluster/slurm.yaml`` and ``cluster/htcondor.yaml``), and the keyword
arguments of the call. jetdask adds:

* ``secure`` (default True): a temporary TLS certificate (``Security.temporary()``); the
  scheduler listens on ``tls://`` and workers get the certificate files from
  ``shared_temp_directory`` (a directory the jobs can read). ``secure=False`` opts out;
* ``environment``: ``{"kind": "venv", "path": ...}`` activates that venv in the job
  (default: the interpreter running jetdask, ``sys.executable``), or
  ``{"kind": "packed", "path": "env.tar.gz"}`` ships a packed environment with the job
  (HTCondor: ``transfer_input_files``) and unpacks it in the job's scratch directory;
* ``lifetime`` / ``lifetime_stagger``: workers retire before the walltime, staggered,
  so long runs survive walltime limits (the adaptive cluster replaces them);
* ``jobs`` (static ``scale(jobs=N)``) or ``minimum``/``maximum`` (``adapt``, the default).
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import warnings

import dask

from ..errors import ConfigError

JETDASK_KEYS = {"secure", "environment", "lifetime", "lifetime_stagger", "jobs", "minimum", "maximum", "profile"}
DEFAULT_TLS_DIR = "~/.jetdask/tls"


def shipped_profile(name: str) -> str | None:
    """Path of a profile shipped with jetdask (``slurm``, ``htcondor``), or None."""
    from importlib.resources import files
    fn = name if name.endswith(".yaml") else f"{name}.yaml"
    res = files("jetdask.cluster").joinpath("profiles", fn)
    return str(res) if res.is_file() else None


def prepare_tls_dir(path: str) -> str:
    """``path`` with ``~`` and ``$VARS`` expanded, created 0700 (missing parents too); an existing
    directory that others can read or enter is refused (the TLS key is written there)."""
    import stat
    expanded = os.path.abspath(os.path.expandvars(os.path.expanduser(str(path))))
    if "$" in expanded:
        raise ConfigError(f"{path!r}: environment variable not set", "cluster.shared_temp_directory")
    if os.path.exists(expanded):
        if not os.path.isdir(expanded):
            raise ConfigError(f"{expanded} is not a directory", "cluster.shared_temp_directory")
        mode = stat.S_IMODE(os.stat(expanded).st_mode)
        if mode & 0o077:
            raise ConfigError(f"{expanded} is open to other users (mode {mode:04o}); the TLS key is written there: "
                              f"chmod 700 {expanded}", "cluster.shared_temp_directory")
        return expanded
    missing = []
    d = expanded
    while not os.path.exists(d):
        missing.append(d)
        d = os.path.dirname(d)
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            pass
        except OSError as err:
            raise ConfigError(f"cannot create {d}: {err.strerror}", "cluster.shared_temp_directory") from None
        os.chmod(d, 0o700)   # the umask may have removed bits; never more than 0700
    return expanded


def _norm(d: dict) -> dict:
    return {k.replace("-", "_"): v for k, v in (d or {}).items()}


def read_profile_file(profile: str, shipped: str) -> tuple[str, dict]:
    """(path, mapping) of a profile YAML: a path, else a profile shipped with jetdask by that name
    (``shipped`` names them in the error, e.g. ``"a shipped name: slurm, htcondor"``)."""
    from ..config import read_yaml
    path = os.path.expanduser(profile)
    if not os.path.exists(path):
        cand = shipped_profile(os.path.basename(profile))
        if cand is None:
            raise ConfigError(f"profile {profile!r} not found (a YAML path, or {shipped})", "profile")
        path = cand
    return path, read_yaml(path, "profile")


def load_profile(kind: str, profile: str | None) -> dict:
    """The dask-jobqueue section of ``kind`` from a profile YAML (a path, or a shipped name: slurm, htcondor)."""
    if profile is None:
        return {}
    path, raw = read_profile_file(profile, "a shipped name: slurm, htcondor")
    section = (raw.get("jobqueue") or {}).get(kind)
    if section is None:
        raise ConfigError(f"{path} has no jobqueue.{kind} section", "profile")
    return _norm(section)


def cluster_options(kind: str, profile: str | None = None, **options) -> tuple[dict, dict]:
    """(dask-jobqueue kwargs, jetdask options) after merging config, profile and call options."""
    base = _norm(dask.config.get(f"jobqueue.{kind}", {}))
    merged = {**base, **load_profile(kind, profile)}
    ours = {k: options.pop(k) for k in list(options) if k in JETDASK_KEYS}
    unknown = set(options) - set(merged) - {"scheduler_options", "security", "protocol", "shared_temp_directory",
                                          "worker_extra_args", "job_script_prologue", "job_extra_directives",
                                          "dashboard_address", "host", "log_directory", "account", "queue", "job_name"}
    if unknown:
        raise ConfigError(f"unknown option(s) {sorted(unknown)} for a {kind} cluster", f"cluster.{sorted(unknown)[0]}")
    merged.update(options)
    for k in ("extra", "env_extra", "job_extra"):  # deprecated keys of dask-jobqueue
        merged.pop(k, None)
    return {k: v for k, v in merged.items() if v is not None or k in ("queue", "account")}, ours


def _environment_lines(kind: str, env: dict | None) -> tuple[list[str], list[str], str | None]:
    """(prologue lines, files to transfer, python executable) for the worker environment."""
    env = env or {"kind": "venv", "path": sys.prefix}
    k = env.get("kind", "venv")
    if k == "venv":
        path = env.get("path", sys.prefix)
        return [f"source {os.path.join(path, 'bin', 'activate')}"], [], os.path.join(path, "bin", "python")
    if k == "packed":
        tarball = env["path"]
        name = os.path.basename(tarball)
        pro = ['mkdir -p "${_CONDOR_SCRATCH_DIR:-$TMPDIR}/env"',
               f'tar -xzf {name if kind == "htcondor" else tarball} -C "${{_CONDOR_SCRATCH_DIR:-$TMPDIR}}/env"',
               'source "${_CONDOR_SCRATCH_DIR:-$TMPDIR}/env/bin/activate"']
        return pro, [tarball] if kind == "htcondor" else [], "python"
    raise ConfigError(f"environment kind must be 'venv' or 'packed', got {k!r}", "cluster.environment.kind")


def build_cluster(kind: str, profile: str | None = None, **options):
    """The dask-jobqueue cluster object (no jobs submitted yet)."""
    try:
        import dask_jobqueue
    except ImportError:
        raise ConfigError("batch clusters need dask-jobqueue: pip install 'jetdask[cluster]'", "cluster") from None
    kw, ours = cluster_options(kind, profile, **options)
    prologue, transfer, python = _environment_lines(kind, ours.get("environment"))
    from .local import worker_environ
    exports = [f"export {k}={shlex.quote(v)}" for k, v in sorted(worker_environ().items())]
    kw["job_script_prologue"] = list(kw.get("job_script_prologue") or []) + prologue + exports
    kw.setdefault("python", python)
    if kw.get("python") is None:
        kw["python"] = python
    extra = list(kw.get("worker_extra_args") or [])
    if ours.get("lifetime"):
        extra += ["--lifetime", str(ours["lifetime"]), "--lifetime-stagger", str(ours.get("lifetime_stagger", "5m"))]
    kw["worker_extra_args"] = extra
    secure = ours.get("secure", True)
    if secure:
        from distributed.security import Security
        kw["security"] = Security.temporary()
        kw["protocol"] = "tls://"
        kw["shared_temp_directory"] = prepare_tls_dir(kw.get("shared_temp_directory") or DEFAULT_TLS_DIR)
    else:
        warnings.warn("jetdask: batch cluster without TLS (secure=False): anyone who reaches the scheduler "
                      "can run code as you", stacklevel=3)
    if kind == "htcondor":
        _convert_htcondor_directives(kw)
        if transfer:
            kw["job_extra_directives"]["transfer_input_files"] = ",".join(transfer)
        cls = dask_jobqueue.HTCondorCluster
    else:
        cls = dask_jobqueue.SLURMCluster
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        cluster = cls(**kw)
    cluster._jetdask_options = ours
    return cluster


def _convert_htcondor_directives(kw: dict) -> None:
    """HTCondorCluster takes ``job_extra_directives`` as a dict of submit-description keys."""
    raw = kw.get("job_extra_directives") or {}
    if isinstance(raw, dict):
        kw["job_extra_directives"] = dict(raw)
        return
    out = {}
    for d in raw:
        if isinstance(d, dict):
            out.update(d)
        else:
            key, _, value = str(d).partition("=")
            out[key.strip()] = value.strip()
    kw["job_extra_directives"] = out


def _squeue_names(name: str) -> list[str]:
    try:
        p = subprocess.run(["squeue", "-h", "-n", name, "-o", "%i"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [x for x in p.stdout.split() if x.strip()]


def start_batch(kind: str, jobs: int | None = None, minimum: int = 0, maximum: int = 10, **options):
    """Start a SLURM or HTCondor cluster and return a connected ``distributed.Client``."""
    from distributed import Client
    if kind == "slurm" and not shutil.which("sbatch"):
        raise ConfigError("SLURM is not available on this machine (no sbatch on PATH)", "cluster")
    if kind == "htcondor" and not shutil.which("condor_submit"):
        raise ConfigError("HTCondor is not available on this machine (no condor_submit on PATH)", "cluster")
    if kind == "slurm":
        options.setdefault("job_name", f"jetdask-{os.getpid()}")
    from .local import apply_scheduler_settings
    apply_scheduler_settings()
    cluster = build_cluster(kind, **options)
    if jobs is not None:
        cluster.scale(jobs=jobs)
    else:
        cluster.adapt(minimum_jobs=minimum, maximum_jobs=maximum)
    client = Client(cluster, security=getattr(cluster, "security", None))
    if kind == "slurm":
        name = options["job_name"]

        def wait_gone(timeout=60):
            t = time.time()
            while _squeue_names(name) and time.time() - t < timeout:
                time.sleep(0.5)
        cluster._jetdask_wait_gone = wait_gone
    return client
