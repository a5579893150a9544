"""The systematic sources of a run's ``syst`` axis, from the systematics registry.

The registry (:mod:`jetdask.corrections.systematics`) declares each source once: name,
group, sides, quadrature or envelope, and whether it is a component of another source. Here
its axis names (``<source>Up``/``<source>Down``) become the
:class:`~jetdask.scalefactors.sources.Source` list the SF derivation combines:

* sources sharing an ``envelope`` key (muR, muF, muRmuF: ``scale``) form one envelope source;
* a source with ``component_of`` (the regrouped JES sources beside ``jesTotal``) is reported
  per source but not added to its group or the total.

Axis names the registry does not know are paired by name (``X_up``/``X_down``, ``XUp``/
``XDown``) and form their own group, so every variation of a run has its place.
"""
from __future__ import annotations

from .sources import NOMINAL, Source, sources_from_axis


def _registry_sources(categories: list[str]) -> list[Source]:
    """Sources of the registry for these axis categories ([] without a registry)."""
    try:
        from ..corrections.systematics import parse
    except ImportError:
        return []
    entries: dict[str, dict] = {}
    for c in categories:
        if c == NOMINAL:
            continue
        try:
            src, _side = parse(c)
        except KeyError:      # not a registry variation: paired by name below
            continue
        if src is None:
            continue
        key = getattr(src, "envelope", None) or src.name
        combine = "envelope" if (getattr(src, "envelope", None) or src.combine == "envelope") else "updown"
        e = entries.setdefault(key, {"group": src.group, "combine": combine, "members": [],
                                     "in_total": getattr(src, "component_of", None) is None})
        e["members"].append(c)
    return [Source(k, e["group"], tuple(e["members"]), e["combine"], e["in_total"]) for k, e in entries.items()]


def sources_for(categories) -> list[Source]:
    """Every non-nominal category of ``categories`` in exactly one source, registry first."""
    categories = [str(c) for c in categories]
    known = _registry_sources(categories)
    used = {m for s in known for m in s.members}
    rest = [c for c in categories if c != NOMINAL and c not in used]
    return known + sources_from_axis(rest)
