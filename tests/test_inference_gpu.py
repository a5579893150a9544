"""GPU handling: out-of-memory batches are halved (tested on CPU with torch's own OOM exception),
CUDA taggers make tasks ask dask for a ``GPU`` resource; CUDA runs are marked ``gpu``."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from jetdask import Analysis
from jetdask.errors import MemoryBudgetError
from jetdask.inference import InferenceStep, Tagger, TaggerScores, get_layout, save_checkpoint, tagger_resources
from jetdask.inference.batching import halving_plan, predict
from jetdask.inference.registry import LoadedModel, load_model
from jetdask.models import DeepCSV


@pytest.mark.parametrize("size, failed, nxt", [
    (4096, False, 4096), (4096, True, 2048), (3, True, 1), (2, True, 1), (1, True, None), (1, False, 1),
])
def test_halving_plan(size, failed, nxt):
    assert halving_plan(size, failed) == nxt


class OOMAbove(torch.nn.Module):
    """A linear model that raises CUDA's out-of-memory error for batches larger than ``limit``."""

    def __init__(self, limit: int):
        super().__init__()
        torch.manual_seed(1)
        self.lin = torch.nn.Linear(65, 3)
        self.limit = limit
        self.seen: list = []

    def forward(self, x):
        self.seen.append(len(x))
        if len(x) > self.limit:
            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {len(x)} jets")
        return self.lin(x)


def _loaded(module):
    return LoadedModel(module, get_layout("deepcsv"), ("a", "b", "c"), None, True, torch.device("cpu"), {})


def test_out_of_memory_halves_the_batch_and_goes_on():
    x = np.random.default_rng(0).normal(size=(1000, 65)).astype(np.float32)
    m = OOMAbove(limit=70)
    got = predict(_loaded(m), [x], batch_size=300)
    with torch.no_grad():
        want = torch.softmax(m.lin(torch.from_numpy(x)), dim=1).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert m.seen[:4] == [300, 150, 75, 37]                  # halved until it fits
    assert set(m.seen[3:-1]) == {37} and m.seen[-1] == 1000 % 37   # then kept for the rest of the chunk
    m.seen.clear()
    predict(_loaded(m), [x[:100]], batch_size=300)           # later chunks start from the smaller size
    assert m.seen == [37, 37, 26]


def test_one_jet_that_does_not_fit_is_a_memory_budget_error():
    x = np.zeros((5, 65), np.float32)
    with pytest.raises(MemoryBudgetError, match="one jet does not fit"):
        predict(_loaded(OOMAbove(limit=0)), [x], batch_size=4)


def test_cuda_taggers_ask_for_a_gpu_resource(tmp_path):
    ck = save_checkpoint(str(tmp_path / "csv.pt"), DeepCSV(hidden=(8,)))
    cpu, gpu, auto = Tagger("cpu", ck, device="cpu"), Tagger("gpu", ck, device="cuda"), Tagger("auto", ck)
    assert tagger_resources([cpu, auto]) == {} and tagger_resources([cpu, gpu]) == {"GPU": 1}
    assert tagger_resources([Tagger("g1", ck, device="cuda:1")]) == {"GPU": 1}
    assert InferenceStep([cpu, gpu]).resources == {"GPU": 1} and InferenceStep([cpu]).resources == {}
    assert TaggerScores([gpu]).resources == {"GPU": 1} and TaggerScores([cpu]).resources == {}
    assert Analysis.resources == {}


def test_dy_analysis_exposes_its_resources(tmp_path):
    import importlib.util

    from conftest import REPO
    spec = importlib.util.spec_from_file_location("dy_jets_gpu_test", REPO / "analyses" / "dy_jets.py")
    mod = importlib.util.module_from_spec(spec)
    import sys
    sys.modules[spec.name] = mod          # its dataclasses resolve their annotations through sys.modules
    spec.loader.exec_module(mod)
    ck = save_checkpoint(str(tmp_path / "csv.pt"), DeepCSV(hidden=(8,)))
    assert mod.DYJets(taggers=[{"name": "g", "source": ck, "device": "cuda"}]).resources == {"GPU": 1}
    assert mod.DYJets(taggers=[{"name": "c", "source": ck, "device": "cpu"}]).resources == {}
    assert mod.DYJets().resources == {}


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_scores_equal_cpu_scores(tmp_path):
    torch.manual_seed(2)
    ck = save_checkpoint(str(tmp_path / "csv.pt"), DeepCSV(hidden=(32, 32)))
    x = np.random.default_rng(3).normal(size=(5000, 65)).astype(np.float32)
    cpu = predict(load_model(Tagger("c", ck, device="cpu")), [x])
    gpu_model = load_model(Tagger("g", ck, device="cuda"))
    assert gpu_model.device.type == "cuda"
    np.testing.assert_allclose(predict(gpu_model, [x]), cpu, rtol=1e-4, atol=1e-5)
