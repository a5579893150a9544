"""The documentation's generated reference says what the code does, and its notebooks are current.

The reference pages are made by ``docs/_ext/jetdask_reference.py`` from the code itself; these
tests check the generators against the code they read (every subcommand and option, every
configuration key with its default, every exit code, every policy rule, whose example attempt
must give the rule's action in :func:`jetdask.engine.policy.decide`), and that the notebooks
shown with stored outputs in ``docs/notebooks/`` run the code of ``notebooks/``.
"""
from __future__ import annotations

import argparse
import os
import random

import nbformat
import pytest
import yaml

import jetdask_reference as ref
from jetdask.cli import build_parser
from jetdask.cli import common as cli_common
from jetdask.config_schema import SCHEMA
from jetdask.engine import policy
from jetdask.engine.protocol import ActionKind, AttemptKind, Departure

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("row", policy.TABLE, ids=[f"{i}:{r.outcome[:30]}" for i, r in enumerate(policy.TABLE, 1)])
def test_every_policy_rule_gives_its_action(row):
    action = policy.decide(row.attempt, row.history, policy.Limits(), random.Random(5))
    assert (action.kind, action.failure) == (row.kind, row.failure), (row, action)


def test_the_policy_table_covers_every_outcome_and_departure():
    kinds = {r.attempt.kind for r in policy.TABLE}
    assert kinds == set(AttemptKind)
    departures = {r.attempt.departure for r in policy.TABLE if r.attempt.kind == AttemptKind.WORKER_LEFT}
    assert departures == set(Departure)
    actions = {r.kind for r in policy.TABLE}
    assert actions == set(ActionKind)


def test_the_policy_page_has_every_rule():
    text = ref.policy_markdown()
    rows = [line for line in text.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) == len(policy.TABLE)
    for line, rule in zip(rows, policy.TABLE):
        assert rule.action.split(" ")[0] in line and rule.outcome.split(" ")[0] in line


def _subparsers(parser):
    return next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def test_the_cli_page_has_every_subcommand_and_option():
    text = ref.cli_markdown()
    subs = _subparsers(build_parser())
    assert len(subs) >= 9
    for name, parser in subs.items():
        assert f"## `jetdask {name}`" in text, name
        section = text.split(f"## `jetdask {name}`", 1)[1].split("\n## ", 1)[0]
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            for opt in action.option_strings or [action.metavar or action.dest]:
                assert f"`{opt}" in section, (name, opt)
        if parser.epilog and "example" in parser.epilog:
            assert "**Examples**" in section, name


def test_the_configuration_page_has_every_key_with_its_default():
    text = ref.config_markdown()
    with open(os.path.join(REPO, "jetdask", "config.yaml")) as f:
        defaults = yaml.safe_load(f)["jetdask"]
    entries = text.split("\n#")
    for key, rule in SCHEMA.items():
        entry = next((e for e in entries if e.lstrip("#").startswith(f" `jetdask.{key}`\n")), None)
        assert entry is not None, key
        value = defaults
        for part in key.split("."):
            value = value[part]
        if isinstance(value, dict):
            assert all(f"{k}:" in entry for k in value), key
        else:
            assert f"default: `{yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}`" \
                in entry, key
        assert f"*{rule.text}*" in entry, key
        meaning = entry.split("\n", 2)[-1].strip()
        assert len(meaning) > 20, f"{key}: no meaning given"


def test_the_exit_codes_page_has_every_code():
    text = ref.exit_codes_markdown()
    for name in ("EXIT_OK", "EXIT_USAGE", "EXIT_FAILED_CHUNKS", "EXIT_INTERRUPTED"):
        code = getattr(cli_common, name)
        assert f"| `{code}` |" in text and f"`{name}`" in text, name
    assert "jetdask status" in text      # status reads its codes differently


NOTEBOOKS = sorted(p for p in os.listdir(os.path.join(REPO, "notebooks")) if p.endswith(".ipynb"))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_the_docs_notebooks_are_the_notebooks_with_outputs(name):
    source = nbformat.read(os.path.join(REPO, "notebooks", name), as_version=4)
    shown = os.path.join(REPO, "docs", "notebooks", name)
    assert os.path.exists(shown), f"run: .venv/bin/python docs/_tools/execute_notebooks.py {name}"
    shown = nbformat.read(shown, as_version=4)
    assert [c.source for c in shown.cells] == [c.source for c in source.cells], \
        f"notebooks/{name} changed: run .venv/bin/python docs/_tools/execute_notebooks.py {name}"
    outputs = [o for c in shown.cells if c.cell_type == "code" for o in c.outputs]
    assert outputs and not [o for o in outputs if o.output_type == "error"]
    text = nbformat.writes(shown)
    assert "jetdask-nb-" not in text      # the temporary working directory is written as notebook-work
