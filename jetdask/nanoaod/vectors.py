"""vector's ``Momentum4D`` behaviour for the events view, with coordinates read once per array.

vector's awkward backend re-reads a vector's coordinate fields every time it needs them:
``mu.pt`` projects ``pt`` and ``phi`` three times, ``a.deltaR(b)`` projects every coordinate
of both sides two to three times. On plain collections a projection is free, but on what
analyses build from them it is a full copy each time: the leptons of ``ak.where(is_mm, muons,
electrons)`` are a union (muons and electrons have different fields), and every projection
of a union merges both sides; a masked or ``ak.cartesian`` collection is an indexed view whose
projection gathers. The DY+jets selection spent about a third of its time there.

:data:`BEHAVIOR` maps ``Momentum4D`` arrays to :class:`MomentumArray4D`, a subclass of vector's
class that keeps the coordinate objects (``azimuthal``, ``longitudinal``, ``temporal``) and the
projected ``pt``/``eta``/``phi``/``mass`` fields on the array object, keyed on its layout
(``array["x"] = ...`` replaces the layout, which drops the cache). ``pt``, ``eta``, ``phi`` and
``mass`` of a vector stored as pt, eta, phi, mass are the stored fields: vector returns them
unchanged, here without its dispatch. Everything else is vector's own code on those
coordinates; the record name stays ``Momentum4D``. The events view attaches the mapping to
the arrays it builds (awkward carries it to every array derived from them); arrays made
elsewhere keep vector's globally registered class.
"""
from __future__ import annotations

from typing import Any

import vector
import vector.backends.awkward as _vak

vector.register_awkward()

# Field names that make vector read a coordinate other than pt, eta, phi, mass.
_OTHER_COORDINATES = frozenset({"x", "y", "z", "t", "px", "py", "pz", "rho", "theta", "tau", "E", "e",
                                "energy", "M", "m"})
_STORED = {"pt": "azimuthal", "phi": "azimuthal", "eta": "longitudinal", "mass": "temporal"}


def _stored_or_computed(name: str) -> property:
    """The array's own ``name`` field when it has one (read once), else vector's computation."""
    computed = getattr(_vak.MomentumAwkward4D, name).fget

    def get(self):
        out = self._jd_stored(name)
        return computed(self) if out is None else out
    return property(get)


class _CachedCoordinates:
    """Coordinates and stored momentum fields of a ``Momentum4D`` array, computed once per layout."""

    def _jd_cache(self) -> dict:
        layout = self._layout
        entry = self.__dict__.get("_jd_coordinates")
        if entry is None or entry[0] is not layout:
            entry = (layout, {})
            self._jd_coordinates: tuple[Any, dict] = entry
        return entry[1]

    def _jd_get(self, key, make):
        cache = self._jd_cache()
        try:
            return cache[key]
        except KeyError:
            value = cache[key] = make()
            return value

    def _jd_stored(self, name: str):
        """The field ``name`` when vector would return it unchanged, else None."""
        fields = self._jd_get("fields", lambda: frozenset(self.fields))
        if name in fields and {"pt", "eta", "phi"} <= fields and not (fields & _OTHER_COORDINATES):
            return self._jd_get(name, lambda: self[name])  # type: ignore[index]  # mixed into ak.Array
        return None

    def __getattr__(self, where):
        """``array.field``: a field without sub-fields is projected once per layout (records:
        every access projects anew, as awkward does, so ``x = array.rec; x["f"] = ...`` stays local)."""
        if where.startswith("_") or where not in self._layout.fields:
            return super().__getattr__(where)
        cache = self._jd_cache()
        key = ("field", where)
        if key in cache:
            return cache[key]
        value = self[where]
        if not value.fields:
            cache[key] = value
        return value

    @property
    def azimuthal(self):
        return self._jd_get("azimuthal", lambda: _vak.MomentumAwkward4D.azimuthal.fget(self))

    @property
    def longitudinal(self):
        return self._jd_get("longitudinal", lambda: _vak.MomentumAwkward4D.longitudinal.fget(self))

    @property
    def temporal(self):
        return self._jd_get("temporal", lambda: _vak.MomentumAwkward4D.temporal.fget(self))

    pt = _stored_or_computed("pt")
    phi = _stored_or_computed("phi")
    eta = _stored_or_computed("eta")
    mass = _stored_or_computed("mass")


class MomentumArray4D(_CachedCoordinates, _vak.MomentumArray4D):
    """vector's ``MomentumArray4D`` reading each coordinate field once (see the module docstring)."""


#: Behaviour overlay for the events view: ``Momentum4D`` arrays get :class:`MomentumArray4D`.
BEHAVIOR = {("*", "Momentum4D"): MomentumArray4D}
