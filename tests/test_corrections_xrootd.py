"""Correction files over ``root://`` from the real local XRootD server (the one ``.ci/run``
starts): the DY study with its synthetic correction files served remotely gives the bins of the
local files, in real LocalCluster workers that each read every file once; a missing remote file
is one line naming it."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from conftest import REPO
from engine_helpers import assert_same_output, local_client
from jetdask.corrections import loader
from jetdask.engine.runner import Runner
from jetdask.errors import FileAccessError
from xrootd_server import publish, tagged_export

pytestmark = pytest.mark.xrootd
FILES = ("btagging.json.gz", "puWeights.json.gz", "jet_jerc.json.gz")
SPEC = str(REPO / "analyses" / "dy_jets.py") + ":DYJets"


@pytest.fixture(scope="module")
def server():
    yield from tagged_export()


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    from jetdask.synthetic import generate_sample
    return generate_sample(str(tmp_path_factory.mktemp("xrdcorr") / "s"), events=1200, files=1, seed=17,
                           mismodel=1.0, workers=1)


def _remote_config(sample, server, out_dir, rename=None) -> str:
    """``corrections.yaml`` of the sample with every file copied to the server and named by its URL
    (``rename``: {file: name on the server}, to point at a file that is not there)."""
    url, export, tag = server
    local = os.path.dirname(sample)
    urls = {f: publish(export, url, os.path.join(local, f), f"{tag}/pog/{f}") for f in FILES}
    for f, other in (rename or {}).items():
        urls[f] = f"{url}//{tag}/pog/{other}"
    with open(os.path.join(local, "corrections.yaml")) as f:
        cfg = yaml.safe_load(f)
    for block in cfg.values():
        if isinstance(block, dict) and "file" in block:
            block["file"] = urls[block["file"]]
    path = os.path.join(str(out_dir), "corrections-remote.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f)
    return path


def _ana(corrections):
    from jetdask.plugin import load_analysis
    return load_analysis(SPEC, corrections=corrections, systematics=["pileup", "btag_hf", "jesTotal", "jer"])


def _load_count():
    from jetdask.corrections.loader import load_count
    return load_count()


@pytest.mark.cluster
def test_remote_correction_files_in_real_workers_equal_local(sample, server, tmp_path):
    remote = _remote_config(sample, server, tmp_path)
    ana = _ana(remote)
    cfg = ana.corrections_config
    paths = {b["file"].path for b in cfg.blocks.values() if b.get("file") is not None}
    assert paths and all(p.startswith("root://") for p in paths)
    prov = {f["path"] for f in cfg.provenance()["files"]}
    assert prov == paths
    local_ana = _ana(os.path.join(os.path.dirname(sample), "corrections.yaml"))
    with Runner(local_ana, sample, str(tmp_path / "local"), serial=True, chunk_size=300, progress=False) as r:
        local = r.run()
    with local_client(n_workers=1, memory_limit="2GiB") as client, \
            Runner(ana, sample, str(tmp_path / "remote"), client, chunk_size=300, progress=False) as r:
        out = r.run()
        loads = client.run(_load_count)
    assert out.complete and out.counts.get("done", 0) >= 4, out.counts
    assert list(loads.values()) == [len(paths)], loads       # each remote file read once by the worker
    assert_same_output(out, local, atol_of_largest=1e-12)
    # the provenance names the URLs read, with the same sha256 as the local files
    import json
    with open(tmp_path / "remote" / "output" / "metadata.json") as f:
        files = json.load(f)["provenance"]["corrections"]["files"]
    by_name = {os.path.basename(f["path"]): f["sha256"] for f in files}
    for name, digest in by_name.items():
        assert digest == loader.sha256_of(os.path.join(os.path.dirname(sample), name))


def test_missing_remote_file_is_one_line_naming_it(sample, server, tmp_path):
    url, _, tag = server
    missing = f"{url}//{tag}/pog/nope.json.gz"
    with pytest.raises(FileAccessError) as e:
        loader.ref_for(missing)
    msg = str(e.value)
    assert "\n" not in msg and missing in msg and "[3011]" in msg, msg
    remote = _remote_config(sample, server, tmp_path, rename={"btagging.json.gz": "nope.json.gz"})
    p = subprocess.run([sys.executable, "-m", "jetdask.cli", "run", SPEC, "--fileset", sample, "--run-dir",
                        str(tmp_path / "run"), "--corrections", remote, "--serial", "--no-progress"],
                       capture_output=True, text=True, timeout=300, check=False)
    assert p.returncode != 0
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and missing in lines[0] and "Traceback" not in p.stderr, p.stderr
