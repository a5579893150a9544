"""The commands the documentation shows work: every ```bash block of every page under docs/.

The pages run in the order of the site (docs/index.md's tables of contents), one command at a
time, all in one copy of the repository, so a page may use what an earlier one made (the quick
start's sample and runs), as a reader going through the site would; run a single page with -k
only if it makes what it needs. Each command runs from the root of that copy (its tracked and
not-ignored files, as a fresh clone has them, with ../shared beside it), with ./.venv's commands
on the PATH. The sample the
pages make with ``--events 20000`` is made with 2000 events here. Blocks marked ```console are
only shown (they need a batch system, a server or a grid proxy). The README's commands are run
by tests/test_readme.py.
"""
from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from readfiles import read_text

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(REPO, "docs")
SMALL = ("--events 20000", "--events 2000")


def pages_in_order() -> list[str]:
    """Pages (paths relative to docs/, no suffix) in the order of the site's tables of contents."""
    all_pages = sorted(os.path.relpath(os.path.join(d, f), DOCS)[:-3]
                       for d, _, files in os.walk(DOCS) if "/_" not in d + "/" and "_build" not in d
                       for f in files if f.endswith(".md"))
    index = read_text(os.path.join(DOCS, "index.md"))
    order = ["index"]
    for block in re.findall(r"```\{toctree\}\n(.*?)```", index, flags=re.S):
        for entry in block.splitlines():
            entry = entry.strip()
            if not entry or entry.startswith(":"):
                continue
            for page in ([p for p in all_pages if fnmatch.fnmatch(p, entry)] if "*" in entry else [entry]):
                if page not in order:
                    order.append(page)
    return order + [p for p in all_pages if p not in order]


def commands(text: str) -> list[str]:
    """The shell commands of a page's ```bash blocks, continuation lines joined."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        out += [c.strip() for c in block.replace("\\\n", " ").splitlines()
                if c.strip() and not c.strip().startswith("#")]
    return out


PAGES = [p for p in pages_in_order() if commands(read_text(os.path.join(DOCS, p + ".md")))]


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """A copy of the repository's tracked and not-ignored files, with ../shared beside it."""
    root = tmp_path_factory.mktemp("docs-clone")
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    dest = root / "jetdask"
    for rel in filter(None, listed):
        src = os.path.join(REPO, rel)
        if os.path.isfile(src):
            os.makedirs(dest / os.path.dirname(rel), exist_ok=True)
            shutil.copy2(src, dest / rel)
    shared = os.environ.get("JETDASK_SHARED", os.path.join(os.path.dirname(REPO), "shared"))
    if os.path.isdir(shared):
        os.symlink(shared, root / "shared")
    return dest


def _env(clone) -> dict:
    return dict(os.environ, PYTHONPATH=str(clone),
                PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))


def test_every_page_with_commands_is_found():
    assert {"getting-started/quickstart", "tutorials/dy-jets", "tutorials/training"} <= set(PAGES)
    assert PAGES.index("getting-started/quickstart") < PAGES.index("tutorials/dy-jets")


@pytest.mark.slow
@pytest.mark.cluster
@pytest.mark.parametrize("page", PAGES)
def test_the_commands_of_a_page_run(page, clone):
    for cmd in commands(read_text(os.path.join(DOCS, page + ".md"))):
        cmd = cmd.replace(*SMALL)
        start = time.perf_counter()
        p = subprocess.run(["bash", "-c", cmd], cwd=clone, env=_env(clone), capture_output=True, text=True,
                           timeout=1200)
        print(f"{time.perf_counter() - start:7.1f} s  {cmd[:120]}")      # shown with -rA or on failure
        assert p.returncode == 0, (page, cmd, p.stdout[-2000:], p.stderr[-4000:])
        assert "Traceback" not in p.stderr, (page, cmd, p.stderr[-4000:])
    if page == "tutorials/dy-jets":
        assert list((clone / "runs" / "dy" / "plots").glob("*.png"))
    if page == "tutorials/training":
        assert (clone / "runs" / "evaluation" / "auc.json").exists()
        assert (clone / "runs" / "part" / "best.pt").exists()
