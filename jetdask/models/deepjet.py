"""DeepJet: per-candidate 1x1 convolutions, a summary per candidate type, a dense head.

Inputs (the ``deepjet`` layout): ``glob (N,15)``, ``cpf (N,25,16)``, ``npf (N,25,6)``,
``sv (N,4,12)``. Each candidate type goes through 1x1 convolutions (ReLU), then is
summarised either by an LSTM read from the last slot to the first (as the reference
DeepJet, so that the leading candidates are read last) or, with ``summary="pool"``,
by the mean over slots followed by a linear layer. The summaries and the globals
feed the dense head (ReLU, dropout) -> 6 logits. Nominal sizes give ~260k parameters.
"""
from __future__ import annotations

import torch
from torch import nn

from . import CLASSES


def _convs(n_in: int, channels) -> nn.Sequential:
    layers, last = [], n_in
    for c in channels:
        layers += [nn.Conv1d(last, c, kernel_size=1), nn.ReLU()]
        last = c
    return nn.Sequential(*layers)


class _Summary(nn.Module):
    def __init__(self, n_in: int, size: int, kind: str):
        super().__init__()
        self.kind = kind
        if kind == "lstm":
            self.rnn = nn.LSTM(n_in, size, batch_first=True)
        elif kind == "pool":
            self.lin = nn.Sequential(nn.Linear(n_in, size), nn.ReLU())
        else:
            raise ValueError(f"summary must be 'lstm' or 'pool', got {kind!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:   # x: (N, C, P)
        if self.kind == "lstm":
            _, (h, _) = self.rnn(torch.flip(x, dims=[2]).transpose(1, 2))
            return h[-1]
        return self.lin(x.mean(dim=2))


class DeepJet(nn.Module):
    layout = "deepjet"
    classes = CLASSES

    def __init__(self, n_global: int = 15, n_cpf: int = 16, n_npf: int = 6, n_sv: int = 12,
                 cpf_channels=(64, 32, 32, 8), npf_channels=(32, 16, 4), sv_channels=(64, 32, 32, 8),
                 summary: str = "lstm", summary_sizes=(150, 50, 50),
                 dense=(200, 100, 100, 100, 100, 100, 100, 100), dropout: float = 0.1,
                 n_classes: int = len(CLASSES)):
        super().__init__()
        self.config = {"n_global": n_global, "n_cpf": n_cpf, "n_npf": n_npf, "n_sv": n_sv,
                       "cpf_channels": list(cpf_channels), "npf_channels": list(npf_channels),
                       "sv_channels": list(sv_channels), "summary": summary,
                       "summary_sizes": list(summary_sizes), "dense": list(dense), "dropout": dropout,
                       "n_classes": n_classes}
        self.cpf_conv = _convs(n_cpf, cpf_channels)
        self.npf_conv = _convs(n_npf, npf_channels)
        self.sv_conv = _convs(n_sv, sv_channels)
        s_cpf, s_npf, s_sv = summary_sizes
        self.cpf_sum = _Summary(cpf_channels[-1] if cpf_channels else n_cpf, s_cpf, summary)
        self.npf_sum = _Summary(npf_channels[-1] if npf_channels else n_npf, s_npf, summary)
        self.sv_sum = _Summary(sv_channels[-1] if sv_channels else n_sv, s_sv, summary)
        layers, last = [], n_global + s_cpf + s_npf + s_sv
        for h in dense:
            layers += [nn.Linear(last, h), nn.ReLU(), nn.Dropout(dropout)]
            last = h
        layers.append(nn.Linear(last, n_classes))
        self.head = nn.Sequential(*layers)

    def activation_bytes(self, shapes) -> int:
        """Rough activation bytes per jet (convolution outputs, LSTM gates per slot), for batch sizing."""
        c = self.config
        per_slot = [(shapes[i][0], sum(c[k]) + (4 + 2) * s)
                    for i, k, s in ((1, "cpf_channels", c["summary_sizes"][0]),
                                    (2, "npf_channels", c["summary_sizes"][1]),
                                    (3, "sv_channels", c["summary_sizes"][2]))]
        values = sum(n * v for n, v in per_slot) + 2 * sum(c["dense"])
        return 4 * 2 * values

    def forward(self, glob: torch.Tensor, cpf: torch.Tensor, npf: torch.Tensor, sv: torch.Tensor) -> torch.Tensor:
        c = self.cpf_sum(self.cpf_conv(cpf.transpose(1, 2)))
        n = self.npf_sum(self.npf_conv(npf.transpose(1, 2)))
        s = self.sv_sum(self.sv_conv(sv.transpose(1, 2)))
        return self.head(torch.cat([glob, c, n, s], dim=1))
