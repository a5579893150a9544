"""The training YAML: types (:data:`TYPES`), defaults (written once, in ``default.yaml`` beside
this module) and validation.

``load_config(source, overrides)`` takes a path, a dict or ``None`` (the defaults), applies
``overrides`` (a dict of dotted keys, e.g. ``{"training.epochs": 3}``) and returns a fully
populated dict. Unknown keys and bad values raise :class:`~jetdask.errors.ConfigError` naming
the key (``"training.lr"``, ``"adversarial.method"``). The merge and type checks are those of
every tool's YAML (:func:`jetdask.config.merge_schema`).
"""
from __future__ import annotations

from importlib.resources import files
from typing import Any

from ..config import merge_schema, read_user_config, schema_with_defaults
from ..errors import ConfigError

DEFAULT_YAML = str(files("jetdask.training").joinpath("default.yaml"))   # package data

NUM = (int, float)
OPT_NUM = (int, float, type(None))
OPT_INT = (int, type(None))
OPT_STR = (str, type(None))

TYPES: dict[str, Any] = {
    "model": {
        "name": (str,),
        "kwargs": (dict,),
    },
    "data": {
        "preprocessed": OPT_STR,
        "train_split": (str,),
        "validation_split": (str,),
        "in_memory": (bool,),
        "max_jets": OPT_INT,
        "max_val_jets": OPT_INT,
        "resample": (bool,),
    },
    "training": {
        "epochs": (int,),
        "batch_size": (int,),
        "optimizer": (str,),
        "lr": NUM,
        "weight_decay": NUM,
        "schedule": (str,),
        "step_size": (int,),
        "gamma": NUM,
        "min_lr": NUM,
        "grad_clip": OPT_NUM,
        "seed": (int,),
        "device": (str,),
        "threads": OPT_INT,
    },
    "loss": {
        "name": (str,),
        "gamma": NUM,
        "label_smoothing": NUM,
    },
    "adversarial": {
        "method": (str,),
        "epsilon": NUM,
        "steps": (int,),
        "step_size": OPT_NUM,
        "random_start": (bool,),
        "mix": NUM,
    },
    "output": {
        "dir": OPT_STR,
        "keep_epochs": (bool,),
        "progress": (bool,),
    },
}
#: ``name -> (types, default)``; the defaults are those of ``default.yaml`` (written there only)
SCHEMA: dict[str, Any] = schema_with_defaults(TYPES, DEFAULT_YAML)

SPLITS = ("train", "validation", "test")
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("none", "step", "exponential", "cosine")
LOSSES = ("cross_entropy", "focal")
METHODS = ("none", "fgsm", "pgd")


def _choice(value, allowed, key):
    if value not in allowed:
        raise ConfigError(f"expected one of {', '.join(allowed)}, got {value!r}", key)


def _positive(value, key, strict=True):
    if value is not None and (value <= 0 if strict else value < 0):
        raise ConfigError(f"must be {'>' if strict else '>='} 0, got {value}", key)


def validate(cfg: dict) -> dict:
    from ..models import model_class
    try:
        model_class(cfg["model"]["name"])
    except (KeyError, ValueError, ImportError, AttributeError) as err:
        raise ConfigError(str(err).strip("'\""), "model.name") from None
    d, t, a = cfg["data"], cfg["training"], cfg["adversarial"]
    _choice(d["train_split"], SPLITS, "data.train_split")
    _choice(d["validation_split"], SPLITS, "data.validation_split")
    _positive(d["max_jets"], "data.max_jets")
    _positive(d["max_val_jets"], "data.max_val_jets")
    _positive(t["epochs"], "training.epochs")
    _positive(t["batch_size"], "training.batch_size")
    _positive(t["lr"], "training.lr")
    _positive(t["weight_decay"], "training.weight_decay", strict=False)
    _positive(t["step_size"], "training.step_size")
    _positive(t["gamma"], "training.gamma")
    _positive(t["min_lr"], "training.min_lr", strict=False)
    _positive(t["grad_clip"], "training.grad_clip")
    _positive(t["threads"], "training.threads")
    _choice(t["optimizer"], OPTIMIZERS, "training.optimizer")
    _choice(t["schedule"], SCHEDULES, "training.schedule")
    if t["seed"] < 0:
        raise ConfigError("must be >= 0", "training.seed")
    dev = t["device"]
    if not (dev in ("auto", "cpu", "cuda") or (dev.startswith("cuda:") and dev[5:].isdigit())):
        raise ConfigError(f"expected auto, cpu, cuda or cuda:N, got {dev!r}", "training.device")
    _choice(cfg["loss"]["name"], LOSSES, "loss.name")
    _positive(cfg["loss"]["gamma"], "loss.gamma", strict=False)
    if not 0 <= cfg["loss"]["label_smoothing"] < 1:
        raise ConfigError("must be in [0, 1)", "loss.label_smoothing")
    _choice(a["method"], METHODS, "adversarial.method")
    _positive(a["epsilon"], "adversarial.epsilon", strict=False)
    _positive(a["steps"], "adversarial.steps")
    _positive(a["step_size"], "adversarial.step_size")
    if not 0 <= a["mix"] <= 1:
        raise ConfigError(f"must be in [0, 1], got {a['mix']}", "adversarial.mix")
    return cfg


def _set_dotted(given: dict, key: str, value) -> None:
    parts = key.split(".")
    node = given
    for i, p in enumerate(parts[:-1]):
        nxt = node.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise ConfigError("is not a section", ".".join(parts[:i + 1]))
        node = nxt
    node[parts[-1]] = value


def load_config(source=None, overrides: dict | None = None) -> dict:
    """Validated, fully populated training config (see the module docstring)."""
    given = read_user_config(source)
    for k, v in (overrides or {}).items():
        if v is not None:
            _set_dotted(given, k, v)
    return validate(merge_schema(SCHEMA, given))
