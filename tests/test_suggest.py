"""'Did you mean': one helper for every near miss (keys, subcommands, analyses, cluster kinds, branches)."""
from __future__ import annotations

import ast
import os

from jetdask.suggest import close_names, did_you_mean
from readfiles import read_text

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_closest_name_or_nothing():
    assert did_you_mean("chunk-sise", ["chunk-size", "retries"]) == "; did you mean 'chunk-size'?"
    assert did_you_mean("zzz", ["chunk-size", "retries"]) == ""
    near = close_names("Jet_ptt", ["Electron_charge", "Muon_pt", "Jet_eta", "Jet_pt"], n=2)
    assert len(near) == 2 and near[0] == "Jet_pt" and "Electron_charge" not in near
    assert close_names("xsek", ["xsec", "lumi"], cutoff=0.75) == ["xsec"]


def test_no_other_module_computes_near_misses():
    for root, _, files in os.walk(os.path.join(REPO, "jetdask")):
        for f in files:
            path = os.path.join(root, f)
            if f.endswith(".py") and path != os.path.join(REPO, "jetdask", "suggest.py"):
                tree = ast.parse(read_text(path))
                names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
                names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
                assert "difflib" not in names, path
