"""The README is true: its paths exist, every ``jetdask`` command in it parses, and the quick start
and the command-line examples run as written (in a temporary directory, on a smaller sample)."""
from __future__ import annotations

import glob
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

from jetdask.cli import build_parser
from readfiles import read_text

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = read_text(os.path.join(REPO, "README.md"))
SMALL_EVENTS = "2000"     # the README's sample has 20000 events per kind; the test uses fewer


def blocks(lang: str, section: str | None = None) -> list[str]:
    text = README
    if section is not None:
        start = text.index(section)
        nxt = re.search(r"^#{2,3} ", text[start + len(section):], flags=re.M)
        text = text[start: start + len(section) + (nxt.start() if nxt else len(text))]
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def commands(block: str) -> list[str]:
    """Shell commands of a block, continuation lines joined."""
    return [c.strip() for c in block.replace("\\\n", " ").splitlines() if c.strip() and not c.startswith("#")]


DOC_PAGES = {os.path.relpath(p, REPO): read_text(p)
             for p in sorted(glob.glob(os.path.join(REPO, "docs", "**", "*.md"), recursive=True))
             if "_build" not in p and "_generated" not in p}


@pytest.mark.parametrize("name", ["README.md", *DOC_PAGES])
def test_paths_in_the_readme_and_the_docs_exist(name):
    text = README if name == "README.md" else DOC_PAGES[name]
    found = set(re.findall(r"`((?:analyses|jetdask|cluster|benchmarks|scripts|notebooks|tests|docs)/[\w./*-]+)`", text))
    found |= set(re.findall(r"\b((?:analyses|cluster)/[\w-]+\.(?:py|yaml))\b", text))
    if name == "README.md":
        assert "analyses/dimuon.py" in found
    missing = [p for p in sorted(found) if not glob.glob(os.path.join(REPO, p.rstrip("/")))]
    assert not missing, (name, missing)


def test_the_readme_is_short_and_says_how_to_build_the_docs_and_ci_runs_its_test_commands():
    assert len(README.splitlines()) <= 150
    assert "bash scripts/docs.sh" in README and os.path.exists(os.path.join(REPO, "scripts", "docs.sh"))
    ci = read_text(os.path.join(REPO, ".ci", "run"))
    test_cmds = [c for c in commands(blocks("bash", "## Two commands")[1])]
    assert test_cmds == ["bash scripts/test.sh", "bash scripts/test.sh -m slow"]
    ci_lines = [line.strip() for line in ci.splitlines()]
    assert all(c in ci_lines for c in test_cmds) and "bash scripts/docs.sh" in ci_lines


def test_every_jetdask_command_in_the_readme_and_the_docs_parses():
    docs = [read_text(p) for p in sorted(glob.glob(os.path.join(REPO, "docs", "**", "*.md"), recursive=True))]
    cmds = [c for text in [README, *docs] for b in re.findall(r"```bash\n(.*?)```", text, flags=re.S)
            for c in commands(b) if c.startswith("jetdask ")]
    assert len(cmds) >= 10
    for c in cmds:
        argv = shlex.split(c, comments=True)[1:]
        try:
            build_parser().parse_args(argv)
        except SystemExit as err:
            assert err.code == 0 and argv == ["--version"], c


def _run(cmd: str, cwd, env) -> subprocess.CompletedProcess:
    p = subprocess.run(["bash", "-c", cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, (cmd, p.stdout[-2000:], p.stderr[-4000:])
    for noise in ("Traceback", "Worker process still alive", "CommClosedError", "Warning"):
        assert noise not in p.stderr, (cmd, p.stderr[-4000:])
    return p


@pytest.mark.slow
@pytest.mark.cluster
def test_quick_start_and_command_line_examples_run(tmp_path):
    shutil.copytree(os.path.join(REPO, "analyses"), tmp_path / "analyses")
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    quick = commands(blocks("bash", "## Quick start")[0])
    cli = commands(blocks("bash", "### Command line")[0])
    assert quick[0].startswith("jetdask sample") and "--events 20000" in quick[0]
    for cmd in quick + cli:
        _run(cmd.replace("--events 20000", f"--events {SMALL_EVENTS}"), tmp_path, env)
    status = _run("jetdask status runs/dimuon", tmp_path, env).stdout
    assert "split 0" in status and "planned:" in status
    (tmp_path / "quick.py").write_text(blocks("python", "## Quick start")[0])
    out = _run(f"{shlex.quote(sys.executable)} quick.py", tmp_path, env).stdout
    total = re.search(r"value=([0-9.e+]+)", out.strip().splitlines()[-1])     # WeightedSum(value=..., variance=...)
    assert total and float(total.group(1)) > 0, out
