"""The documentation builds with warnings as errors, and the built site works from the file system.

The build is the one `bash scripts/docs.sh` runs (Sphinx, -W --keep-going), into a temporary
folder. The site must open without a server: every page reaches its stylesheets, scripts and
images by relative paths that exist; the generated reference pages and the notebooks (with
their stored figures) are there. Where Chromium is installed, a headless screenshot of the front
page opened from file:// must show the page (not a blank or unstyled one).
"""
from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
from urllib.parse import unquote, urlparse

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(REPO, "docs")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("docs-html")
    p = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                        "-d", str(out / ".doctrees"), DOCS, str(out / "html")],
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-6000:]
    return out / "html"


def _pages() -> list[str]:
    return sorted(os.path.relpath(f, DOCS)[:-3] for f in glob.glob(os.path.join(DOCS, "**", "*.md"), recursive=True)
                  if not os.path.relpath(f, DOCS).startswith(("_", "notebooks")))


@pytest.mark.slow
def test_every_page_is_built_and_reaches_its_files_by_relative_paths(site):
    notebooks = glob.glob(os.path.join(DOCS, "notebooks", "*.ipynb"))
    pages = _pages() + [f"notebooks/{os.path.basename(n)[:-6]}" for n in notebooks]
    assert len(pages) >= 25
    for page in pages:
        html_path = site / (page + ".html")
        assert html_path.exists(), page
        html = html_path.read_text()
        links = re.findall(r'(?:href|src)="([^"#]+)', html)
        assert any("_static/" in u and u.endswith(".css") for u in links), page
        for url in links:
            parsed = urlparse(url)
            if parsed.scheme or url.startswith("//"):
                continue            # links to other sites (none is needed to show the page)
            assert not url.startswith("/"), (page, url)
            target = os.path.normpath(os.path.join(os.path.dirname(html_path), unquote(parsed.path)))
            assert os.path.exists(target), (page, url)


@pytest.mark.slow
def test_the_generated_pages_and_the_notebooks_are_in_the_site(site):
    cli = (site / "reference" / "cli.html").read_text()
    for sub in ("run", "resubmit", "status", "sample", "preprocess", "train", "evaluate", "plot", "demo"):
        assert f"jetdask {sub}" in cli, sub
    assert "--chunk-size" in cli and "--memory-per-worker" in cli
    config = (site / "reference" / "configuration.html").read_text()
    assert "jetdask.chunk-size" in config and "jetdask.xrootd.connection-window" in config
    policy_page = (site / "reference" / "failure-policy.html").read_text()
    assert policy_page.count("<tr") >= 13
    study = (site / "notebooks" / "02_dy_study.html").read_text()
    assert study.count("<img") >= 2            # the stored figures of the notebook
    assert "data:image/png;base64" in study or glob.glob(str(site / "_images" / "*.png"))


@pytest.mark.slow
def test_the_front_page_opens_from_the_file_system_in_a_browser(site, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        pytest.skip("no Chromium here (Debian: apt-get install chromium)")
    shot = tmp_path / "index.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    f"--screenshot={shot}", "--window-size=1400,1000", (site / "index.html").as_uri()],
                   capture_output=True, timeout=120)
    assert shot.exists()
    import matplotlib.image
    img = matplotlib.image.imread(str(shot))[..., :3]
    colours = {tuple(px) for px in (img[::10, ::10] * 255).astype(int).reshape(-1, 3)}
    assert len(colours) > 20, "blank page"
    # the theme's sidebar (styled, a light grey column) and dark body text are both there
    left, body = img[:, :200].mean(axis=(0, 1)), img[:, 400:900]
    assert 0.85 < left.mean() < 0.999, left
    assert (body.mean(axis=2) < 0.3).mean() > 0.005, "no text"
