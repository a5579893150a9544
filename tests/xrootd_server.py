"""Real XRootD servers for tests: the one ``.ci/run`` starts, and private ones the outage tests stop.

A test that needs a server fails (not skips) when ``JETDASK_REQUIRE_XROOTD`` is set
and the server is missing.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest

from conftest import REPO, free_port

SCRIPTS = os.path.join(os.environ.get("JETDASK_SHARED", str(REPO.parent / "shared")), "cluster")


def _missing(msg: str):
    if os.environ.get("JETDASK_REQUIRE_XROOTD"):
        pytest.fail(msg)
    pytest.skip(msg)


def answers(url: str, timeout: int = 5) -> bool:
    from XRootD import client
    st, _ = client.FileSystem(url).stat("/", timeout=timeout)
    return st.ok


def shared_server() -> tuple[str, str]:
    """``(url, export_dir)`` of the server started by ``.ci/run`` (``LOCAL_XROOTD_URL``/``_EXPORT``)."""
    url, export = os.environ.get("LOCAL_XROOTD_URL"), os.environ.get("LOCAL_XROOTD_EXPORT")
    if not url or not export:
        _missing("no local XRootD server (LOCAL_XROOTD_URL): start it as .ci/run does")
    if not answers(url):
        _missing(f"the XRootD server {url} does not answer")
    return url.rstrip("/"), export


def tagged_export():
    """Generator for a module fixture: ``(url, export_dir, tag)`` of the shared server, the test
    module's files going under ``export_dir/tag``, removed afterwards."""
    url, export = shared_server()
    tag = f"jetdask-test-{uuid.uuid4().hex[:8]}"
    yield url, export, tag
    shutil.rmtree(os.path.join(export, tag), ignore_errors=True)


def publish(export: str, url: str, src: str, rel: str) -> str:
    """Copy ``src`` to ``export/rel`` (readable by the server's user); its root:// URL."""
    dest = os.path.join(export, rel)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    d = os.path.dirname(dest)
    while len(d) > len(export.rstrip("/")):
        os.chmod(d, 0o755)
        d = os.path.dirname(d)
    shutil.copyfile(src, dest)
    os.chmod(dest, 0o644)
    return f"{url}//{rel}"


class PrivateServer:
    """A server of this test alone (own port and directory), to stop and start again."""

    def __init__(self):
        if not os.path.exists(os.path.join(SCRIPTS, "start-local-xrootd.sh")):
            _missing(f"{SCRIPTS}/start-local-xrootd.sh is missing")
        if os.geteuid() != 0:
            _missing("starting an XRootD server needs root")
        self.port = free_port()
        self.base = f"/tmp/jetdask-xrootd-{self.port}"
        os.makedirs(self.base, exist_ok=True)
        os.chmod(self.base, 0o755)
        self.export = os.path.join(self.base, "export")
        self.url = f"root://localhost:{self.port}"
        self.env = dict(os.environ, LOCAL_XROOTD_DIR=self.base, LOCAL_XROOTD_EXPORT=self.export,
                        LOCAL_XROOTD_PORT=str(self.port))

    def start(self) -> None:
        r = subprocess.run(["bash", os.path.join(SCRIPTS, "start-local-xrootd.sh")], env=self.env,
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            pytest.fail(f"XRootD server did not start: {r.stderr[-500:]}")

    def stop(self) -> None:
        subprocess.run(["bash", os.path.join(SCRIPTS, "stop-local-xrootd.sh")], env=self.env,
                       capture_output=True, timeout=60)

    def publish(self, src: str, rel: str) -> str:
        return publish(self.export, self.url, src, rel)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)
