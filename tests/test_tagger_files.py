"""Tagger files never run code: hostile checkpoints are refused through load_model and the CLI.

Every hostile file tries to create a marker file; each test asserts the refusal (a
ModelFileError naming the file) and that the marker was never created. The CLI tests run real
``jetdask`` processes.
"""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch

from conftest import REPO, real_file
from jetdask.errors import ModelFileError
from jetdask.inference import Tagger, check_tagger, load_checkpoint, load_model, save_checkpoint
from jetdask.inference.modelfiles import check_torchscript, pickle_globals
from jetdask.inference.registry import clear_cache
from jetdask.models import CLASSES, DeepCSV, DeepJet, model_class, register_model, unregister_model


class _Payload:
    """Unpickling this runs ``touch marker`` (what an attacker's file would do)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _popen_checkpoint(path, marker):
    torch.save({"state_dict": {}, "model_class": "subprocess:Popen", "model_kwargs": {"args": ["touch", marker]},
                "layout": "deepjet", "classes": list(CLASSES), "scaler": None, "epoch": 0, "metadata": {}}, path)


def _raw_pickle(path, marker):
    with open(path, "wb") as f:
        pickle.dump({"state_dict": _Payload(marker)}, f)


def _torch_zip_reduce(path, marker):
    torch.save({"state_dict": {"w": torch.zeros(2)}, "model_class": "DeepCSV", "payload": _Payload(marker)}, path)


def _fake_torchscript(path, marker):
    """A zip shaped like TorchScript: Python in code/, a reduce payload in data.pkl."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("m/version", "3\n")
        z.writestr("m/data.pkl", pickle.dumps(_Payload(marker), protocol=2))
        z.writestr("m/constants.pkl", pickle.dumps((), protocol=2))
        z.writestr("m/code/__torch__.py", f"import os\nos.system('touch {marker}')\n")


def _fake_torchscript_protocol4(path, marker):
    """As above, the payload pickled with protocol 4 (names taken from the stack: STACK_GLOBAL)."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("m/version", "3\n")
        z.writestr("m/data.pkl", pickle.dumps(_Payload(marker), protocol=4))
        z.writestr("m/constants.pkl", pickle.dumps((), protocol=2))
        z.writestr("m/code/__torch__.py", "")


def _fake_torchscript_clean_pickles(path, marker):
    """TorchScript-shaped zip whose pickles are harmless but whose code/ is Python that touches the marker."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("m/version", "3\n")
        z.writestr("m/data.pkl", pickle.dumps({}, protocol=2))
        z.writestr("m/constants.pkl", pickle.dumps((), protocol=2))
        z.writestr("m/code/__torch__.py", f"import os\nos.system('touch {marker}')\n")


HOSTILE = {"popen": _popen_checkpoint, "raw_pickle": _raw_pickle, "torch_zip_reduce": _torch_zip_reduce,
           "fake_torchscript": _fake_torchscript, "fake_torchscript_p4": _fake_torchscript_protocol4,
           "fake_torchscript_code": _fake_torchscript_clean_pickles}


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


@pytest.fixture(params=sorted(HOSTILE))
def hostile(request, tmp_path):
    marker = tmp_path / "MARKER"
    path = tmp_path / f"{request.param}.pt"
    HOSTILE[request.param](str(path), str(marker))
    assert not marker.exists()
    return str(path), marker


def test_hostile_files_are_refused_by_load_model(hostile):
    path, marker = hostile
    for load in (lambda: load_model(Tagger("evil", path, layout="deepjet", classes=CLASSES, device="cpu")),
                 lambda: check_tagger(Tagger("evil", path, layout="deepjet")),
                 lambda: load_checkpoint(path)):
        with pytest.raises(ModelFileError) as info:
            load()
        assert info.value.path == path and "\n" not in str(info.value)
    assert not marker.exists()


def test_spec_cannot_name_a_module_path(tmp_path):
    marker = tmp_path / "MARKER"
    ck = save_checkpoint(str(tmp_path / "csv.pt"), DeepCSV(hidden=(8,)))
    t = Tagger("evil", ck, model_class="subprocess:Popen", model_kwargs={"args": ["touch", str(marker)]})
    with pytest.raises(ModelFileError, match="module path"):
        load_model(t)
    with pytest.raises(ModelFileError, match="module path"):
        model_class("os:system")
    assert not marker.exists()


@pytest.mark.parametrize("kwargs, match", [
    ({"bogus": 1}, r"\['bogus'\] are not arguments of DeepJet"),
    ({"summary": 3}, r"'summary'.* is a number, expected str"),
    ({"dense": "wide"}, r"'dense'.* is a str, expected list"),
    ({"n_classes": True}, r"'n_classes'.* is a bool, expected number"),
    ([1, 2], "must be a dict"),
])
def test_arguments_must_match_the_declared_ones(tmp_path, kwargs, match):
    ck = save_checkpoint(str(tmp_path / "dj.pt"), DeepJet(summary_sizes=(4, 2, 2), dense=(8,)), model_kwargs=kwargs)
    with pytest.raises(ModelFileError, match=match):
        load_model(Tagger("dj", ck, device="cpu"))


