"""Adversarial inputs during training: FGSM and PGD on the scaled model inputs.

Only entries whose ``distortable`` mask is True change: valid (not defaulted, not padding)
entries of non-integer features of inputs that allow distortions (the same masks as the
inference distortions, :func:`jetdask.inference.distortions.distortable`). FGSM is the
inference step :func:`jetdask.inference.distortions.fgsm` itself (``x + eps sign(grad)``
of the cross-entropy against the true label), so the attack a model is trained against is
the one ``Tagger.variant("fgsm<eps>")`` evaluates. PGD repeats signed steps of size
``step_size`` (default ``2.5 eps / steps``) and projects back into the L-infinity ball of
radius ``eps`` around the clean input, optionally from a random start in the ball.

The attack runs with the model in eval mode (no dropout: the perturbation targets the
deterministic model) and with cuDNN off on GPU, whose RNN backward needs training mode.
"""
from __future__ import annotations

import contextlib
import dataclasses

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..inference.distortions import fgsm as fgsm_step

METHODS = ("none", "fgsm", "pgd")


@dataclasses.dataclass(frozen=True)
class Attack:
    method: str = "fgsm"
    epsilon: float = 0.01
    steps: int = 5
    step_size: float | None = None
    random_start: bool = False

    def __post_init__(self):
        if self.method not in METHODS:
            raise ConfigError(f"expected one of {', '.join(METHODS)}, got {self.method!r}", "adversarial.method")
        if self.epsilon < 0:
            raise ConfigError(f"must be >= 0, got {self.epsilon}", "adversarial.epsilon")
        if self.steps < 1:
            raise ConfigError(f"must be >= 1, got {self.steps}", "adversarial.steps")

    @property
    def active(self) -> bool:
        return self.method != "none" and self.epsilon > 0

    @classmethod
    def from_config(cls, cfg: dict) -> "Attack":
        return cls(cfg["method"], float(cfg["epsilon"]), int(cfg["steps"]),
                   None if cfg["step_size"] is None else float(cfg["step_size"]), bool(cfg["random_start"]))


@contextlib.contextmanager
def _attack_mode(model, device):
    was_training = model.training
    model.eval()
    flags = torch.backends.cudnn.flags(enabled=False) if torch.device(device).type == "cuda" \
        else contextlib.nullcontext()
    try:
        with flags:
            yield
    finally:
        model.train(was_training)


def _input_grads(model, xs, masks, labels):
    with torch.enable_grad():
        leaves = [x.detach().clone().requires_grad_(m is not None) for x, m in zip(xs, masks)]
        loss = F.cross_entropy(model(*leaves), labels, reduction="sum")
        want = [x for x in leaves if x.requires_grad]
        grads = iter(torch.autograd.grad(loss, want, allow_unused=True))
    return [next(grads) if m is not None else None for m in masks]


def pgd(model, xs, masks, labels, epsilon, steps, step_size=None, random_start=False, generator=None):
    """Projected gradient descent (L-infinity) on the masked entries; returns new tensors."""
    alpha = step_size if step_size is not None else 2.5 * epsilon / steps
    fm = [None if m is None else m.to(x.dtype) for x, m in zip(xs, masks)]
    adv = [x.detach().clone() for x in xs]
    if random_start:
        for i, (x, m) in enumerate(zip(adv, fm)):
            if m is not None:
                u = torch.rand(x.shape, generator=generator, device="cpu").to(x.device, x.dtype)
                adv[i] = x + (2 * u - 1) * epsilon * m
    for _ in range(steps):
        grads = _input_grads(model, adv, masks, labels)
        for i, (x0, g, m) in enumerate(zip(xs, grads, fm)):
            if m is None or g is None:
                continue
            step = adv[i] + alpha * torch.sign(g) * m
            adv[i] = torch.max(torch.min(step, x0 + epsilon), x0 - epsilon).detach()
    return adv


def perturb(model, attack: Attack, xs, masks, labels, device="cpu", generator=None):
    """Adversarial copies of the inputs ``xs`` (clean inputs when the attack is inactive)."""
    if not attack.active:
        return xs
    with _attack_mode(model, device):
        if attack.method == "fgsm":
            return fgsm_step(model, xs, masks, labels, attack.epsilon, softmax=True)
        return pgd(model, xs, masks, labels, attack.epsilon, attack.steps, attack.step_size,
                   attack.random_start, generator)
