"""The systematics registry and the fixed ``syst`` axis (table-driven)."""
from __future__ import annotations

import pytest

from jetdask.corrections import systematics as reg
from jetdask.corrections.btag import shape_systematic


def test_registry_order_names_and_axis():
    names = reg.syst_names(reg.REGISTRY)
    assert names[0] == "nominal" and len(names) == 1 + 2 * len(reg.REGISTRY)
    assert names[1:5] == ["pileupUp", "pileupDown", "btag_hfUp", "btag_hfDown"]
    assert names[-2:] == ["jerUp", "jerDown"]
    ax = reg.syst_axis(reg.REGISTRY)
    assert list(ax) == names and ax.name == "syst"
    # the same in every call (never built from a set), whatever order the request names them in
    names_a = reg.syst_names(reg.select(["jer", "pileup", "btag"]))
    assert names_a == reg.syst_names(reg.select(["btag", "jer", "pileup"]))
    assert sum(s.kind == "weight" for s in reg.REGISTRY) * 2 >= 20


@pytest.mark.parametrize("request_,expected", [
    (["theory"], ["muR", "muF", "muRmuF", "isr", "fsr"]),
    (["jes"], ["jesTotal", "jesAbsolute", "jesFlavorQCD", "jesRelativeBal", "jesBBEC1"]),
    (["jer", "pileup"], ["pileup", "jer"]),
    ([], []),
])
def test_select_keeps_registry_order(request_, expected):
    assert [s.name for s in reg.select(request_)] == expected


def test_unknown_name_and_bad_declaration_raise():
    with pytest.raises(KeyError, match="btag_hff"):
        reg.select(["btag_hff"])
    with pytest.raises(ValueError):
        reg.Source("x", "weight", "nope")
    with pytest.raises(ValueError):
        reg.Source("x", "weight", "theory", combine="envelope")   # an envelope without its key


@pytest.mark.parametrize("syst,source,side", [
    ("nominal", None, None), ("btag_cferr1Up", "btag_cferr1", "Up"), ("jesTotalDown", "jesTotal", "Down"),
    ("muRmuFUp", "muRmuF", "Up"),
])
def test_parse(syst, source, side):
    s, sd = reg.parse(syst)
    assert (s.name if s else None, sd) == (source, side)


@pytest.mark.parametrize("variation,systematic", [
    ("nominal", "central"), ("pileupUp", "central"), ("btag_hfUp", "up_hf"), ("btag_cferr2Down", "down_cferr2"),
    ("jesTotalUp", "up_jes"), ("jesAbsoluteDown", "down_jesAbsolute"), ("jerUp", "central"), ("muRUp", "central"),
])
def test_shape_sf_systematic_of_each_pass(variation, systematic):
    assert shape_systematic(variation) == systematic


def test_groups_combine_and_components():
    by = reg.BY_NAME
    assert {by[n].envelope for n in ("muR", "muF", "muRmuF")} == {"scale"}
    assert all(by[n].component_of == "jesTotal" for n in ("jesAbsolute", "jesFlavorQCD", "jesRelativeBal", "jesBBEC1"))
    assert by["jesTotal"].component_of is None and by["jer"].kind == "shape" and by["pileup"].kind == "weight"
