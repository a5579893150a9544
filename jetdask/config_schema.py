"""The one schema of the ``jetdask.*`` configuration: type and range of every key.

``config.yaml`` beside this module holds the defaults; the comment block above each key there
ends with ``[RULE]``, the rule text of its entry here (``tests/test_config_schema.py`` keeps
the two in step: same keys, same rule, default valid). Adding a key is one entry in
:data:`SCHEMA` plus the key with its comment in ``config.yaml``.

:func:`validate` checks the values in effect (defaults, the user's dask YAML files,
``DASK_JETDASK__*`` environment variables, ``dask.config.set``) and raises a
:class:`~jetdask.errors.ConfigError` naming the first bad key, e.g.
``jetdask.chunk-size: must be an integer >= 1, got 'abc'``.
"""
from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Mapping

from .errors import ConfigError
from .suggest import did_you_mean


@dataclasses.dataclass(frozen=True)
class Rule:
    kind: str                      # "int", "float", "bool", "mapping", "choice", "size" (bytes), "duration" (s)
    minimum: float | None = None
    maximum: float | None = None
    strict_minimum: bool = False   # minimum excluded (> instead of >=)
    nullable: bool = False
    choices: tuple = ()            # kind "choice": the allowed strings

    @property
    def text(self) -> str:
        """The rule in words, as it appears in ``config.yaml``'s comments."""
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "size":
            at_least = "" if self.minimum is None else f" {_bound(self)}"
            return f"bytes: an integer{at_least} or a size such as 256MiB"
        if self.kind == "duration":
            return f"seconds: a number {_bound(self)} or a time such as 60s"
        noun = {"int": "integer", "float": "number", "bool": "true or false",
                "mapping": "mapping of names to values"}[self.kind]
        parts = [noun]
        if self.minimum is not None:
            parts.append(f"{'>' if self.strict_minimum else '>='} {_num(self.minimum)}")
        if self.maximum is not None:
            parts.append(f"and <= {_num(self.maximum)}")
        if self.nullable:
            parts.append("or null")
        return " ".join(parts)

    def check(self, value: Any) -> bool:
        if value is None:
            return self.nullable
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "choice":
            return value in self.choices
        if self.kind == "mapping":
            return isinstance(value, Mapping)
        if self.kind in ("size", "duration"):
            value = size_bytes(value) if self.kind == "size" else duration_seconds(value)
            if value is None:
                return False
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.kind == "int" and not (isinstance(value, int) or (math.isfinite(value) and value == int(value))):
            return False
        if not math.isfinite(value):
            return False
        if self.minimum is not None and (value <= self.minimum if self.strict_minimum else value < self.minimum):
            return False
        return self.maximum is None or value <= self.maximum


def size_bytes(value: Any) -> int | None:
    """Bytes of a size value (an integer >= 0 or a dask-style string such as ``"256MiB"``), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        from dask.utils import parse_bytes
        try:
            value = parse_bytes(value)
        except (ValueError, TypeError):
            return None
    if isinstance(value, (int, float)) and math.isfinite(value) and value >= 0 and value == int(value):
        return int(value)
    return None


def duration_seconds(value: Any) -> float | None:
    """Seconds of a duration value (a number, or a dask-style time string such as ``"60s"``,
    ``"5 minutes"``), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        from dask.utils import parse_timedelta
        try:
            value = parse_timedelta(value)
        except (ValueError, TypeError, KeyError):
            return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def normalise(key: str, value: Any) -> Any:
    """The value of ``jetdask.<key>`` in its unit: sizes in bytes (int), durations in seconds
    (float); others (and values that are not valid: :func:`validate` names them) as they are."""
    rule = SCHEMA.get(key)
    if rule is None or value is None:
        return value
    if rule.kind == "size":
        got = size_bytes(value)
    elif rule.kind == "duration":
        got = duration_seconds(value)
    else:
        return value
    return value if got is None else got


def _bound(rule: Rule) -> str:
    return f"{'>' if rule.strict_minimum else '>='} {_num(rule.minimum)}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _int(minimum=None, **kw) -> Rule:
    return Rule("int", minimum, **kw)


def _float(minimum=None, **kw) -> Rule:
    return Rule("float", minimum, **kw)


def _seconds(minimum=None, **kw) -> Rule:
    return Rule("duration", minimum, **kw)


