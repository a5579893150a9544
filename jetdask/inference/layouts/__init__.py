"""Input layouts: the single definition of what a tagger sees, from ROOT branches to tensors.

A layout turns the kept jets of one collection into float32 arrays, one per model argument
(in the model's argument order), plus for each array a boolean ``valid`` array of the same
shape: False for padding, empty slots, non-finite values, sentinels and garbage (the rules
of each layout: ``layout.missing()``). Missing entries hold 0 after conversion; a scaler maps
them to its per-feature default and distortions never touch them (nor integer features).
The same ``layout.convert`` runs in the inference pass (:func:`jetdask.inference.tagger_pass`)
and in the preprocessing (``layout:`` in its YAML), which writes exactly these arrays and
masks as training tensors and fits the scaler on them.

Built-in layouts (``get_layout(name)``; :mod:`.builtin`):

``deepjet``  ``glob (N,15)``, ``cpf (N,25,16)``, ``npf (N,25,6)``, ``sv (N,4,12)`` from
             the PFNano DeepJet table ``Jet_DeepJet_*`` (slot i filled when i < nCpfcand /
             nNpfcand / nsv); the 15 globals are those of the reference DeepJet.
``deepcsv``  ``x (N,65)``: every ``Jet_DeepCSV_*`` input; track slot i is missing where
             i >= jetNSelectedTracks (jetNTracksEtaRel for trackEtaRel_i).
``part``     ``features (N,21,50)``, ``vectors (N,4,50)`` = (px, py, pz, E), ``mask (N,1,50)``
             from ``Jet.pfcands``, candidates sorted by decreasing pT and clipped to 50.
``pn``       ParticleNet-style on AK4 jets: ``points (N,2,50)`` (deta, dphi),
             ``features (N,18,50)``, ``mask (N,1,50)`` from ``Jet.pfcands``.

Modules: :mod:`.access` (flat access to kept jets and candidates), :mod:`.specs`
(:class:`InputSpec`, :class:`Converted`, :class:`Layout`), :mod:`.slots` (per-jet branches),
:mod:`.jagged` (candidate lists), :mod:`.builtin`. Layouts are frozen dataclasses: hashable
(the conversion of a chunk is shared by every tagger with an equal layout) and cheap to
pickle; ``layout.columns`` lists the branches to read.

A new layout registers under its name with ``register_layout(layout)``; ``get_layout(name)``
finds it (in every process that imported the registering module).
"""
from __future__ import annotations

from .access import Records, kept_jets, list_items
from .builtin import (
    BUILTIN,
    CPF_FEATURES,
    DEEPCSV,
    DEEPCSV_FEATURES,
    DEEPJET,
    DEEPJET_GLOBALS,
    NPF_FEATURES,
    PART,
    PART_FEATURES,
    PN,
    PN_FEATURES,
    SV_FEATURES,
)
from .jagged import DERIVED, INTEGER_DERIVED, VECTOR_FEATURES, CandidateContext, JaggedLayout
from .slots import SlotInput, SlotLayout
from .specs import ABS_MAX, SENTINEL, Converted, InputSpec, Layout

LAYOUTS: dict = {lay.name: lay for lay in BUILTIN}


def register_layout(layout: Layout, name: str | None = None, *, replace: bool = False) -> Layout:
    """Make ``layout`` known as ``name`` (default ``layout.name``) to :func:`get_layout`; returns it."""
    if not isinstance(layout, Layout):
        raise TypeError(f"expected a Layout, got {type(layout).__name__}")
    key = name or layout.name
    if key in LAYOUTS and LAYOUTS[key] != layout and not replace:
        raise ValueError(f"layout name {key!r} is already registered (replace=True to override)")
    LAYOUTS[key] = layout
    return layout


def get_layout(layout) -> Layout:
    """A :class:`Layout` from a registered name or a layout object (returned as is)."""
    if isinstance(layout, Layout):
        return layout
    try:
        return LAYOUTS[layout]
    except (KeyError, TypeError):
        raise KeyError(f"unknown layout {layout!r}; registered: {sorted(LAYOUTS)} "
                       "(pass a Layout object, or register_layout() it)") from None


def layout_name(layout) -> str:
    """The registered name of ``layout`` (a name or a registered layout object)."""
    if isinstance(layout, str):
        get_layout(layout)
        return layout
    for k, v in LAYOUTS.items():
        if v == layout:
            return k
    raise KeyError(f"layout {getattr(layout, 'name', layout)!r} is not registered (register_layout() it)")


__all__ = ["Records", "kept_jets", "list_items", "InputSpec", "Converted", "Layout", "SlotInput", "SlotLayout",
           "JaggedLayout", "CandidateContext", "DERIVED", "INTEGER_DERIVED", "VECTOR_FEATURES", "SENTINEL",
           "ABS_MAX", "DEEPJET", "DEEPCSV", "PART", "PN", "LAYOUTS", "get_layout", "register_layout",
           "layout_name", "CPF_FEATURES", "NPF_FEATURES", "SV_FEATURES", "DEEPJET_GLOBALS", "DEEPCSV_FEATURES",
           "PART_FEATURES", "PN_FEATURES"]
