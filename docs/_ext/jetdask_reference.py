"""Reference pages generated from jetdask's own code, and a check that public names are documented.

At ``builder-inited`` this extension writes MyST fragments into ``docs/_generated/`` (ignored by
git and by Sphinx's page discovery); the reference pages ``{include}`` them:

* ``cli.md`` from :func:`jetdask.cli.build_parser` (every subcommand: usage, options, examples,
  exit codes);
* ``configuration.md`` from :data:`jetdask.config_schema.SCHEMA` and the defaults and comments of
  ``jetdask/config.yaml``;
* ``exit-codes.md`` from :mod:`jetdask.cli.common` (the codes and their text, and the commands
  whose ``--help`` states other ones);
* ``policy.md`` from :data:`jetdask.engine.policy.TABLE`.

A fragment is rewritten only when its text changed, so an unchanged build stays incremental.

``autodoc-process-docstring``: a public function, class, method or property that autodoc
documents without a docstring is a warning (an error under ``-W``).
"""
from __future__ import annotations

import argparse
import os
import re

import yaml
from sphinx.util import logging

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- text helpers
def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell (backticks kept: they mark code)."""
    text = " ".join(str(text).split())
    return re.sub(r"([\\|*<>\[\]])", r"\\\1", text)


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _fence(text: str, lang: str = "text") -> str:
    return f"```{lang}\n{text.rstrip()}\n```\n"


# --------------------------------------------------------------------------- CLI
def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _option_name(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`"
    metavar = ""
    if action.nargs != 0:
        if action.metavar is not None:
            metavar = f" {action.metavar}"
        elif action.choices is not None:
            metavar = " {" + ",".join(map(str, action.choices)) + "}"
        else:
            metavar = f" {action.dest.upper()}"
    return ", ".join(f"`{s}{metavar}`" for s in action.option_strings)


def _epilog_parts(parser: argparse.ArgumentParser) -> tuple[list[str], str]:
    """(examples, the exit-codes sentence) of a subcommand's epilog."""
    examples, codes = [], ""
    for block in (parser.epilog or "").split("\n\n"):
        lines = block.strip().splitlines()
        if not lines:
            continue
        if lines[0].startswith("exit codes:"):          # one line (further lines are other notes)
            codes = lines[0].strip()
        elif lines[0].rstrip(":") in ("example", "examples"):
            examples += [line.strip() for line in lines[1:]]
    return examples, codes


def _parser_section(name: str, parser: argparse.ArgumentParser, level: str) -> str:
    formatter = parser._get_formatter()
    out = [f"{level} `{name}`\n", (parser.description or "").strip() + "\n", _fence(parser.format_usage().strip())]
    for group in parser._action_groups:
        actions = [a for a in group._group_actions
                   if a.help != argparse.SUPPRESS and not isinstance(a, (argparse._HelpAction,
                                                                          argparse._SubParsersAction))]
        if not actions:
            continue
        title = {"positional arguments": "Arguments", "options": "Options"}.get(group.title, group.title.capitalize())
        rows = [[_option_name(a), _cell(formatter._expand_help(a) if a.help else "")] for a in actions]
        head = "argument" if title == "Arguments" else "option"
        out += [f"**{title}**\n", _table([head, "meaning"], rows)]
    examples, codes = _epilog_parts(parser)
    if examples:
        out += ["**Examples**\n", _fence("\n".join(examples), "console")]
    if codes:
        out.append(f"**Exit codes**: {_cell(codes[len('exit codes:'):].strip())}.\n")
    return "\n".join(out)


def cli_markdown() -> str:
    from jetdask.cli import build_parser
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"            # usage lines wrapped as on a wide terminal
    try:
        top = build_parser()
        subs = _subcommands(top)
        parts = ["(cli-jetdask)=\n", _parser_section("jetdask", top, "##")]
        for name, parser in subs.items():
            parts += [f"(cli-{name})=\n", _parser_section(f"jetdask {name}", parser, "##")]
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old
    return "\n".join(parts)


# --------------------------------------------------------------------------- configuration
def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def _config_comments(path: str) -> tuple[dict[str, str], dict[str, str]]:
    """({dotted key: its comment}, {section: its comment}) from config.yaml."""
    from jetdask.config_schema import yaml_keys
    entries = yaml_keys(_read(path))
    return ({e.key: e.comment for e in entries},
            {e.key: e.comment for e in entries if e.section})


def _default(value) -> str:
    if isinstance(value, dict):
        return "\n" + _fence(yaml.safe_dump(value, default_flow_style=False, sort_keys=False), "yaml")
    return f"`{yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}`"


def config_markdown() -> str:
    """One entry per key: its heading, default, type and range, and what it does."""
    import jetdask
    from jetdask.config_schema import SCHEMA
    path = os.path.join(os.path.dirname(jetdask.__file__), "config.yaml")
    defaults = yaml.safe_load(_read(path))["jetdask"]
    comments, section_comments = _config_comments(path)
    out = []
    for section in [""] + sorted({k.split(".")[0] for k in SCHEMA if "." in k}):
        keys = [k for k in SCHEMA if (k.split(".")[0] == section if section else "." not in k)]
        level = "###"
        if section:
            out += [f"### `jetdask.{section}.*`\n", section_comments.get(section, "") + "\n"]
            level = "####"
        for key in keys:
            value = defaults
            for part in key.split("."):
                value = value[part]
            text = comments.get(key, "").replace(f"[{SCHEMA[key].text}]", "").strip()
            out += [f"{level} `jetdask.{key}`\n",
                    f"*{SCHEMA[key].text}*; default: {_default(value)}\n",
                    text + "\n"]
    return "\n".join(out)


