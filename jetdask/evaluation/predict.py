"""Class probabilities of a checkpoint on a preprocessing split, optionally under FGSM / PGD.

The model, classes and inference scaler come from the checkpoint (the same ones the inference
pass uses); inputs are built by :class:`jetdask.training.data.SplitData` with that scaler.
"""
from __future__ import annotations

import numpy as np


def load(path: str, device: str = "cpu"):
    """(module in eval mode, checkpoint dict)."""
    from ..inference.registry import build_model, load_checkpoint
    ckpt = load_checkpoint(path)
    model = build_model(ckpt["model_class"], ckpt["model_kwargs"], ckpt["state_dict"]).to(device)
    return model, ckpt


def split_data(ckpt: dict, run_dir: str, split: str = "test", limit: int | None = None, seed: int = 0):
    from ..training.data import SplitData
    return SplitData(run_dir, split, ckpt["layout"], ckpt["scaler"], in_memory=True, limit=limit, seed=seed)


def predict(model, data, *, attack=None, batch_size: int = 4096, device: str = "cpu") -> np.ndarray:
    """Softmax outputs ``(N, C)`` on ``data`` (a :class:`SplitData`); ``attack``: an :class:`Attack` or None."""
    import torch

    from ..training.adversarial import perturb
    from ..training.data import Loader
    model.eval()
    out = []
    for batch in Loader(data, batch_size, shuffle=False):
        b = batch.to(device)
        xs = b.inputs
        if attack is not None and attack.active:
            xs = perturb(model, attack, xs, b.masks, b.label, device)
        with torch.no_grad():
            out.append(torch.softmax(model(*xs), dim=1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, len(data.classes)), np.float32)
