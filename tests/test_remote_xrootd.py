"""The engine on root:// URLs of a real XRootD server: same outputs as local files, error
classes from the server, replicas, directory and glob datasets."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import dask
import pytest

from conftest import REPO, real_file
from engine_analyses import DimuonJets
from engine_helpers import assert_same_output, ledger_rows
from jetdask.engine.runner import Runner
from jetdask.errors import FileAccessError, TransientFileError
from jetdask.fileset import load_fileset
from jetdask.nanoaod import io
from readfiles import read_json
from xrootd_server import free_port, publish, tagged_export

pytestmark = pytest.mark.xrootd


@pytest.fixture(scope="module")
def server():
    yield from tagged_export()


def _remote_fileset(fileset_path: str, server, sub: str, out_path) -> str:
    """The fileset with every file copied to the server (``TAG/sub/``) and named by its URL."""
    url, export, tag = server
    fs = load_fileset(fileset_path).to_dict()
    for ds in fs.values():
        ds["files"] = {publish(export, url, p, f"{tag}/{sub}/{os.path.basename(p)}"): t for p, t in ds["files"].items()}
    with open(out_path, "w") as f:
        json.dump(fs, f)
    return str(out_path)


def _cli(*args, timeout=900):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "jetdask.cli", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=str(REPO))



def test_server_errors_are_classified(server, tmp_path):
    url, export, tag = server
    good = publish(export, url, real_file("nano_dy.root"), f"{tag}/err/good.root")
    with pytest.raises(FileAccessError, match=r"\[3011\]") as e:
        io.open_tree(f"{url}//{tag}/err/missing.root", cache=False)
    assert not e.value.transient
    (tmp_path / "junk.root").write_bytes(b"not a ROOT file at all")
    junk = publish(export, url, str(tmp_path / "junk.root"), f"{tag}/err/junk.root")
    with pytest.raises(FileAccessError) as e:
        io.open_tree(junk, cache=False)
    assert not e.value.transient
    denied = publish(export, url, real_file("nano_dy.root"), f"{tag}/err/denied.root")
    os.chmod(os.path.join(export, tag, "err", "denied.root"), 0)
    with pytest.raises(FileAccessError, match=r"\[3010\]") as e:
        io.open_tree(denied, cache=False)
    assert not e.value.transient
    with dask.config.set({"jetdask.open-timeout": 2}):
        with pytest.raises(TransientFileError, match="Operation expired"):
            io.open_tree(f"root://localhost:{free_port()}//{tag}/err/good.root", cache=False)
    assert io.file_info(good)["num_entries"] == 40


@pytest.mark.cluster
def test_jetdask_sample_on_the_server_equals_local(server, tmp_path):
    """`jetdask sample` files copied to the server: `jetdask run` over root:// (LocalCluster) gives
    the local-file output bin for bin, with the same chunk ids; the ledger names the URL read."""
    p = _cli("sample", "--out", str(tmp_path / "sample"), "--events", "4000", "--files", "1", "--seed", "3")
    assert p.returncode == 0, p.stderr
    local_fs = str(tmp_path / "sample" / "fileset.json")
    remote_fs = _remote_fileset(local_fs, server, "sample", tmp_path / "remote.json")
    spec = f"{REPO}/tests/engine_analyses.py:DimuonJets"
    p = _cli("run", spec, "--fileset", remote_fs, "--run-dir", str(tmp_path / "remote"), "--chunk-size", "1500",
             "--workers", "2", "--no-progress")
    assert p.returncode == 0, p.stderr[-2000:]
    from jetdask.engine.outputs import load_output
    remote = load_output(str(tmp_path / "remote"))
    local = Runner(DimuonJets(), local_fs, str(tmp_path / "local"), serial=True, chunk_size=1500,
                   progress=False).run()
    assert_same_output(remote, local)
    ids = lambda d: {r[0] for r in ledger_rows(d, "SELECT id FROM chunks WHERE state='done'")}  # noqa: E731
    assert ids(str(tmp_path / "remote")) == ids(str(tmp_path / "local"))
    served = ledger_rows(str(tmp_path / "remote"), "SELECT path, replica FROM chunks WHERE state='done'")
    assert served and all(path == rep and rep.startswith("root://") for path, rep in served)


def test_dy_study_over_xrootd_equals_local(server, tmp_path):
    from dy_jets import DYJets
    url, export, tag = server
    files = {n: real_file(n) for n in ("nano_dy.root", "nano_dimuon.root")}
    urls = {n: publish(export, url, p, f"{tag}/dy/{n}") for n, p in files.items()}

    def fileset(f):
        return {"DY": {"files": [f["nano_dy.root"]], "metadata": {"xsec": 6077.2}},
                "Data": {"files": [f["nano_dimuon.root"]], "metadata": {"is_data": True, "lumi": 1.0}}}
    remote = Runner(DYJets(), fileset(urls), str(tmp_path / "r"), serial=True, chunk_size=15, progress=False).run()
    local = Runner(DYJets(), fileset(files), str(tmp_path / "l"), serial=True, chunk_size=15, progress=False).run()
    assert remote.complete
    assert_same_output(remote, local)


@pytest.mark.slow
def test_preprocessing_over_xrootd_equals_local(server, tmp_path):
    import numpy as np

    from jetdask.preprocessing import shards
    from jetdask.preprocessing.pipeline import preprocess
    url, export, tag = server
    path = real_file("pfnano.root")
    cfg = {"features": ["Jet_DeepCSV_*", "Jet_pt", "Jet_eta"], "reweighting": {"min_count": 3},
           "outputs": {"plots": False}}
    outs = {}
    for name, f in (("local", path), ("remote", publish(export, url, path, f"{tag}/prep/pfnano.root"))):
        fs = tmp_path / f"{name}.json"
        fs.write_text(json.dumps({"real": {"files": {f: "Events"}, "metadata": {"is_data": False}}}))
        outs[name] = preprocess(cfg, str(fs), str(tmp_path / name), serial=True, progress=False, verbose=False)
        assert outs[name].complete
    for fn in ("scaler.json", "weights.json"):
        assert read_json(tmp_path / "local" / fn) == read_json(tmp_path / "remote" / fn)
    for s in ("train", "validation", "test"):
        a = shards.load_tensors(os.path.join(outs["local"].run_dir, "tensors", s))
        b = shards.load_tensors(os.path.join(outs["remote"].run_dir, "tensors", s))
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=f"{s}/{k}")


def test_replicas_dead_or_missing_first(server, small_sample, tmp_path):
    """The first URL of each file is a server that does not answer, or a file the server lacks:
    every chunk is read from the next replica, and the ledger says which."""
    url, export, tag = server
    fs = load_fileset(small_sample).to_dict()
    dead = f"root://localhost:{free_port()}"
    for i, ds in enumerate(fs.values()):
        files = []
        for p in ds["files"]:
            live = publish(export, url, p, f"{tag}/rep/{os.path.basename(p)}")
            name = os.path.basename(p)
            first = f"{dead}//{tag}/rep/{name}" if i % 2 == 0 else f"{url}//{tag}/rep/missing-{name}"
            files.append([first, live])
        ds["files"] = files
    with dask.config.set({"jetdask.open-timeout": 2}):
        out = Runner(DimuonJets(), fs, str(tmp_path / "run"), serial=True, chunk_size=1500, progress=False).run()
    local = Runner(DimuonJets(), small_sample, str(tmp_path / "local"), serial=True, chunk_size=1500,
                   progress=False).run()
    assert out.complete
    assert_same_output(out, local)
    served = ledger_rows(str(tmp_path / "run"), "SELECT path, replica FROM chunks WHERE state='done'")
    assert served and all(rep != path and rep.startswith(url) and "missing" not in rep for path, rep in served)


def test_chunk_task_reports_every_replica(server, small_sample):
    """Both replicas missing: the chunk fails (permanent) naming each; with one unreachable: transient."""
    from jetdask.chunk import Chunk
    from jetdask.engine.task import run_chunk
    url, export, tag = server
    src = next(iter(load_fileset(small_sample).to_dict().values()))["files"]
    good = publish(export, url, next(iter(src)), f"{tag}/gone/f.root")
    uuid_ = io.file_info(good)["uuid"]
    missing = [f"{url}//{tag}/gone/a.root", f"{url}//{tag}/gone/b.root"]
    out = run_chunk(DimuonJets(save_arrays=False), Chunk("D", missing[0], "Events", 0, 20, uuid_, {}, (missing[1],)))
    assert out.status == "failed" and "all 2 replicas failed" in out.message
    assert out.message.count("[3011]") == 2 and all(m in out.message for m in missing)
    dead = f"root://localhost:{free_port()}//{tag}/gone/f.root"
    with dask.config.set({"jetdask.open-timeout": 2}):
        out = run_chunk(DimuonJets(save_arrays=False), Chunk("D", missing[0], "Events", 0, 20, uuid_, {}, (dead,)))
    assert out.status == "transient" and out.error_type == "TransientFileError"
    assert "Operation expired" in out.message and "[3011]" in out.message
    out = run_chunk(DimuonJets(save_arrays=False), Chunk("D", missing[0], "Events", 0, 20, uuid_, {}, (good,)))
    assert out.status == "done" and out.replica == good and out.n_events == 20, out.message


def test_globs_and_directories_listed_once(server, small_sample, tmp_path):
    url, export, tag = server
    fs = load_fileset(small_sample).to_dict()
    mc = [p for ds in fs.values() if not ds["metadata"].get("is_data") for p in ds["files"]]
    publish(export, url, mc[0], f"{tag}/glob/a/f1.root")
    publish(export, url, mc[1], f"{tag}/glob/b/f2.root")
    fileset = {"G": {"files": [f"{url}//{tag}/glob/*/f*.root"]},
               "Dir": {"files": [f"{url}//{tag}/glob/a/"]},
               "Late": {"files": [f"{url}//{tag}/late/*.root"]}}
    run = str(tmp_path / "run")
    out = Runner(DimuonJets(), fileset, run, serial=True, chunk_size=1500, progress=False).run()
    assert not out.complete                      # "Late" has no directory yet
    files = ledger_rows(run, "SELECT dataset, path, state, pattern FROM files ORDER BY dataset, path")
    assert [(d, p.rsplit(tag, 1)[1], s) for d, p, s, _ in files] == [
        ("Dir", "/glob/a/f1.root", "ok"), ("G", "/glob/a/f1.root", "ok"), ("G", "/glob/b/f2.root", "ok"),
        ("Late", "/late/*.root", "failed")]
    assert {pat for d, _, s, pat in files if d == "G"} == {f"{url}//{tag}/glob/*/f*.root"}
    # new files on the server: the planned datasets keep their files; the failed listing is redone
    publish(export, url, mc[1], f"{tag}/glob/a/f3.root")
    publish(export, url, mc[0], f"{tag}/late/x.root")
    again = Runner(DimuonJets(), None, run, serial=True, progress=False).resubmit()
    assert again.complete
    files = ledger_rows(run, "SELECT dataset, path, state FROM files ORDER BY dataset, path")
    assert [(d, p.rsplit(tag, 1)[1], s) for d, p, s in files] == [
        ("Dir", "/glob/a/f1.root", "ok"), ("G", "/glob/a/f1.root", "ok"), ("G", "/glob/b/f2.root", "ok"),
        ("Late", "/late/x.root", "ok")]
