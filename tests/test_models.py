"""The model classes of jetdask.models and the checkpoint format."""
from __future__ import annotations

import pytest
import torch

from jetdask.errors import ModelFileError
from jetdask.inference.registry import CHECKPOINT_KEYS, build_model, load_checkpoint, save_checkpoint
from jetdask.models import CLASSES, DeepCSV, DeepJet, ParticleTransformer, model_class


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def deepjet_inputs(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, 15, generator=g), torch.randn(n, 25, 16, generator=g),
            torch.randn(n, 25, 6, generator=g), torch.randn(n, 4, 12, generator=g)]


def part_inputs(n, p=12, c=21, seed=0):
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(n, c, p, generator=g)
    mom = torch.randn(n, 3, p, generator=g) * 10
    vec = torch.cat([mom, mom.norm(dim=1, keepdim=True) + 0.1], dim=1)
    mask = (torch.arange(p)[None, None, :] < torch.randint(1, p + 1, (n, 1, 1), generator=g)).float()
    return feats * mask, vec * mask, mask


def test_class_attributes_and_lookup():
    for cls, layout in ((DeepJet, "deepjet"), (DeepCSV, "deepcsv"), (ParticleTransformer, "part")):
        assert cls.layout == layout and cls.classes == CLASSES == ("b", "bb", "lepb", "c", "uds", "g")
        assert model_class(cls.__name__) is cls
    with pytest.raises(ModelFileError, match="unknown model class 'NoSuchModel'"):
        model_class("NoSuchModel")


def test_nominal_sizes():
    assert 200_000 < n_params(DeepJet()) < 300_000          # DeepJet-size
    assert n_params(DeepJet(summary_sizes=(8, 4, 4), dense=(16,))) < 15_000   # small test configurations
    assert n_params(DeepCSV()) > 40_000


@pytest.mark.parametrize("kw", [{}, {"summary": "pool", "summary_sizes": (8, 4, 4), "dense": (16,)}])
def test_deepjet_forward(kw):
    m = DeepJet(**kw).eval()
    with torch.inference_mode():
        out = m(*deepjet_inputs(7))
    assert out.shape == (7, 6) and torch.isfinite(out).all()


def test_deepcsv_forward():
    m = DeepCSV(hidden=(8, 8)).eval()
    assert m(torch.randn(5, 65)).shape == (5, 6)


def test_part_is_permutation_and_padding_invariant():
    torch.manual_seed(0)
    m = ParticleTransformer(embed_dims=(16,), n_heads=2, n_layers=2, n_cls_layers=1, pair_dims=(8,)).eval()
    f, v, mask = part_inputs(6)
    with torch.inference_mode():
        ref = m(f, v, mask)
        perm = torch.randperm(12)
        permuted = m(f[..., perm], v[..., perm], mask[..., perm])
        pad = lambda x: torch.cat([x, torch.zeros(*x.shape[:2], 5)], dim=2)  # noqa: E731
        padded = m(pad(f), pad(v), pad(mask))
    assert ref.shape == (6, 6) and torch.isfinite(ref).all()
    torch.testing.assert_close(permuted, ref, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(padded, ref, atol=1e-5, rtol=1e-4)


def test_part_handles_jets_without_candidates():
    m = ParticleTransformer(embed_dims=(16,), n_heads=2, n_layers=1, n_cls_layers=1, pair_dims=(8,)).eval()
    f, v, mask = part_inputs(4)
    mask[1] = 0
    with torch.inference_mode():
        out = m(f * mask, v * mask, mask)
    assert torch.isfinite(out).all()


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(1)
    m = DeepJet(summary="pool", summary_sizes=(8, 4, 4), dense=(16,)).eval()
    scaler = {"inputs": {"glob": {"mean": [0.0] * 15, "std": [2.0] * 15, "default": 0.0}}}
    path = save_checkpoint(str(tmp_path / "m.pt"), m, scaler=scaler, epoch=7, metadata={"sample": "x"})
    raw = torch.load(path, weights_only=True)        # plain data only
    assert set(raw) == set(CHECKPOINT_KEYS)
    ck = load_checkpoint(path)
    assert ck["model_class"] == "DeepJet" and ck["layout"] == "deepjet" and ck["classes"] == list(CLASSES)
    assert ck["epoch"] == 7 and ck["metadata"] == {"sample": "x"} and ck["scaler"]["inputs"]["glob"]["std"][0] == 2
    assert ck["model_kwargs"]["summary"] == "pool"
    m2 = build_model(ck["model_class"], ck["model_kwargs"], ck["state_dict"])
    x = deepjet_inputs(3)
    with torch.inference_mode():
        torch.testing.assert_close(m2(*x), m(*x), rtol=0, atol=0)


def test_load_checkpoint_rejects_other_files(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a jetdask checkpoint"):
        load_checkpoint(str(tmp_path / "other.pt"))


def test_tagger_files_do_not_import_the_registry():
    """modelfiles (reading tagger files) is below the registry: no import cycle between them."""
    import ast
    import inspect

    from jetdask.inference import modelfiles
    tree = ast.parse(inspect.getsource(modelfiles))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "registry" not in imported and "jetdask.inference.registry" not in imported
