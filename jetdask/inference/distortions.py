"""Input distortions evaluated in the same pass as the nominal taggers.

Both act on the model inputs *after* scaling, and only on entries that are valid
(not padding, not an empty slot, not a -999 default, finite), of a non-integer feature
(counts, categories, flags, charges are never touched) of an input that allows it
(masks and four-vectors never do):

* :class:`Noise` (tag ``noise<sigma>``): ``x + sigma * N(0, 1)``. The scaled inputs have unit
  spread, so ``sigma`` is relative to each feature's standard deviation (absolute when the
  tagger has no scaler). The normal numbers come from a counter-based hash of
  (run, event, jet index in the event, input, element, seed), so a jet gets the same
  noise whatever the chunking or batch size.
* :class:`FGSM` (tag ``fgsm<epsilon>``): ``x + epsilon * sign(d loss / d x)``, the fast
  gradient sign method, with the cross-entropy loss of the model's output against a label.
  Labels: on MC (``is_data`` False) the truth class of the jet, from ``Jet_FlavSplit`` when
  present (500 b, 510/511 bb, 520/521 lepb, 4xx c, 0 g, 1/2/600 uds; 1000 "undefined" has
  no label) else from ``Jet_hadronFlavour`` (5 -> b, 4 -> c, else uds); classes missing from
  the tagger fall back (bb, lepb -> b; g -> uds). On data, for jets without a label, or for
  taggers whose classes are not b/c/uds-like, the label is the model's own argmax prediction
  on the undistorted input (the attack then pushes away from what the model believes).
"""
from __future__ import annotations

import dataclasses
import re

import numpy as np

from .layouts import Converted


@dataclasses.dataclass(frozen=True)
class Noise:
    """Gaussian noise of ``sigma`` (relative to each feature's spread) on the scaled inputs; tag ``noise<sigma>``."""
    sigma: float
    seed: int = 0

    @property
    def tag(self) -> str:
        """The distortion's name in tagger keys and specs (``noise...``)."""
        return f"noise{self.sigma:g}"


@dataclasses.dataclass(frozen=True)
class FGSM:
    """Fast gradient sign attack of size ``epsilon`` on the scaled inputs; tag ``fgsm<epsilon>``."""
    epsilon: float

    @property
    def tag(self) -> str:
        """The distortion's name in tagger keys and specs (``fgsm...``)."""
        return f"fgsm{self.epsilon:g}"


Distortion = Noise | FGSM

_TAG = re.compile(r"^(noise|fgsm)([0-9.eE+-]+)$")


def parse_distortion(tag: str) -> Distortion:
    """``"noise0.1"`` -> ``Noise(0.1)``, ``"fgsm0.01"`` -> ``FGSM(0.01)``."""
    m = _TAG.match(tag.strip())
    if not m:
        raise ValueError(f"unknown distortion {tag!r}; expected noise<sigma> or fgsm<epsilon>")
    value = float(m.group(2))
    return Noise(value) if m.group(1) == "noise" else FGSM(value)


def distortable(conv: Converted) -> dict:
    """Per input name: boolean array of the entries a distortion may change (None: none)."""
    out = {}
    for spec in conv.specs:
        if not spec.distort:
            out[spec.name] = None
            continue
        out[spec.name] = conv.valid[spec.name] & ~spec.integer_mask()
    return out


# ----------------------------------------------------------------------------- noise

