"""Sphinx configuration of the jetdask documentation (MyST Markdown, notebooks with stored outputs).

Build: ``bash scripts/docs.sh`` (warnings are errors), then open ``docs/_build/html/index.html``.
"""
from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "_ext"))
sys.path.insert(0, os.path.dirname(HERE))          # jetdask from this checkout

import jetdask  # noqa: E402

project = "jetdask"
author = "the jetdask authors"
copyright = "the jetdask authors, BSD-3-Clause"
release = version = jetdask.__version__

extensions = [
    "myst_nb",                 # MyST Markdown pages and the notebooks (includes myst_parser)
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
    "jetdask_reference",       # docs/_ext: CLI, configuration, exit codes, failure policy from the code
]

exclude_patterns = ["_build", "_generated", "_tools", "**/.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}

# notebooks are shown with the outputs stored in docs/notebooks/ (docs/_tools/execute_notebooks.py)
nb_execution_mode = "off"
nb_merge_streams = True

myst_enable_extensions = ["colon_fence", "deflist", "substitution"]
myst_heading_anchors = 3

# every reference must resolve: to a documented object, or (docs/_ext/jetdask_reference.py) to an
# object that exists in the code or an installed package; a name found nowhere is a warning
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"'.*|(typing\.)?(dict|list|tuple|set|Mapping)\[.*"),   # pieces of annotations autodoc splits at commas
    (r"py:.*", r"(Path|Any|Callable|Iterable|Iterator|Mapping|Sequence|Client|Hist|Array|NDArray|Tensor|"
               r"Module|Figure|Axes|Future|optional)"),
]

# every directive says :members: itself (a default "members" would override a directive's list)
autodoc_default_options = {"undoc-members": True, "show-inheritance": True, "member-order": "bysource"}
autodoc_typehints = "signature"
autodoc_member_order = "bysource"
autoclass_content = "both"
add_module_names = False

html_theme = "furo"
html_title = f"jetdask {release}"
html_static_path = ["_static"]
html_css_files = ["jetdask.css"]
html_show_sourcelink = False
html_last_updated_fmt = None
