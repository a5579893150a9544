"""A compact ParticleNet-style tagger: dynamic-graph convolutions (EdgeConv) over the candidates.

Inputs (the ``pn`` layout, or any layout with the same arguments): ``points (N,2,P)`` (deta,
dphi: the coordinates of the first k-nearest-neighbour graph), ``features (N,C,P)`` and
``mask (N,1,P)`` (1 for a real candidate). As in ParticleNet (Qu, Gouskos, 2020): every block
finds each candidate's ``k`` nearest neighbours (in ``points`` for the first block, in the
previous block's features after that), builds the edge features ``(x_i, x_j - x_i)``, passes
them through 1x1 convolutions, averages over the neighbours and adds a shortcut; the candidate
features are averaged over the real candidates and a dense head gives ``n_classes`` logits.
Padding slots are moved far away before the neighbour search and zeroed after every block.
"""
from __future__ import annotations

import torch
from torch import nn

from . import CLASSES

_FAR = 1e9


def knn(x: torch.Tensor, k: int) -> torch.Tensor:
    """(N,C,P) -> (N,P,k) indices of the k nearest other points (squared Euclidean distance)."""
    inner = -2 * torch.matmul(x.transpose(2, 1), x)
    sq = (x * x).sum(dim=1, keepdim=True)
    d = sq.transpose(2, 1) + inner + sq
    return d.topk(k=k + 1, dim=-1, largest=False)[1][:, :, 1:]


def neighbours(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """(N,C,P) features and (N,P,k) indices -> (N,C,P,k) features of the neighbours."""
    n, c, p = x.shape
    k = idx.shape[-1]
    base = torch.arange(n, device=x.device).view(-1, 1, 1) * p
    flat = x.transpose(2, 1).reshape(n * p, c)
    return flat[(idx + base).reshape(-1)].view(n, p, k, c).permute(0, 3, 1, 2)


class EdgeConv(nn.Module):
    def __init__(self, k: int, c_in: int, widths):
        super().__init__()
        self.k = k
        layers, last = [], 2 * c_in
        for w in widths:
            layers += [nn.Conv2d(last, w, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
            last = w
        self.edge = nn.Sequential(*layers)
        self.shortcut = nn.Sequential(nn.Conv1d(c_in, last, 1, bias=False), nn.BatchNorm1d(last))
        self.act = nn.ReLU()

    def forward(self, points: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        nb = neighbours(x, knn(points, self.k))
        centre = x.unsqueeze(-1).expand_as(nb)
        e = self.edge(torch.cat([centre, nb - centre], dim=1)).mean(dim=-1)
        return self.act(e + self.shortcut(x))


class ParticleNet(nn.Module):
    layout = "pn"
    classes = CLASSES

    def __init__(self, n_features: int = 18, k: int = 8, conv_widths=((32, 32, 32), (64, 64, 64)), fc=(128,),
                 dropout: float = 0.1, n_classes: int = len(CLASSES)):
        super().__init__()
        self.config = {"n_features": n_features, "k": k, "conv_widths": [list(w) for w in conv_widths],
                       "fc": list(fc), "dropout": dropout, "n_classes": n_classes}
        self.bn = nn.BatchNorm1d(n_features)
        blocks, last = [], n_features
        for w in conv_widths:
            blocks.append(EdgeConv(k, last, w))
            last = w[-1]
        self.blocks = nn.ModuleList(blocks)
        head = []
        for h in fc:
            head += [nn.Linear(last, h), nn.ReLU(), nn.Dropout(dropout)]
            last = h
        head.append(nn.Linear(last, n_classes))
        self.head = nn.Sequential(*head)

    def forward(self, points: torch.Tensor, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = (mask > 0).to(features.dtype)
        shift = (1.0 - m) * _FAR
        x = self.bn(features * m) * m
        for i, blk in enumerate(self.blocks):
            coords = points * m + shift if i == 0 else x + shift
            x = blk(coords, x) * m
        pooled = x.sum(dim=-1) / m.sum(dim=-1).clamp(min=1.0)
        return self.head(pooled)
