"""DeepCSV: a fully connected network on the flat ``Jet_DeepCSV_*`` inputs."""
from __future__ import annotations

import torch
from torch import nn

from . import CLASSES


class DeepCSV(nn.Module):
    """``n_inputs`` -> ``hidden`` (ReLU, dropout) -> ``n_classes`` logits."""

    layout = "deepcsv"
    classes = CLASSES

    def __init__(self, n_inputs: int = 65, hidden=(100, 100, 100, 100, 100), dropout: float = 0.1,
                 n_classes: int = len(CLASSES)):
        super().__init__()
        self.config = {"n_inputs": n_inputs, "hidden": list(hidden), "dropout": dropout, "n_classes": n_classes}
        layers, last = [], n_inputs
        for h in hidden:
            layers += [nn.Linear(last, h), nn.ReLU(), nn.Dropout(dropout)]
            last = h
        layers.append(nn.Linear(last, n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