def test_module_paths_are_refused_even_for_jetdask_models(tmp_path):
    """A checkpoint names its class by a registry name; a module path (what pre-release jetdask
    wrote, or anything else) is refused with the names that are known."""
    m = DeepJet(summary="pool", summary_sizes=(4, 2, 2), dense=(8,))
    for name in ("jetdask.models.deepjet:DeepJet", "jetdask.models:DeepJet", "jetdask.models.deepjet:os"):
        path = save_checkpoint(str(tmp_path / "old.pt"), m, model_class=name)
        for load in (load_checkpoint, lambda p: load_model(Tagger("old", p, device="cpu"))):
            with pytest.raises(ModelFileError, match=r"is a module path.*known: \['DeepCSV', 'DeepJet'"):
                load(path)
    new = save_checkpoint(str(tmp_path / "new.pt"), m)
    assert isinstance(load_model(Tagger("new", new, device="cpu")).module, DeepJet)


class TinyNet(torch.nn.Module):
    layout = "deepcsv"
    classes = ("b", "l")

    def __init__(self, hidden: int = 4, scale: float = 1.0):
        super().__init__()
        self.config = {"hidden": hidden, "scale": scale}
        self.net = torch.nn.Sequential(torch.nn.Linear(65, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 2))

    def forward(self, x):
        return self.net(x)


def test_user_registered_class(tmp_path):
    ck = save_checkpoint(str(tmp_path / "tiny.pt"), TinyNet(hidden=3))
    with pytest.raises(ModelFileError, match="unknown model class 'TinyNet'"):
        load_model(Tagger("tiny", ck, device="cpu"))
    register_model("TinyNet", TinyNet)
    try:
        with pytest.raises(ValueError, match="jetdask model"):
            register_model("DeepJet", TinyNet)
        t = Tagger("tiny", ck, device="cpu")
        assert dict(t.models)["TinyNet"] is TinyNet       # travels with the spec to the workers
        lm = load_model(t)
        assert isinstance(lm.module, TinyNet) and lm.classes == ("b", "l") and lm.module.config["hidden"] == 3
        with pytest.raises(ModelFileError, match="'hidden'.* is a str"):
            load_model(Tagger("tiny2", ck, device="cpu", model_kwargs={"hidden": "3"}))
    finally:
        unregister_model("TinyNet")
    # a process that never registered it (a worker) loads it from the spec's snapshot
    clear_cache()
    assert isinstance(load_model(t).module, TinyNet)
    unregister_model("TinyNet")


def test_real_torchscript_model_passes_the_scan():
    path = real_file("pn_model.pt")
    check_torchscript(path)
    with zipfile.ZipFile(path) as z:
        names = pickle_globals(z.read([n for n in z.namelist() if n.endswith("data.pkl")][0]))
    assert any(m.startswith("__torch__.ParticleNet") for m, _ in names)
    assert {m.split(".")[0] for m, _ in names} <= {"__torch__", "torch", "collections"}
    lm = load_model(Tagger("pn", path, layout="deepjet", classes=("a", "b"), device="cpu"))
    assert isinstance(lm.module, torch.jit.ScriptModule)


def test_pickle_scan_sees_stack_globals():
    assert ("posix", "system") in pickle_globals(pickle.dumps(_Payload("/x"), protocol=2))
    names = pickle_globals(pickle.dumps(_Payload("/x"), protocol=4))    # STACK_GLOBAL: never allowed
    assert names == {("?stack", "posix.system")}
    assert pickle_globals(pickle.dumps({"a": np.float32(1.0).item()}, protocol=4)) == set()


# ----------------------------------------------------------------------------- real processes

def _jetdask(*args, cwd):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "jetdask.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_cli_run_refuses_hostile_taggers(tmp_path, hostile):
    path, marker = hostile
    fileset = tmp_path / "fileset.json"
    fileset.write_text(json.dumps({"DY": {"files": [real_file("nano_dy.root")]}}))
    spec = {"taggers": [{"name": "evil", "source": path, "layout": "deepjet", "classes": list(CLASSES)}]}
    run_dir = tmp_path / "run"
    p = _jetdask("run", f"{REPO}/analyses/dy_jets.py:DYJets", "--fileset", str(fileset), "--run-dir", str(run_dir),
                 "--kwargs", json.dumps(spec), "--workers", "1", "--no-progress", cwd=tmp_path)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and path in lines[0] and lines[0].startswith("jetdask: error: tagger file"), p.stderr
    assert not run_dir.exists()                 # refused before the runner (and any cluster) started
    assert not marker.exists()


def test_cli_evaluate_refuses_the_popen_checkpoint(tmp_path):
    marker = tmp_path / "MARKER"
    path = str(tmp_path / "evil.pt")
    _popen_checkpoint(path, str(marker))
    p = _jetdask("evaluate", f"evil={path}", "--preprocessed", str(tmp_path), "--out", str(tmp_path / "ev"),
                 cwd=tmp_path)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "subprocess:Popen" in lines[0] and path in lines[0], p.stderr
    assert not marker.exists()