# --------------------------------------------------------------------------- exit codes
def exit_codes_markdown() -> str:
    from jetdask.cli import build_parser
    from jetdask.cli import common as cli_common
    names = {getattr(cli_common, n): n for n in dir(cli_common) if n.startswith("EXIT_") and n != "EXIT_CODES"}
    text = cli_common.EXIT_CODES.removeprefix("exit codes:").strip()
    rows = []
    for item in re.split(r";\s+(?=\d+ )", text):          # "; " before the next code
        code, _, meaning = item.partition(" ")
        rows.append([f"`{code}`", _cell(meaning), f"`{names.get(int(code), '')}`"])
    out = [_table(["code", "meaning", "constant in `jetdask.cli.common`"], rows)]
    other = []
    for name, parser in _subcommands(build_parser()).items():
        _, codes = _epilog_parts(parser)
        if codes and codes != cli_common.EXIT_CODES:
            other.append([f"[`jetdask {name}`](#cli-{name})", _cell(codes.removeprefix("exit codes:").strip())])
    if other:
        out += ["Commands whose codes read differently (from their `--help`):\n",
                _table(["command", "exit codes"], other)]
    return "\n".join(out)


# --------------------------------------------------------------------------- failure policy
def policy_markdown() -> str:
    from jetdask.engine.policy import TABLE, Limits
    rows = [[str(i), _cell(r.outcome), _cell(r.condition) or "", _cell(r.action)] for i, r in enumerate(TABLE, 1)]
    limits = Limits()
    return (_table(["#", "outcome of an attempt", "condition", "action"], rows)
            + f"\nThe limits come from the configuration: `retries` = `jetdask.retries` (default {limits.retries}), "
              f"`split-floor` = `jetdask.split-floor` (default {limits.split_floor}), the backoff from "
              f"`jetdask.retry-backoff` ({limits.backoff} s) doubling up to `jetdask.retry-backoff-max` "
              f"({limits.backoff_max} s).\n")


GENERATORS = {"cli.md": cli_markdown, "configuration.md": config_markdown,
              "exit-codes.md": exit_codes_markdown, "policy.md": policy_markdown}


def generate(app) -> None:
    folder = os.path.join(app.srcdir, "_generated")
    os.makedirs(folder, exist_ok=True)
    for name, make in GENERATORS.items():
        text = "<!-- generated by docs/_ext/jetdask_reference.py; do not edit -->\n\n" + make()
        path = os.path.join(folder, name)
        if not os.path.exists(path) or _read(path) != text:
            with open(path, "w") as f:
                f.write(text)


# --------------------------------------------------------------------------- undocumented names
def check_documented(app, what, name, obj, options, lines) -> None:
    if what not in ("function", "class", "exception", "method", "property"):
        return
    if name.rsplit(".", 1)[-1].startswith("_"):
        return
    if not any(line.strip() for line in lines):
        logger.warning(f"public {what} {name} has no docstring", type="jetdask", subtype="undocumented")


# --------------------------------------------------------------------------- references into the code
_MISSING = object()


def _lookup(dotted: str, annotated: bool = False):
    """The module, or attribute path of one, that ``a.b.c`` names; ``_MISSING`` if none.

    With ``annotated``, a name only annotated on its class (a dataclass field without a
    default) counts too, as ``None``."""
    import importlib
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except Exception:  # noqa: BLE001 - not a module (or one that fails to import): try a shorter path
            continue
        for name in parts[cut:]:
            found = getattr(obj, name, _MISSING)
            if found is _MISSING and annotated and name in getattr(obj, "__annotations__", {}):
                found = None
            if found is _MISSING:
                return _MISSING
            obj = found
        return obj
    return _MISSING


def _object(dotted: str):
    """The module, or attribute path of one, that ``a.b.c`` names; ``None`` if none."""
    obj = _lookup(dotted)
    return None if obj is _MISSING else obj


def _importable(dotted: str) -> bool:
    return dotted.split(".")[-1] != "__annotations__" and _lookup(dotted, annotated=True) is not _MISSING


def code_reference(app, env, node, contnode):
    """A Python reference to real code that the reference pages do not document: plain text.

    Docstrings name internal modules and functions (``:mod:`registry```,
    ``:func:`jetdask.plotting.hists.fold```); they exist, they are just not part of the public
    reference. A name that exists nowhere (relative to the module or class it is written in)
    stays unresolved, and ``nitpicky`` makes it a warning: a broken reference.
    """
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "").lstrip("~.")
    module, cls = node.get("py:module") or "", node.get("py:class") or ""
    places = [f"{module}.{cls}" if cls else module]
    where = re.search(r"docstring of ([\w.]+)", str(node.source or ""))
    if where:                              # the object whose docstring holds the reference
        places.append(where.group(1))
    if cls:                                # a class documented under a re-exporting package
        real = _object(f"{module}.{cls}")
        if real is not None and getattr(real, "__module__", None):
            places.append(f"{real.__module__}.{getattr(real, '__qualname__', cls)}")
    scopes = [""]
    for place in places:                   # the place, then each enclosing class, module and package
        while place:
            scopes.append(place)
            place = place.rpartition(".")[0]
    if any(_importable(f"{scope}.{target}" if scope else target) for scope in scopes):
        return contnode
    return None


class _EmptyGlob:
    """Drops "toctree glob pattern ... didn't match any documents": a folder's glob may have no page
    beyond those its toctree lists first (Sphinx gives that warning no type to suppress it by)."""

    @staticmethod
    def filter(record) -> bool:
        return getattr(record, "subtype", None) != "empty_glob"


def setup(app):
    import logging as std_logging
    std_logging.getLogger("sphinx.sphinx.directives.other").addFilter(_EmptyGlob())
    app.connect("builder-inited", generate)
    app.connect("missing-reference", code_reference)
    app.connect("autodoc-process-docstring", check_documented)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
