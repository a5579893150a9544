"""The CLI explains itself: --version, help for every option, examples and exit codes per subcommand;
the subcommand modules do not import ``jetdask.cli`` (no import cycle)."""
from __future__ import annotations

import argparse
import ast
import os
import subprocess
import sys

import pytest

from jetdask import __version__
from jetdask.cli import build_parser
from readfiles import read_text

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _subparsers(ap):
    for action in ap._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


SUBCOMMANDS = sorted(_subparsers(build_parser()))


def test_all_subcommands_present():
    assert set(SUBCOMMANDS) >= {"run", "resubmit", "status", "sample", "preprocess", "train", "evaluate", "plot",
                                "demo"}


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_option_has_help_and_each_subcommand_examples_and_exit_codes(name):
    p = _subparsers(build_parser())[name]
    for action in p._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help and action.help.strip(), f"jetdask {name} {action.option_strings or action.dest}"
        if action.default not in (None, False) and action.option_strings:
            # a default other than "off" is stated in the help text
            assert "default" in action.help, f"jetdask {name} {action.option_strings}: {action.help}"
    text = p.format_help()
    assert "example" in text and f"jetdask {name}" in text.split("example")[1]
    assert "exit codes:" in text and " 0 " in text.split("exit codes:")[1] and " 2 " in text.split("exit codes:")[1]


def test_top_level_help_and_version():
    ap = build_parser()
    text = ap.format_help()
    assert "thin subcommands" not in text and "exit codes:" in text
    out = subprocess.run([sys.executable, "-m", "jetdask.cli", "--version"], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=REPO), timeout=120)
    assert out.returncode == 0 and out.stdout.strip().startswith(f"jetdask {__version__}")


def test_usage_errors_go_to_stderr_as_one_line(capsys):
    from jetdask.cli import main
    with pytest.raises(SystemExit) as err:
        main(["sample", "--out", "x", "--events", "0"])
    assert err.value.code == 2
    cap = capsys.readouterr()
    assert cap.out == "" and len(cap.err.strip().splitlines()) == 1 and "--events" in cap.err


@pytest.mark.parametrize("module", sorted(m for m in os.listdir(os.path.join(REPO, "jetdask", "cli"))
                                           if m.endswith(".py") and m not in ("__init__.py", "__main__.py")))
def test_subcommand_modules_do_not_import_the_top_level_cli(module):
    """Each subcommand module imports jetdask.cli.common and never the package or another subcommand."""
    tree = ast.parse(read_text(os.path.join(REPO, "jetdask", "cli", module)))
    siblings = {m[:-3] for m in os.listdir(os.path.join(REPO, "jetdask", "cli")) if m.endswith(".py")} - {"common"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = ("." * node.level) + (node.module or "")
            assert target not in (".", "..cli", "jetdask.cli") and not (
                node.level == 1 and node.module in siblings), f"{module} imports {target}"


def test_domain_packages_do_not_import_argparse():
    """The command line lives in jetdask/cli/ only."""
    for root, _, files in os.walk(os.path.join(REPO, "jetdask")):
        if os.path.basename(root) in ("cli", "__pycache__"):
            continue
        for f in files:
            if f.endswith(".py"):
                tree = ast.parse(read_text(os.path.join(root, f)))
                names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
                names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
                assert "argparse" not in names, os.path.join(root, f)


@pytest.mark.parametrize("argv", [["preprocess", "--help"], ["train", "--help"], ["evaluate", "--help"]])
def test_standalone_subcommand_entry_points(argv):
    mod = {"preprocess": "jetdask.cli.preprocess", "train": "jetdask.cli.train",
           "evaluate": "jetdask.cli.train"}[argv[0]]
    args = argv[1:] if argv[0] == "preprocess" else argv
    out = subprocess.run([sys.executable, "-m", mod, *args], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=REPO), timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"jetdask {argv[0]}" in out.stdout