_M1, _M2, _G = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB), np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser (vectorised, wrapping uint64 arithmetic)."""
    x = x.astype(np.uint64, copy=True)
    x ^= x >> np.uint64(30)
    x *= _M1
    x ^= x >> np.uint64(27)
    x *= _M2
    x ^= x >> np.uint64(31)
    return x


def jet_keys(run: np.ndarray, event: np.ndarray, local: np.ndarray) -> np.ndarray:
    """One uint64 per jet from (run, event number, index of the jet in its event)."""
    with np.errstate(over="ignore"):
        k = _mix(np.asarray(run, dtype=np.uint64) + _G)
        k = _mix(k ^ np.asarray(event, dtype=np.uint64))
        return _mix(k ^ (np.asarray(local, dtype=np.uint64) * _G))


def _normals(keys: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        a = _mix(keys)
        b = _mix(keys ^ _G)
    u1 = ((a >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0 ** 53
    u2 = (b >> np.uint64(11)).astype(np.float64) / 2.0 ** 53
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def add_noise(arrays: dict, masks: dict, sigma: float, keys: np.ndarray, seed: int = 0) -> dict:
    """Copies of ``arrays`` with Gaussian noise on the ``masks`` entries (see the module docstring)."""
    out = dict(arrays)
    for i, (name, mask) in enumerate(masks.items()):
        if mask is None:
            continue
        x = arrays[name]
        mask = np.broadcast_to(mask, x.shape)
        flat = np.flatnonzero(mask)
        if not len(flat):
            continue
        per_jet = int(np.prod(x.shape[1:]))
        with np.errstate(over="ignore"):
            tag = np.uint64((seed * 1_000_003 + i + 1) & 0xFFFFFFFF) << np.uint64(32)
            k = _mix(keys[flat // per_jet] ^ tag) ^ (flat % per_jet).astype(np.uint64)
        y = x.copy()
        y.reshape(-1)[flat] += (sigma * _normals(k)).astype(np.float32)
        out[name] = y
    return out


# ----------------------------------------------------------------------------- FGSM

def _flavsplit_classes(fs: np.ndarray) -> np.ndarray:
    names = np.full(len(fs), "", dtype=object)
    names[fs == 500] = "b"
    names[np.isin(fs, (510, 511))] = "bb"
    names[np.isin(fs, (520, 521))] = "lepb"
    names[(fs >= 400) & (fs < 500)] = "c"
    names[fs == 0] = "g"
    names[np.isin(fs, (1, 2, 600))] = "uds"
    return names


_FALLBACK = {"bb": "b", "lepb": "b", "g": "uds"}


def truth_labels(jets, classes) -> np.ndarray | None:
    """Class index per kept jet from the truth (``-1``: no label); None without truth or b/c/uds classes."""
    classes = tuple(classes)
    if not {"b", "c", "uds"} <= set(classes):
        return None
    if jets.has("FlavSplit"):
        names = _flavsplit_classes(jets.field("FlavSplit").astype(np.int64))
    elif jets.has("hadronFlavour"):
        hf = jets.field("hadronFlavour").astype(np.int64)
        names = np.where(hf == 5, "b", np.where(hf == 4, "c", "uds")).astype(object)
    else:
        return None
    out = np.full(len(names), -1, dtype=np.int64)
    for i, c in enumerate(classes):
        out[names == c] = i
    for c, fb in _FALLBACK.items():
        if c not in classes:
            out[names == c] = classes.index(fb)
    return out


def fgsm(module, xs: list, masks: list, labels, epsilon: float, softmax: bool) -> list:
    """One FGSM step on a batch: tensors ``xs``, masks (bool tensors or None), labels (tensor or None)."""
    import torch
    import torch.nn.functional as F
    with torch.inference_mode(False), torch.enable_grad():
        leaves = [x.detach().clone().requires_grad_(m is not None) for x, m in zip(xs, masks)]
        out = module(*[x.clone() for x in leaves])     # clones: some TorchScript models work in place
        own = out.detach().argmax(dim=1)
        y = own if labels is None else torch.where(labels >= 0, labels, own)
        probs = (not softmax) and bool(((out >= 0) & (out <= 1)).all()) and \
            bool(torch.allclose(out.sum(1), torch.ones_like(out[:, 0]), atol=1e-3))
        logp = torch.log(out.clamp_min(1e-12)) if probs else F.log_softmax(out, dim=1)
        loss = F.nll_loss(logp, y, reduction="sum")
        grads = torch.autograd.grad(loss, [x for x in leaves if x.requires_grad], allow_unused=True)
    it = iter(grads)
    result = []
    for x, m in zip(xs, masks):
        if m is None:
            result.append(x)
            continue
        g = next(it)
        if g is None:
            result.append(x)
            continue
        result.append((x + epsilon * torch.sign(g) * m.to(x.dtype)).detach())
    return result
