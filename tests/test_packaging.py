"""What a wheel install needs is declared: imported packages, YAML package data; SPDX license,
strict markers, no stray job logs in the repository."""
from __future__ import annotations

import ast
import fnmatch
import glob
import os
import re
import subprocess
import sys

import pytest

from readfiles import read_text

tomllib = pytest.importorskip("tomllib")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYPROJECT = tomllib.loads(read_text(os.path.join(REPO, "pyproject.toml")))
DIST_NAMES = {"yaml": "pyyaml", "dask_jobqueue": "dask-jobqueue", "sklearn": "scikit-learn", "PIL": "pillow"}


def _requirement_names(reqs) -> set[str]:
    return {re.split(r"[<>=!\[ ;]", r, maxsplit=1)[0].lower() for r in reqs}


def _imports(paths) -> set[str]:
    found = set()
    for path in paths:
        for node in ast.walk(ast.parse(read_text(path))):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"jetdask", "__future__"}


def test_every_imported_package_is_declared():
    project = PYPROJECT["project"]
    declared = _requirement_names(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        declared |= _requirement_names(extra)
    files = glob.glob(os.path.join(REPO, "jetdask", "**", "*.py"), recursive=True)
    files += glob.glob(os.path.join(REPO, "analyses", "*.py"))
    missing = sorted(m for m in _imports(files) if DIST_NAMES.get(m, m).lower().replace("_", "-") not in declared)
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"
    for core in ("uhi", "cloudpickle"):
        assert core in _requirement_names(project["dependencies"])


def test_yaml_files_are_package_data():
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]
    for path in glob.glob(os.path.join(REPO, "jetdask", "**", "*.yaml"), recursive=True):
        rel = os.path.relpath(path, REPO).replace(os.sep, "/")
        full = [pkg.replace(".", "/") + "/" + pat for pkg, pats in patterns.items() for pat in pats]
        # setuptools globs do not cross directories: compare directory and file name separately
        covered = any(os.path.dirname(rel) == os.path.dirname(f) and fnmatch.fnmatch(os.path.basename(rel),
                                                                                    os.path.basename(f))
                      for f in full)
        assert covered, f"{rel} would be missing from a wheel"


def test_license_markers_and_stray_files():
    assert PYPROJECT["project"]["license"] == "BSD-3-Clause"
    assert "--strict-markers" in PYPROJECT["tool"]["pytest"]["ini_options"]["addopts"]
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True).stdout.split()
    assert not [f for f in tracked if fnmatch.fnmatch(os.path.basename(f), "slurm-*.out")]
    ignored = subprocess.run(["git", "check-ignore", "-q", "notebooks/slurm-7.out"], cwd=REPO)
    assert ignored.returncode == 0
