"""A run directory is bound to its analysis (class, source sha256, arguments): the real CLI refuses
another analysis, an edited source or other arguments with one line and exit 2, and
``--allow-analysis-change`` accepts the change and records it."""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys

import pytest

from jetdask.engine import binding
from readfiles import read_json, read_text

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JETDASK = os.path.join(REPO, ".venv", "bin", "jetdask")
DIMUON = os.path.join(REPO, "analyses", "dimuon.py") + ":Dimuon"
DYJETS = os.path.join(REPO, "analyses", "dy_jets.py") + ":DYJets"

ID = {"spec": "a.py:A", "class": "A", "source": "/x/a.py", "sha256": "1" * 64, "arguments": {"min_pt": 20.0}}


@pytest.mark.parametrize("recorded, current, needles", [
    (None, ID, []),                                                        # a new directory
    (ID, dict(ID), []),
    (ID, dict(ID, spec="/elsewhere/a.py:A", source="/elsewhere/a.py"), []),   # same file bytes elsewhere
    (ID, dict(ID, arguments={"min_pt": 20}), []),                          # 20 == 20.0
    (ID, dict(ID, spec="b.py:B", **{"class": "B"}), ["analysis b.py:B instead of a.py:A"]),
    (ID, dict(ID, sha256="2" * 64), ["a.py changed", "111111111111 -> 222222222222"]),
    (ID, dict(ID, sha256=None), []),                                       # a source that cannot be read
    (ID, dict(ID, arguments={"min_pt": 25}), ["arguments min_pt 20.0 -> 25"]),
    (ID, dict(ID, arguments={"min_pt": 20, "cuts": {"a": 1}}), ['cuts (unset) -> {"a": 1}']),
    # directories made before identities: the spec's class and the --kwargs over the class' defaults
    (binding.legacy_identity("x/a.py:A", {}), dict(ID, kwargs={"min_pt": 20}, defaults={"min_pt": 20.0}), []),
    (binding.legacy_identity("x/a.py:A", {}), dict(ID, kwargs={"min_pt": 25}, defaults={"min_pt": 20.0}),
     ["arguments min_pt 20.0 -> 25"]),
    (binding.legacy_identity("x/a.py:A", {"min_pt": 25}), dict(ID, kwargs={}, defaults={"min_pt": 20.0}),
     ["min_pt 25 -> 20.0"]),
    (binding.legacy_identity("x/b.py:B", {}), dict(ID, kwargs={}), ["instead of x/b.py:B"]),
])
def test_differences(recorded, current, needles):
    diffs = binding.differences(recorded, current)
    assert bool(diffs) == bool(needles), diffs
    text = "; ".join(diffs)
    for n in needles:
        assert n in text, (n, text)


def test_identity_of_a_python_instance_holds_its_arguments(tmp_path):
    import dimuon
    a, b = binding.identity(dimuon.Dimuon()), binding.identity(dimuon.Dimuon(min_pt=25))
    assert a["class"] == "Dimuon" and a["source"] == os.path.join(REPO, "analyses", "dimuon.py")
    assert a["arguments"] == {"min_pt": 20.0} and b["arguments"] == {"min_pt": 25.0}
    on_gpu = dimuon.Dimuon()
    on_gpu.resources = {"GPU": 1}      # where it runs is not an argument
    assert binding.identity(on_gpu)["arguments"] == a["arguments"]
    with open(a["source"], "rb") as f:
        import hashlib
        assert a["sha256"] == hashlib.sha256(f.read()).hexdigest()


