"""The systematic sources of a run's ``syst`` axis, from the project's systematics registry.

The registry declares each source once (name, group, sides, envelope or quadrature); here
it becomes the :class:`~jetdask.scalefactors.sources.Source` list the SF derivation combines.
Axis categories the registry does not know are paired by name (``X_up``/``X_down``) and form
their own group, so a run made with a newer registry still gives every variation its place.
"""
from __future__ import annotations

from .sources import NOMINAL, Source, sources_from_axis


def _registry_sources(categories: list[str]) -> list[Source]:
    """Sources the registry declares for these axis categories ([] when no registry is importable)."""
    try:
        from ..corrections import registry as reg  # the corrections layer's registry
    except ImportError:
        return []
    describe = getattr(reg, "sf_sources", None)
    if describe is None:
        return []
    return [Source(s["name"], s["group"], tuple(s["members"]), s.get("combine", "updown"))
            for s in describe(categories)]


def sources_for(categories) -> list[Source]:
    """Every non-nominal category of ``categories`` in exactly one source, registry first."""
    categories = [str(c) for c in categories]
    known = _registry_sources(categories)
    used = {m for s in known for m in s.members}
    rest = [c for c in categories if c != NOMINAL and c not in used]
    return known + sources_from_axis(rest)
