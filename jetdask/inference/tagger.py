"""The :class:`Tagger` spec: a small picklable description of one tagger of a pass.

Name, model file, layout, classes, scaler, device, distortion; an analysis holding taggers
ships to the workers cheaply, and :func:`.cache.load_model` resolves it there. The model object
itself is never pickled.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from .distortions import Distortion, parse_distortion

#: Field names that ``vector`` reads as coordinates of a Momentum4D jet record: not tagger names.
RESERVED_NAMES = frozenset({"x", "y", "z", "t", "px", "py", "pz", "E", "e", "energy", "rho", "pt", "phi", "eta",
                            "theta", "mass", "m", "M", "tau", "mt", "Et", "et"})


@dataclasses.dataclass(frozen=True)
class Tagger:
    """A tagger of one pass: picklable description, resolved on the worker by :func:`~.cache.load_model`.

    ``source``: ONNX file, TorchScript file, jetdask checkpoint or bare ``state_dict`` file.
    ``layout``/``classes``/``model_class``/``model_kwargs``/``scaler``: override (or, for
    TorchScript and bare state dicts, provide) what the checkpoint says. ``device``:
    ``None`` = CUDA when available, else CPU. ``softmax``: apply a softmax to the outputs
    (default: True for jetdask checkpoints, False for TorchScript). ``distortion``: a
    :class:`~jetdask.inference.distortions.Noise` or ``FGSM`` applied to the scaled inputs
    (FGSM needs a torch model). ``output``: the ONNX output to read (default: the first).
    ``device="cuda"`` makes tasks running the tagger ask dask for a ``GPU`` resource
    (:func:`tagger_resources`). The classes registered with :func:`jetdask.models.register_model`
    when the spec is made travel with it to the workers.
    """
    name: str
    source: str
    layout: Any = None
    classes: tuple | None = None
    model_class: str | None = None
    model_kwargs: dict | None = None
    scaler: Any = None
    device: str | None = None
    softmax: bool | None = None
    distortion: Distortion | None = None
    batch_size: int | None = None
    output: str | None = None
    models: tuple = dataclasses.field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if self.models is None:
            from ..models import registered_models
            object.__setattr__(self, "models", tuple(registered_models().items()))
        elif not all(isinstance(m, (tuple, list)) and len(m) == 2 and isinstance(m[0], str) and isinstance(m[1], type)
                     for m in self.models):
            raise ValueError(f"tagger {self.name!r}: models= takes (name, class) pairs")
        else:
            object.__setattr__(self, "models", tuple(tuple(m) for m in self.models))
        if not self.name or self.name in RESERVED_NAMES:
            raise ValueError(f"tagger name {self.name!r} is empty or a four-vector coordinate of the jet "
                             f"records ({sorted(RESERVED_NAMES)})")
        if self.classes is not None:
            object.__setattr__(self, "classes", tuple(self.classes))
        if isinstance(self.distortion, str):
            object.__setattr__(self, "distortion", parse_distortion(self.distortion))

    def variant(self, distortion) -> "Tagger":
        """The same model with ``distortion`` (object or tag ``"noise0.1"``, ``"fgsm0.01"``): ``name@tag``."""
        d = parse_distortion(distortion) if isinstance(distortion, str) else distortion
        return dataclasses.replace(self, name=f"{self.name}@{d.tag}", distortion=d)

    def variants(self, distortions) -> list:
        """``[self, self@d1, self@d2, ...]``."""
        return [self] + [self.variant(d) for d in distortions]


def tagger_resources(taggers) -> dict:
    """dask resources a task running ``taggers`` needs: ``{"GPU": 1}`` when one asks for CUDA, else ``{}``."""
    return {"GPU": 1} if any(str(t.device or "").startswith("cuda") for t in taggers) else {}