def jetdask(*args, cwd):
    cmd = [JETDASK] if os.path.exists(JETDASK) else [sys.executable, "-m", "jetdask.cli"]
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(cmd + list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def refused(p, *needles):
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2, (p.returncode, p.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("jetdask: error:"), p.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def meta(run, key):
    db = sqlite3.connect(os.path.join(run, "ledger.sqlite"))
    try:
        row = db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else None
    finally:
        db.close()


def test_cli_refuses_another_analysis_source_or_arguments(small_sample, tmp_path):
    run = str(tmp_path / "run")
    base = ["--fileset", small_sample, "--run-dir", run, "--serial", "--no-progress"]
    p = jetdask("run", DIMUON, *base, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    hists = read_text(os.path.join(run, "output", "hists.json"))
    ident = meta(run, "analysis_identity")
    assert ident["class"] == "Dimuon" and ident["arguments"] == {"min_pt": 20.0} and len(ident["sha256"]) == 64

    # the cases: another analysis, other --kwargs (nothing is written: hists.json unchanged)
    line = refused(jetdask("run", DYJETS, *base, cwd=tmp_path), run, "DYJets instead of", "--allow-analysis-change")
    assert "done chunk" in line
    refused(jetdask("run", DIMUON, "--kwargs", '{"min_pt": 25}', *base, cwd=tmp_path), "min_pt 20.0 -> 25")
    refused(jetdask("resubmit", run, "--analysis", DYJETS, "--serial", cwd=tmp_path), "DYJets instead of")
    assert read_text(os.path.join(run, "output", "hists.json")) == hists
    # the same arguments spelled out, and the same file under another path: the same analysis
    assert jetdask("run", DIMUON, "--kwargs", '{"min_pt": 20}', *base, cwd=tmp_path).returncode == 0
    shutil.copy(os.path.join(REPO, "analyses", "dimuon.py"), tmp_path / "dimuon.py")
    assert jetdask("run", "dimuon.py:Dimuon", *base, cwd=tmp_path).returncode == 0

    # an edited source file is another analysis, until the change is allowed
    with open(tmp_path / "dimuon.py", "a") as f:
        f.write("\n# a comment: harmless, but jetdask cannot know\n")
    refused(jetdask("run", "dimuon.py:Dimuon", *base, cwd=tmp_path), "dimuon.py changed")
    p = jetdask("run", "dimuon.py:Dimuon", *base, "--allow-analysis-change", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    changes = meta(run, "analysis_changes")
    assert len(changes) == 1 and "dimuon.py changed" in changes[0]["what"][0]
    assert meta(run, "analysis_identity")["sha256"] != ident["sha256"]
    meta_json = read_json(os.path.join(run, "output", "metadata.json"))
    assert meta_json["analysis_identity"]["sha256"] == meta(run, "analysis_identity")["sha256"]
    # resubmit rebuilds the recorded analysis: the same one, accepted
    assert jetdask("resubmit", run, "--serial", "--no-progress", cwd=tmp_path).returncode == 0


def test_python_api_and_directories_without_a_record(small_sample, tmp_path):
    """Runner refuses an instance with other arguments; a directory without the record (made by an
    older jetdask) keeps working and is recorded on first use; one without done chunks takes any."""
    from jetdask.engine.runner import Runner
    from jetdask.errors import ConfigError
    from jetdask.plugin import load_analysis
    run = str(tmp_path / "run")
    with Runner(load_analysis(DIMUON), small_sample, run, serial=True, progress=False) as r:
        first = r.run()
    with pytest.raises(ConfigError, match="min_pt 20.0 -> 30"):
        Runner(load_analysis(DIMUON, min_pt=30), small_sample, run, serial=True, progress=False)
    with Runner(load_analysis(DIMUON, min_pt=30), small_sample, run, serial=True, progress=False,
                allow_analysis_change=True) as r:
        r.run()
    assert meta(run, "analysis_identity")["arguments"] == {"min_pt": 30}

    # an older directory: no identity recorded, only spec and kwargs
    db = sqlite3.connect(os.path.join(run, "ledger.sqlite"))
    with db:
        db.execute("DELETE FROM meta WHERE key IN ('analysis_identity', 'analysis_changes')")
        db.execute("UPDATE meta SET value=? WHERE key='analysis_kwargs'", (json.dumps({}),))
    db.close()
    with pytest.raises(ConfigError, match="DYJets instead of"):
        Runner(load_analysis(DYJETS), small_sample, run, serial=True, progress=False)
    with Runner(load_analysis(DIMUON), small_sample, run, serial=True, progress=False) as r:
        again = r.run()
    assert meta(run, "analysis_identity")["arguments"] == {"min_pt": 20.0}
    assert again.counters == first.counters

    # no chunk done yet: nothing to mix with, any analysis is taken
    empty = str(tmp_path / "empty")
    os.makedirs(empty)
    shutil.copy(os.path.join(run, "ledger.sqlite"), empty)
    db = sqlite3.connect(os.path.join(empty, "ledger.sqlite"))
    with db:
        db.execute("UPDATE chunks SET state='pending'")
        db.execute("DELETE FROM file_results")
        db.execute("DELETE FROM chunk_results")
    db.close()
    Runner(load_analysis(DIMUON, min_pt=40), small_sample, empty, serial=True, progress=False).close()
