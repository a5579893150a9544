"""What a tagger input is: :class:`InputSpec` (shape, integer features), :class:`Converted`
(the arrays and ``valid`` masks of one chunk's kept jets) and the :class:`Layout` interface."""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .access import Records

#: NanoAOD's "no value" (an entry equal to it is missing).
SENTINEL = -999.0
#: Values larger than this in absolute value are missing (uninitialised memory, e.g. 8e10).
ABS_MAX = 1.0e10
@dataclasses.dataclass(frozen=True)
class InputSpec:
    """One model argument: ``(N, F)``, ``(N, slots, F)`` or, channels first, ``(N, F, slots)``."""
    name: str
    features: tuple
    slots: int | None = None
    channels_first: bool = False
    integer: tuple = ()          # names of integer-valued features (never distorted)
    distort: bool = True         # False: masks and four-vectors are never distorted
    scale: bool = True

    @property
    def shape(self) -> tuple:
        """Shape of one jet's array: ``(F,)``, ``(slots, F)`` or ``(F, slots)``."""
        f = len(self.features)
        if self.slots is None:
            return (f,)
        return (f, self.slots) if self.channels_first else (self.slots, f)

    @property
    def feature_axis(self) -> int:
        """Axis of the features in the batched ``(N, ...)`` array."""
        return 1 if (self.slots is not None and self.channels_first) else -1

    def per_feature(self, values) -> np.ndarray:
        """``values`` (one per feature) shaped to broadcast against ``(N, *shape)``."""
        v = np.asarray(values, dtype=np.float32).reshape(-1)
        if self.slots is None or not self.channels_first:
            return v
        return v[:, None]

    def integer_mask(self) -> np.ndarray:
        """True for the integer-valued features, shaped as :meth:`per_feature` shapes values."""
        return self.per_feature([f in self.integer for f in self.features]).astype(bool)


@dataclasses.dataclass
class Converted:
    """Inputs of the kept jets of one chunk: ``arrays[name]`` (float32) and ``valid[name]`` (bool)."""
    specs: tuple
    arrays: dict
    valid: dict
    n: int

    def ordered(self) -> list:
        return [self.arrays[s.name] for s in self.specs]


class Layout:
    """Base: ``name``, ``jets`` (collection), ``specs``, ``columns``, ``convert(records)``."""
    name: str
    jets: str = "Jet"

    @property
    def specs(self) -> tuple:  # pragma: no cover - interface
        """The model's arguments, in order: one :class:`InputSpec` each."""
        raise NotImplementedError

    @property
    def columns(self) -> list:  # pragma: no cover - interface
        """The branches :meth:`convert` reads (names for an analysis's ``columns``)."""
        raise NotImplementedError

    def convert(self, jets: Records) -> Converted:  # pragma: no cover - interface
        """The inputs of these jets (one record per jet) and where they are valid."""
        raise NotImplementedError

    def missing(self) -> list:  # pragma: no cover - interface
        """Human-readable rules of the entries this layout marks missing (``valid`` False)."""
        return []