# key (below ``jetdask.``) -> rule; one entry per key of config.yaml
SCHEMA: dict[str, Rule] = {
    "chunk-size": _int(1),
    "inflight-per-thread": _int(1),
    "batch-seconds": _seconds(0),
    "retries": _int(0),
    "retry-backoff": _seconds(0),
    "retry-backoff-max": _seconds(0),
    "no-worker-timeout": _seconds(0, strict_minimum=True),
    "split-floor": _int(1),
    "memory-fraction": _float(0, maximum=1, strict_minimum=True),
    "memory-overhead": _float(0, strict_minimum=True),
    "memory-sample-interval": _seconds(0, strict_minimum=True),
    "default-budget": Rule("size", 1),
    "bisect-failures": Rule("bool"),
    "bisect-min-events": _int(1),
    "file-cache-size": _int(1),
    "open-timeout": _seconds(0, strict_minimum=True),
    "file-cache-bytes": Rule("size"),
    "prefetch": Rule("bool"),
    "prefetch-bytes": Rule("size"),
    "xrootd.connection-window": _int(1),
    "xrootd.connection-retry": _int(1),
    "xrootd.stream-error-window": _int(1),
    "xrootd.timeout-resolution": _int(1),
    "inference.threads": _int(1, nullable=True),
    "inference.memory-budget-cpu": Rule("size", 1),
    "inference.memory-budget-cuda": Rule("size", 1),
    "worker-environ": Rule("mapping"),
    "ledger-journal": Rule("choice", choices=("auto", "wal", "delete")),
}

_SECTIONS = {k.split(".")[0] for k in SCHEMA if "." in k}


@dataclasses.dataclass(frozen=True)
class YamlKey:
    """One key of ``config.yaml`` as written: dotted below ``jetdask.`` (``""`` for ``jetdask``
    itself), its indentation depth, whether its line holds no value (a section or an empty
    mapping follows) and the comment block right above it, joined into one line."""
    key: str
    depth: int
    section: bool
    comment: str


def yaml_keys(text: str) -> list[YamlKey]:
    """Every key of a ``config.yaml``-style text (two-space indents), in file order, with its comment.

    The one reader of the comments: the configuration reference (docs/_ext) and the test that
    keeps the comments' ``[RULE]`` in step with :data:`SCHEMA` both use it."""
    out, stack, comment = [], [], []
    for line in text.splitlines():
        if line.strip().startswith("#"):
            comment.append(line.strip().lstrip("#").strip())
            continue
        m = re.match(r"^( *)([A-Za-z_-]+):\s*(.*)$", line)
        if not m:
            comment = []
            continue
        depth = len(m.group(1)) // 2
        stack = stack[:depth] + [m.group(2)]
        out.append(YamlKey(".".join(stack[1:]), depth, m.group(3).split("#")[0].strip() == "", " ".join(comment)))
        comment = []
    return out


def _flatten(cfg: Mapping, prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}".replace("_", "-")   # dask normalises env-var underscores like this
        if name in _SECTIONS and isinstance(value, Mapping):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def validate(cfg: Mapping | None = None) -> dict[str, Any]:
    """Check ``cfg`` (default: ``dask.config.get("jetdask")``); the flat ``{key: value}`` if valid."""
    if cfg is None:
        import dask.config

        from . import config  # noqa: F401  (registers the defaults)
        cfg = dask.config.get("jetdask", default={}) or {}
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"must be a mapping of keys, got {cfg!r}", "jetdask")
    flat = _flatten(cfg)
    for name, value in flat.items():
        rule = SCHEMA.get(name)
        if rule is None:
            raise ConfigError(f"unknown configuration key{did_you_mean(name, SCHEMA)}", f"jetdask.{name}")
        if not rule.check(value):
            article = "" if rule.kind == "bool" else ("an " if rule.text[0] in "aeiou" else "a ")
            raise ConfigError(f"must be {article}{rule.text}, got {value!r}", f"jetdask.{name}")
    env = flat.get("worker-environ") or {}
    for k, v in env.items():
        if v is not None and not isinstance(v, (str, int, float)):
            raise ConfigError(f"must be a string, a number or null, got {v!r}", f"jetdask.worker-environ.{k}")
    return flat
