"""Checks of a command's inputs that run before any cluster starts or any directory is made.

Each raises a :class:`~jetdask.errors.ConfigError` naming the input; the CLI turns it into
one line on stderr and exit code 2. The analysis file is checked by
:func:`jetdask.plugin.load_analysis`, the fileset by :func:`jetdask.fileset.load_fileset`,
the ``jetdask.*`` configuration by :func:`jetdask.config_schema.validate`.
"""
from __future__ import annotations

import os

from .errors import ConfigError

CLUSTER_KINDS = ("local", "slurm", "htcondor", "gateway")


def check_jetdask_config() -> dict:
    """The ``jetdask.*`` values in effect, validated against the schema."""
    from .config_schema import validate
    return validate()


def check_writable_dir(path: str, key: str = "run_dir", must_exist: bool = False) -> str:
    """``path`` is (or can be created as) a directory this user can write; nothing is created."""
    path = os.path.abspath(os.path.expanduser(path))
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise ConfigError(f"{path} exists and is not a directory", key)
        if not _can_write_in(path):
            raise ConfigError(f"{path} is not writable by this user", key)
        return path
    if must_exist:
        raise ConfigError(f"{path} does not exist", key)
    parent = os.path.dirname(path)
    while parent and not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ConfigError(f"cannot create {path}: {parent} is not a directory", key)
    if not _can_write_in(parent):
        raise ConfigError(f"cannot create {path}: {parent} is not writable by this user", key)
    return path


def _can_write_in(directory: str) -> bool:
    """Make and remove a probe directory (permission bits alone say nothing for root or read-only mounts)."""
    import tempfile
    if not os.access(directory, os.W_OK | os.X_OK):
        return False
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".jetdask-probe-", dir=directory))
    except OSError:
        return False
    return True


def check_run_dir_exists(path: str, key: str = "run_dir") -> str:
    """An existing jetdask run directory (with its ledger)."""
    path = os.path.abspath(path)
    if not os.path.exists(os.path.join(path, "ledger.sqlite")):
        raise ConfigError(f"{path} is not a jetdask run directory (no ledger.sqlite)", key)
    return path


def check_cluster(kind: str | None, profile: str | None = None) -> None:
    """``--cluster`` is a known kind or a scheduler address; ``--profile`` exists and fits it."""
    kind = kind or "local"
    if "://" in kind or kind == "gateway":
        if profile is not None:       # a facility profile: its tls (address) or gateway section
            from .cluster.address import security_from_profile
            from .cluster.gateway import settings
            security_from_profile(profile) if "://" in kind else settings(profile)
        return
    if kind not in CLUSTER_KINDS:
        from .suggest import did_you_mean
        raise ConfigError(f"unknown cluster {kind!r}; expected local, slurm, htcondor, gateway or an address like "
                          f"tls://host:8786{did_you_mean(kind, CLUSTER_KINDS)}", "--cluster")
    if profile is not None:
        if kind == "local":
            raise ConfigError("a profile is for --cluster slurm, htcondor, gateway or an address", "--profile")
        from .cluster.batch import load_profile
        load_profile(kind, profile)


def check_file(path: str | None, key: str) -> None:
    if path is not None and not os.path.isfile(path):
        raise ConfigError(f"{path} not found", key)
