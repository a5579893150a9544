"""The demo from an installed package: the example analyses ship as data files of the wheel
(PREFIX/share/jetdask/analyses) and jetdask.demo finds them there when no source checkout is around."""
from __future__ import annotations

import os
import shutil

import pytest

from jetdask import demo
from jetdask.errors import ConfigError
from readfiles import read_text

tomllib = pytest.importorskip("tomllib")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_example_analyses_are_data_files_of_the_wheel():
    pyproject = tomllib.loads(read_text(os.path.join(REPO, "pyproject.toml")))
    shipped = pyproject["tool"]["setuptools"]["data-files"]["share/jetdask/analyses"]
    assert sorted(shipped) == sorted(f"analyses/{f}" for f in os.listdir(os.path.join(REPO, "analyses"))
                                     if f.endswith(".py"))


def test_found_in_the_checkout_then_under_the_prefix(tmp_path, monkeypatch):
    assert demo.analysis_file() == os.path.join(REPO, "analyses", "dy_jets.py")   # a source checkout
    monkeypatch.setattr(demo, "REPO", tmp_path / "site-packages")                  # an installed package
    monkeypatch.setattr("site.ENABLE_USER_SITE", False)
    prefix = tmp_path / "prefix"
    monkeypatch.setattr("sysconfig.get_path", lambda name, *a, **k: str(prefix))
    with pytest.raises(ConfigError, match="dy_jets.py not found in .*reinstall jetdask"):
        demo.analysis_file()
    os.makedirs(prefix / "share" / "jetdask" / "analyses")
    shutil.copy(os.path.join(REPO, "analyses", "dy_jets.py"), prefix / "share" / "jetdask" / "analyses")
    assert demo.analysis_file() == str(prefix / "share" / "jetdask" / "analyses" / "dy_jets.py")
    from jetdask.plugin import load_analysis
    a = load_analysis(demo.analysis_file() + ":DYJets")      # the shipped file loads as the analysis
    assert type(a).__name__ == "DYJets"
