"""The one registry of systematic uncertainties, and the ``syst`` histogram axis built from it.

Each source is declared once (:data:`REGISTRY`): its name, kind (``weight``: an event-weight
variation; ``shape``: an object shift that reruns the jet-dependent part), group (``pileup``,
``btag``, ``jes``, ``jer``, ``theory``), sides (``Up``/``Down``, or ``Up`` alone), how it
combines into the band (``quadrature``, or ``envelope`` with the other sources of the same
``envelope`` key, e.g. the 7-point muR/muF envelope), its correlation across data sets, and
``component_of`` (a breakdown of another source: shown by group, never added on top of it).

The ``syst`` axis of a histogram is a fixed ``StrCategory`` in registry order, ``nominal``
first, then ``<name>Up``/``<name>Down`` of every selected source: identical in every chunk and
every run of one configuration (never built from a set).
"""
from __future__ import annotations

import dataclasses

KINDS = ("weight", "shape")
GROUPS = ("pileup", "btag", "jes", "jer", "theory")
COMBINES = ("quadrature", "envelope")
CORRELATIONS = ("correlated", "uncorrelated")
NOMINAL = "nominal"


@dataclasses.dataclass(frozen=True)
class Source:
    """One systematic source."""
    name: str
    kind: str
    group: str
    sides: tuple = ("Up", "Down")
    combine: str = "quadrature"
    correlation: str = "correlated"
    envelope: str | None = None
    component_of: str | None = None

    def __post_init__(self):
        for field, allowed in (("kind", KINDS), ("group", GROUPS), ("combine", COMBINES),
                               ("correlation", CORRELATIONS)):
            if getattr(self, field) not in allowed:
                raise ValueError(f"{self.name}: {field} must be one of {allowed}, got {getattr(self, field)!r}")
        if not self.sides or any(s not in ("Up", "Down") for s in self.sides):
            raise ValueError(f"{self.name}: sides must be ('Up', 'Down') or ('Up',)")
        if (self.combine == "envelope") != (self.envelope is not None):
            raise ValueError(f"{self.name}: an envelope source names its envelope, and only it")

    @property
    def variations(self) -> list[str]:
        """Its entries on the ``syst`` axis: ``<name>Up`` (and ``<name>Down`` when two-sided)."""
        return [f"{self.name}{s}" for s in self.sides]


def _btag(name: str) -> Source:
    return Source(f"btag_{name}", "weight", "btag",
                  correlation="uncorrelated" if "stats" in name else "correlated")


REGISTRY: tuple[Source, ...] = (
    Source("pileup", "weight", "pileup"),
    *(_btag(n) for n in ("hf", "lf", "hfstats1", "hfstats2", "lfstats1", "lfstats2", "cferr1", "cferr2")),
    Source("muR", "weight", "theory", combine="envelope", envelope="scale", correlation="uncorrelated"),
    Source("muF", "weight", "theory", combine="envelope", envelope="scale", correlation="uncorrelated"),
    Source("muRmuF", "weight", "theory", combine="envelope", envelope="scale", correlation="uncorrelated"),
    Source("isr", "weight", "theory"),
    Source("fsr", "weight", "theory"),
    Source("jesTotal", "shape", "jes"),
    *(Source(f"jes{s}", "shape", "jes", component_of="jesTotal")
      for s in ("Absolute", "FlavorQCD", "RelativeBal", "BBEC1")),
    Source("jer", "shape", "jer"),
)
BY_NAME = {s.name: s for s in REGISTRY}

#: b-tag shape-SF systematic of each registry source (``up_<this>``/``down_<this>``)
BTAG_SYST = {f"btag_{n}": n for n in ("hf", "lf", "hfstats1", "hfstats2", "lfstats1", "lfstats2", "cferr1", "cferr2")}


def select(names=None) -> tuple[Source, ...]:
    """Sources named in ``names`` (source names or group names; None or ``"all"``: every one),
    in registry order. An unknown name raises ``KeyError`` naming it."""
    if names is None or names == "all":
        return REGISTRY
    if isinstance(names, str):
        names = [names]
    wanted = set()
    for n in names:
        if n in BY_NAME:
            wanted.add(n)
        elif n in GROUPS:
            wanted.update(s.name for s in REGISTRY if s.group == n)
        else:
            raise KeyError(f"unknown systematic {n!r}; known: {', '.join(BY_NAME)} or a group ({', '.join(GROUPS)})")
    return tuple(s for s in REGISTRY if s.name in wanted)


def syst_names(sources) -> list[str]:
    """``["nominal", "<name>Up", "<name>Down", ...]`` in the order of ``sources``."""
    return [NOMINAL] + [v for s in sources for v in s.variations]


def syst_axis(sources):
    """The fixed ``StrCategory`` axis ``syst`` (no growth) of ``sources``."""
    import hist
    return hist.axis.StrCategory(syst_names(sources), name="syst", label="systematic variation")


def parse(syst: str) -> tuple[Source | None, str | None]:
    """``"btag_hfUp"`` -> (Source btag_hf, "Up"); ``"nominal"`` -> (None, None)."""
    if syst == NOMINAL:
        return None, None
    for side in ("Up", "Down"):
        if syst.endswith(side) and syst[: -len(side)] in BY_NAME:
            return BY_NAME[syst[: -len(side)]], side
    raise KeyError(f"not a systematic variation of the registry: {syst!r}")
