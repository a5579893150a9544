"""A compact Particle Transformer (ParT): attention over candidates with pairwise features.

Inputs (the ``part`` layout): ``features (N,C,P)``, ``vectors (N,4,P)`` = (px, py, pz, E)
and ``mask (N,1,P)`` (1 for a real candidate). As in ParT (Qu, Li, Qian, 2022):

* every candidate is embedded by an MLP of its features;
* for every pair (a, b) the four interaction features ln kT, ln z, ln dR, ln m^2 are
  computed from the four-vectors (dR on rapidity-phi; kT = min(pT_a, pT_b) dR;
  z = min(pT_a, pT_b) / (pT_a + pT_b); m^2 = (p_a + p_b)^2), embedded by 1x1
  convolutions into one attention bias per head, and added to the attention logits of
  every particle-attention block;
* ``n_layers`` particle-attention blocks (pre-LayerNorm, GELU feed-forward), then
  ``n_cls_layers`` class-attention blocks where a learnt class token attends to the
  candidates; LayerNorm + linear on the class token -> ``n_classes`` logits.

Padded candidates never act as keys (their attention logits are -inf); a jet without any
candidate keeps its first (all-zero) slot as a key so that softmax stays defined.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from . import CLASSES


def pair_features(v: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(N,4,P) four-vectors -> (N,4,P,P) [ln kT, ln z, ln dR, ln m^2]."""
    px, py, pz, e = v[:, 0], v[:, 1], v[:, 2], v[:, 3]
    pt = torch.sqrt(px * px + py * py)
    rap = 0.5 * torch.log((e + pz).clamp(min=eps) / (e - pz).clamp(min=eps))
    phi = torch.atan2(py, px)
    dphi = torch.remainder(phi[:, :, None] - phi[:, None, :] + math.pi, 2 * math.pi) - math.pi
    dr = torch.sqrt((rap[:, :, None] - rap[:, None, :]) ** 2 + dphi ** 2)
    ptmin = torch.minimum(pt[:, :, None], pt[:, None, :])
    kt = ptmin * dr
    z = ptmin / (pt[:, :, None] + pt[:, None, :]).clamp(min=eps)
    m2 = ((e[:, :, None] + e[:, None, :]) ** 2 - (px[:, :, None] + px[:, None, :]) ** 2
          - (py[:, :, None] + py[:, None, :]) ** 2 - (pz[:, :, None] + pz[:, None, :]) ** 2)
    return torch.stack([torch.log(kt.clamp(min=eps)), torch.log(z.clamp(min=eps)),
                        torch.log(dr.clamp(min=eps)), torch.log(m2.clamp(min=eps))], dim=1)


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, ffn_ratio: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn_ratio * dim), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(ffn_ratio * dim, dim))

    def forward(self, x: torch.Tensor, kv_in: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        n, lq, d = x.shape
        lk, h = kv_in.shape[1], self.heads
        q = self.q(self.norm1(x)).view(n, lq, h, d // h).transpose(1, 2)
        k, v = self.kv(self.norm1(kv_in)).view(n, lk, 2, h, d // h).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        x = x + self.proj(a.transpose(1, 2).reshape(n, lq, d))
        return x + self.ffn(self.norm2(x))


class ParticleTransformer(nn.Module):
    layout = "part"
    classes = CLASSES

    def __init__(self, n_features: int = 21, embed_dims=(128, 128), n_heads: int = 8, n_layers: int = 4,
                 n_cls_layers: int = 2, pair_dims=(64, 64), ffn_ratio: int = 4, dropout: float = 0.0,
                 n_classes: int = len(CLASSES)):
        super().__init__()
        self.config = {"n_features": n_features, "embed_dims": list(embed_dims), "n_heads": n_heads,
                       "n_layers": n_layers, "n_cls_layers": n_cls_layers, "pair_dims": list(pair_dims),
                       "ffn_ratio": ffn_ratio, "dropout": dropout, "n_classes": n_classes}
        dim = embed_dims[-1]
        layers, last = [], n_features
        for d in embed_dims:
            layers += [nn.Linear(last, d), nn.GELU()]
            last = d
        self.embed = nn.Sequential(nn.LayerNorm(n_features), *layers)
        convs, last = [], 4
        for d in pair_dims:
            convs += [nn.Conv2d(last, d, 1), nn.GELU()]
            last = d
        convs.append(nn.Conv2d(last, n_heads, 1))
        self.pair_embed = nn.Sequential(*convs)
        self.blocks = nn.ModuleList(_Block(dim, n_heads, ffn_ratio, dropout) for _ in range(n_layers))
        self.cls_blocks = nn.ModuleList(_Block(dim, n_heads, ffn_ratio, dropout) for _ in range(n_cls_layers))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.norm = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, n_classes)

    def activation_bytes(self, shapes) -> int:
        """Rough activation bytes per jet for input shapes [(C,P), (4,P), (1,P)] (batch sizing)."""
        c, n = self.config, shapes[0][-1]
        pair = (4 + sum(c["pair_dims"]) + 2 * c["n_heads"]) * n ** 2
        tokens = (c["n_layers"] + c["n_cls_layers"]) * (4 + c["ffn_ratio"]) * c["embed_dims"][-1] * n
        return 4 * 2 * (pair + tokens)

    def forward(self, features: torch.Tensor, vectors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        valid = mask[:, 0] > 0                                            # (N, P)
        empty = ~valid.any(dim=1)
        if bool(empty.any()):
            valid = valid.clone()
            valid[empty, 0] = True
        x = self.embed(features.transpose(1, 2)) * valid[:, :, None]      # (N, P, D)
        pm = (valid[:, :, None] & valid[:, None, :]).unsqueeze(1)        # (N, 1, P, P)
        bias = self.pair_embed(pair_features(vectors * mask) * pm)       # (N, H, P, P)
        neg = torch.zeros_like(valid, dtype=x.dtype).masked_fill(~valid, float("-inf"))[:, None, None, :]
        attn = bias + neg
        for blk in self.blocks:
            x = blk(x, x, attn) * valid[:, :, None]
        cls = self.cls_token.expand(x.shape[0], 1, -1)
        cls_neg = torch.cat([torch.zeros_like(neg[..., :1]), neg], dim=-1)
        for blk in self.cls_blocks:
            cls = blk(cls, torch.cat([cls, x], dim=1), cls_neg)
        return self.fc(self.norm(cls[:, 0]))
