"""CLI points: chunk sizes as a user writes them, a chunk size lowered to the files' clusters says so,
and a mistyped subcommand or analysis class gets a suggestion."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest

from jetdask.cli import build_parser
from jetdask.cli.common import event_count
from jetdask.engine import planning
from jetdask.fileset import load_fileset

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JETDASK = os.path.join(REPO, ".venv", "bin", "jetdask")


def jetdask(*args, cwd):
    cmd = [JETDASK] if os.path.exists(JETDASK) else [sys.executable, "-m", "jetdask.cli"]
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(cmd + list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
                          check=False)


@pytest.mark.parametrize("text, value", [("5000", 5000), ("1e5", 100_000), ("1E5", 100_000), ("100k", 100_000),
                                         ("2M", 2_000_000), ("100_000", 100_000), ("2.5e3", 2500),
                                         ("5000.0", 5000), (" 7 ", 7)])
def test_event_counts_as_written(text, value):
    assert event_count(text) == value


@pytest.mark.parametrize("text, needle", [("1.5", "whole number"), ("1e-3", "whole number"), ("0", ">= 1"),
                                          ("-5", ">= 1"), ("abc", "not a number"), ("nan", "whole number"),
                                          ("10x", "not a number")])
def test_event_counts_refused(text, needle):
    with pytest.raises(argparse.ArgumentTypeError, match=needle):
        event_count(text)


def test_run_parses_a_float_chunk_size():
    args = build_parser().parse_args(["run", "a.py:A", "--fileset", "f", "--run-dir", "r", "--chunk-size", "1e5"])
    assert args.chunk_size == 100_000


def _file(n, clusters):
    return {"num_entries": n, "clusters": clusters}


@pytest.mark.parametrize("files, chunk_size, largest, needle", [
    ([_file(10_000, list(range(0, 10_001, 2000)))], 5000, 4000, "clusters of 2000 events"),
    ([_file(10_000, list(range(0, 10_001, 2000)))], 4000, 4000, ""),           # as requested
    ([_file(3000, [0, 3000])], 5000, 3000, ""),                                  # whole files
    ([_file(4000, [0, 4000])], 3000, 2000, "up to 4000 events are longer, and are cut evenly"),
    ([_file(10_000, [0, 2000, 5000, 7000, 10_000])], 4000, 3000, "clusters of 2000 to 3000 events"),
])
def test_cluster_alignment(files, chunk_size, largest, needle):
    text = planning.cluster_alignment(files, chunk_size, largest)
    assert (needle in text) if needle else text == ""


def test_a_lowered_chunk_size_says_why(small_sample, tmp_path):
    """The sample's files have 1000-event clusters: --chunk-size 2.5e3 gives chunks of 2000, said in one line."""
    fs = load_fileset(small_sample)
    p = planning.plan(fs, 2500)
    largest = max(c.num_entries for c in p.chunks)
    assert largest < 2500 and all(c.entry_start % 1000 == 0 for c in p.chunks)
    run = str(tmp_path / "run")
    r = jetdask("run", os.path.join(REPO, "analyses", "dimuon.py") + ":Dimuon", "--fileset", small_sample,
                "--run-dir", run, "--chunk-size", "2.5e3", "--serial", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    line = next(ln for ln in r.stderr.splitlines() if "chunks of at most" in ln)
    assert f"at most {largest} events (requested 2500: chunk edges follow the files' clusters of 1000 events" in line


def test_mistyped_subcommand_and_class_suggest(small_sample, tmp_path):
    p = jetdask("rn", "x", cwd=tmp_path)
    assert p.returncode == 2 and p.stderr.strip().endswith("did you mean 'run'?"), p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    p = jetdask("run", os.path.join(REPO, "analyses", "dimuon.py") + ":DiMuon", "--fileset", small_sample,
                "--run-dir", str(tmp_path / "run"), "--serial", cwd=tmp_path)
    assert p.returncode == 2 and p.stderr.strip().splitlines() == [
        f"jetdask: error: analysis: {os.path.join(REPO, 'analyses', 'dimuon.py')!r} has no 'DiMuon'; "
        "did you mean 'Dimuon'?"], p.stderr
    assert not (tmp_path / "run").exists()
