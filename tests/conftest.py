"""Shared fixtures: the real CMS files in ../shared/data and small synthetic PFNano samples;
helpers for the tests' own servers and clients (a free port, the IO loops alive)."""
from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = Path(os.environ.get("JETDASK_SHARED", REPO.parent / "shared")) / "data"


def free_port() -> int:
    """A localhost TCP port nobody listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def io_loops() -> int:
    """How many dask client IO-loop threads this process runs."""
    return sum(t.name == "IO loop" for t in threading.enumerate())


def real_file(name: str) -> str:
    """Path of a real sample file; fails (not skips) under CI when it is missing."""
    path = REAL_DATA / name
    if not path.exists():
        msg = f"real sample {path} is missing (../shared must be beside the checkout)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return str(path)


@pytest.fixture(scope="session")
def real_data():
    """Directory of the real files; use ``real_file(name)`` for one file."""
    real_file("pfnano.root")
    return REAL_DATA


@pytest.fixture
def pfnano_path():
    return real_file("pfnano.root")


@pytest.fixture
def nano_dy_path():
    return real_file("nano_dy.root")


@pytest.fixture
def nano_dimuon_path():
    return real_file("nano_dimuon.root")


@pytest.fixture(scope="session")
def small_sample(tmp_path_factory):
    """A synthetic DY+jets sample: 2 MC + 2 data files of 3000 events each (fileset path)."""
    from jetdask.synthetic import generate_sample
    out = tmp_path_factory.mktemp("sample")
    return generate_sample(str(out), events=6000, files=2, seed=7, mismodel=0.5, basket_events=1000)
