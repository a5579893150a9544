"""One schema for ``jetdask.*``: config.yaml's keys and comments agree with it; bad values name the key."""
from __future__ import annotations

import os
import pathlib

import dask.config
import pytest
import yaml

from jetdask.config_schema import SCHEMA, validate, yaml_keys
from jetdask.errors import ConfigError

CONFIG_YAML = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "jetdask", "config.yaml")


def _yaml_keys_with_comments():
    """(dotted key below jetdask., the comment block right above it) for every leaf of config.yaml."""
    out = {}
    for entry in yaml_keys(pathlib.Path(CONFIG_YAML).read_text()):
        inside_mapping = any(entry.key.startswith(k + ".") for k, r in SCHEMA.items() if r.kind == "mapping")
        is_section = entry.section and entry.key not in SCHEMA
        if entry.depth >= 1 and not inside_mapping and not is_section:
            out[entry.key] = entry.comment
    return out


def test_config_yaml_and_schema_have_the_same_keys_and_rules():
    found = _yaml_keys_with_comments()
    assert set(found) == set(SCHEMA), (set(found) ^ set(SCHEMA))
    for key, comment in found.items():
        assert f"[{SCHEMA[key].text}]" in comment, f"config.yaml comment of {key} must end with [{SCHEMA[key].text}]"


def test_defaults_are_valid():
    with open(CONFIG_YAML) as f:
        validate(yaml.safe_load(f)["jetdask"])
    validate()


@pytest.mark.parametrize("key, value, words", [
    ("chunk-size", "abc", "integer >= 1"),
    ("chunk-size", 0, "integer >= 1"),
    ("chunk-size", 2.5, "integer >= 1"),
    ("retries", -1, "integer >= 0"),
    ("memory-fraction", 1.5, "number > 0 and <= 1"),
    ("memory-fraction", 0, "number > 0"),
    ("bisect-failures", "yes", "true or false"),
    ("inference.threads", 0, "integer >= 1 or null"),
    ("worker-environ", "x", "mapping"),
])
def test_bad_values_name_the_key(key, value, words):
    with dask.config.set({f"jetdask.{key}": value}):
        with pytest.raises(ConfigError) as err:
            validate()
    assert err.value.key == f"jetdask.{key}" and words in str(err.value) and repr(value) in str(err.value)


def test_unknown_key_suggests_the_closest():
    with dask.config.set({"jetdask.chunksize": 5}):
        with pytest.raises(ConfigError, match="did you mean 'chunk-size'"):
            validate()


def test_environment_style_underscores_are_the_same_key():
    assert validate({"chunk_size": 5, "inference": {"memory_budget_cpu": 10}})["chunk-size"] == 5
    assert validate({"inference": {"threads": None}})["inference.threads"] is None


@pytest.mark.parametrize("key, value, words", [
    ("retry-backoff", "soon", "seconds: a number >= 0 or a time such as 60s"),
    ("no-worker-timeout", "0s", "seconds: a number > 0"),
    ("open-timeout", True, "seconds: a number > 0"),
    ("default-budget", "lots", "bytes: an integer >= 1 or a size such as 256MiB"),
    ("default-budget", 0, "bytes: an integer >= 1"),
    ("inference.memory-budget-cpu", "-1MiB", "bytes: an integer >= 1"),
])
def test_bad_sizes_and_durations_name_the_key(key, value, words):
    with dask.config.set({f"jetdask.{key}": value}):
        with pytest.raises(ConfigError) as err:
            validate()
    assert err.value.key == f"jetdask.{key}" and words in str(err.value)


@pytest.mark.parametrize("key, value, expected", [
    ("no-worker-timeout", "5 minutes", 300.0),
    ("no-worker-timeout", "90s", 90.0),
    ("retry-backoff", 2, 2.0),
    ("batch-seconds", "500ms", 0.5),
    ("default-budget", "2GiB", 2 * 2**30),
    ("default-budget", 123456, 123456),
    ("inference.memory-budget-cpu", "64MiB", 64 * 2**20),
])
def test_sizes_and_durations_as_dask_strings_or_numbers(key, value, expected):
    from jetdask import config
    with dask.config.set({f"jetdask.{key}": value}):
        validate()
        got = config.get(key)
    assert got == expected and type(got) is type(expected)


def test_the_defaults_in_their_units():
    from jetdask import config
    assert config.get("default-budget") == 2_000_000_000
    assert config.get("inference.memory-budget-cpu") == 64 * 2**20
    assert config.get("inference.memory-budget-cuda") == 2 * 2**30
    assert config.get("open-timeout") == 60.0


def test_code_defaults_are_the_shipped_config():
    """Code that needs a default of ``jetdask.*`` (the policy's Limits, CLI help) takes config.yaml's,
    not the user's override and not a copy of its own."""
    from jetdask import config
    from jetdask.engine.policy import Limits
    with open(CONFIG_YAML) as f:
        shipped = yaml.safe_load(f)["jetdask"]
    with dask.config.set({"jetdask.retries": shipped["retries"] + 4, "jetdask.split-floor": 7}):
        assert config.get("retries") == shipped["retries"] + 4
        limits = Limits()
    assert (limits.retries, limits.split_floor) == (shipped["retries"], shipped["split-floor"])
    backoff = (config.default("retry-backoff"), config.default("retry-backoff-max"))
    assert (limits.backoff, limits.backoff_max) == backoff
    assert config.default("inference.memory-budget-cpu") == config.get("inference.memory-budget-cpu")
