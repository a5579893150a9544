"""Training losses on logits: per-jet weighted cross-entropy and focal loss.

Both take ``(logits (N, C), target (N,) int64, weight (N,) float)`` and return the weighted
mean ``sum(w * l) / sum(w)`` (0 for an empty batch or zero total weight), so a batch's loss
does not depend on the batch size and the per-jet weights of the preprocessing (kinematic
and class reweighting) act as they would in a weighted sample.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError


def _weighted_mean(per_jet: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    if weight is None:
        return per_jet.mean() if per_jet.numel() else per_jet.sum()
    w = weight.to(per_jet.dtype)
    total = w.sum()
    return (per_jet * w).sum() / total.clamp_min(torch.finfo(w.dtype).tiny)


class WeightedCrossEntropy(nn.Module):
    """Cross-entropy with per-jet weights (and optional label smoothing)."""

    def __init__(self, label_smoothing: float = 0.0):
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise ConfigError(f"must be in [0, 1), got {label_smoothing}", "loss.label_smoothing")
        self.label_smoothing = float(label_smoothing)

    def per_jet(self, logits, target):
        return F.cross_entropy(logits, target, reduction="none", label_smoothing=self.label_smoothing)

    def forward(self, logits, target, weight=None):
        return _weighted_mean(self.per_jet(logits, target), weight)


class FocalLoss(nn.Module):
    """Focal loss ``-(1 - p_t)^gamma log p_t`` (Lin et al. 2017) with per-jet weights.

    ``gamma = 0`` is the cross-entropy; larger values down-weight jets already classified well.
    """

    def __init__(self, gamma: float = 2.0):
        super().__init__()
        if gamma < 0:
            raise ConfigError(f"must be >= 0, got {gamma}", "loss.gamma")
        self.gamma = float(gamma)

    def per_jet(self, logits, target):
        logp = F.log_softmax(logits, dim=1).gather(1, target[:, None])[:, 0]
        return -((1.0 - logp.exp()).clamp_min(0.0) ** self.gamma) * logp

    def forward(self, logits, target, weight=None):
        return _weighted_mean(self.per_jet(logits, target), weight)


LOSSES = {"cross_entropy": WeightedCrossEntropy, "focal": FocalLoss}


def make_loss(cfg: dict) -> nn.Module:
    """Loss from the ``loss`` section of the training config."""
    name = cfg["name"]
    if name == "cross_entropy":
        return WeightedCrossEntropy(cfg.get("label_smoothing", 0.0))
    if name == "focal":
        return FocalLoss(cfg.get("gamma", 2.0))
    raise ConfigError(f"unknown loss {name!r}; expected one of {', '.join(LOSSES)}", "loss.name")
