"""Every bad input a newcomer tried: exit 2, one line on stderr naming the input, nothing left behind.

Each case runs the real ``jetdask`` console script in a subprocess. ``--cluster tcp://127.0.0.1:9``
points at an address where nothing listens: had a case got as far as starting (connecting to) a
cluster, it would end in a connection error instead of the one-line message asserted here.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JETDASK = os.path.join(REPO, ".venv", "bin", "jetdask")
NOWHERE = ["--cluster", "tcp://127.0.0.1:9"]


def jetdask(*args, cwd, env=None, timeout=300):
    cmd = [JETDASK] if os.path.exists(JETDASK) else [sys.executable, "-m", "jetdask.cli"]
    full_env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    full_env.update(env or {})
    return subprocess.run(cmd + list(args), cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)


def assert_usage_error(p, *needles):
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2, (p.returncode, p.stderr[-3000:])
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("jetdask"), lines[0]
    for n in needles:
        assert n in lines[0], (n, lines[0])
    assert p.stdout == ""
    return lines[0]


@pytest.fixture
def work(tmp_path):
    """A fileset (files need not exist: nothing may be opened before the inputs are valid)."""
    fs = {"DY": {"files": {"mc.root": "Events"}, "metadata": {"is_data": False, "xsec": 6077.22}},
          "Data": {"files": ["data.root"], "metadata": {"is_data": True, "lumi": 10.0}}}
    (tmp_path / "fileset.json").write_text(json.dumps(fs))
    return tmp_path


DIMUON = os.path.join(REPO, "analyses", "dimuon.py") + ":Dimuon"


def run_args(work, *extra, analysis=DIMUON, fileset="fileset.json"):
    return ["run", analysis, "--fileset", fileset, "--run-dir", str(work / "run"), *NOWHERE, *extra]


@pytest.mark.parametrize("value", ["-5", "0", "abc"])
def test_chunk_size_must_be_positive(work, value):
    assert_usage_error(jetdask(*run_args(work, "--chunk-size", value), cwd=work), "--chunk-size")
    assert not (work / "run").exists()


def test_bad_config_value_from_the_environment(work):
    p = jetdask(*run_args(work), cwd=work, env={"DASK_JETDASK__CHUNK_SIZE": "abc"})
    assert_usage_error(p, "jetdask.chunk-size", "integer >= 1", "'abc'")
    assert not (work / "run").exists()


def test_unknown_config_key_suggests_the_known_one(work):
    p = jetdask(*run_args(work), cwd=work, env={"DASK_JETDASK__RETRYS": "2"})
    assert_usage_error(p, "jetdask.retrys", "'retries'")


def test_analysis_syntax_error_is_file_line_message(work):
    (work / "broken.py").write_text("import hist\n\ndef process(events:\n    pass\n")
    line = assert_usage_error(jetdask(*run_args(work, analysis="broken.py:X"), cwd=work), "SyntaxError")
    assert re.search(r"analysis: \S*broken\.py:3: ", line), line
    assert not (work / "run").exists()


def test_analysis_import_error_is_file_line_message(work):
    (work / "imports.py").write_text("import os\nimport no_such_module_here\n")
    line = assert_usage_error(jetdask(*run_args(work, analysis="imports.py:X"), cwd=work), "no_such_module_here")
    assert re.search(r"analysis: \S*imports\.py:2: ModuleNotFoundError", line), line


def test_run_dir_not_writable(work):
    # /proc refuses new directories even to root (permission bits alone would not show it)
    p = jetdask("run", os.path.join(REPO, "analyses", "dimuon.py:Dimuon"), "--fileset", "fileset.json",
                "--run-dir", "/proc/jetdask-test/run", *NOWHERE, cwd=work)
    assert_usage_error(p, "--run-dir", "not writable")
    if os.geteuid() != 0:
        locked = work / "locked"
        locked.mkdir(mode=0o500)
        p = jetdask(*run_args(work)[:4], "--run-dir", str(locked / "run"), *NOWHERE, cwd=work)
        assert_usage_error(p, "--run-dir")
        assert not (locked / "run").exists()


def test_unsafe_tagger_file_is_refused_in_one_line(work):
    torch = pytest.importorskip("torch")

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {work / 'pwned'}",))

    torch.save({"state_dict": Evil()}, str(work / "evil.pt"))
    kwargs = json.dumps({"taggers": [{"name": "evil", "source": str(work / "evil.pt")}]})
    p = jetdask(*run_args(work, "--kwargs", kwargs, analysis=os.path.join(REPO, "analyses", "dy_jets.py:DYJets")),
                cwd=work)
    assert_usage_error(p)
    assert not (work / "pwned").exists() and not (work / "run").exists()


def test_fileset_version_key_is_named(work):
    (work / "v.json").write_text(json.dumps({"datasets": {"DY": ["mc.root"]}, "version": 2}))
    assert_usage_error(jetdask(*run_args(work, fileset="v.json"), cwd=work), "fileset.version")
    assert not (work / "run").exists()


def test_metadata_typo_suggests_the_known_key(work):
    (work / "t.json").write_text(json.dumps({"Data": {"files": ["d.root"], "metadata": {"is_dta": True}}}))
    assert_usage_error(jetdask(*run_args(work, fileset="t.json"), cwd=work), "fileset.Data.metadata.is_dta",
                       "'is_data'")


def test_dataset_key_typo_suggests_the_known_key(work):
    (work / "k.json").write_text(json.dumps({"DY": {"files": ["d.root"], "metdata": {}}}))
    assert_usage_error(jetdask(*run_args(work, fileset="k.json"), cwd=work), "fileset.DY.metdata", "'metadata'")


@pytest.mark.parametrize("extra, needle", [
    (["--kwargs", "{not json"], "--kwargs"),
    (["--workers", "0"], "--workers"),
    (["--retries", "-1"], "--retries"),
    (["--memory-per-worker", "lots"], "--memory-per-worker"),
])
def test_bad_options(work, extra, needle):
    assert_usage_error(jetdask(*run_args(work, *extra), cwd=work), needle)
    assert not (work / "run").exists()


def test_unknown_cluster_kind(work):
    args = run_args(work)[:6] + ["--cluster", "slrum"]
    assert_usage_error(jetdask(*args, cwd=work), "--cluster", "'slurm'")


def test_resubmit_and_status_of_a_missing_run(work):
    assert_usage_error(jetdask("resubmit", str(work / "nope"), *NOWHERE, cwd=work), "not a jetdask run directory")
    assert_usage_error(jetdask("status", str(work / "nope"), cwd=work), "not a jetdask run directory")
    assert not (work / "nope").exists()


def test_preprocess_and_train_bad_inputs(work):
    (work / "prep.yaml").write_text("bogus_key: 1\n")
    assert_usage_error(jetdask("preprocess", "prep.yaml", "--fileset", "fileset.json", "--run-dir",
                               str(work / "prep"), *NOWHERE, cwd=work), "bogus_key")
    assert not (work / "prep").exists()
    assert_usage_error(jetdask("train", "--epochs", "0", cwd=work), "--epochs")


def test_non_root_file_is_reported_once_and_on_stderr(work):
    (work / "notroot.root").write_text("this is not a ROOT file\n")
    (work / "n.json").write_text(json.dumps({"DY": ["notroot.root"]}))
    p = jetdask("run", os.path.join(REPO, "analyses", "dimuon.py:Dimuon"), "--fileset", "n.json",
                "--run-dir", str(work / "run"), "--serial", "--no-progress", cwd=work)
    assert p.returncode == 3, p.stderr
    assert p.stdout == ""
    line = [x for x in p.stderr.splitlines() if "unreadable" in x]
    assert len(line) == 1 and line[0].count("notroot.root") == 1, p.stderr
