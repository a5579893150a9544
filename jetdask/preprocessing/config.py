"""The preprocessing YAML: schema, defaults and validation.

``load_config(source)`` takes a path (YAML/JSON), a dict or ``None`` (the defaults of
``default.yaml`` beside this module) and returns a plain, fully populated dict: every key
of the schema present, types checked, values in range. Every problem raises
:class:`~jetdask.errors.ConfigError` naming the key (``"reweighting.target"``,
``"splits.train"``, ``"defaults.variables['Jet_pt'].valid_min"``); unknown keys are
errors too (with the closest known key as a hint), so a typo never silently falls back
to a default.

The types are the dict :data:`TYPES` below (a nested dict per section); the defaults are
written once, in ``default.yaml``, which documents every key (one comment each) and must
give every key of :data:`TYPES` (:func:`jetdask.config.schema_with_defaults`).
"""
from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

from ..config import check_type, merge_schema, read_user_config, schema_with_defaults
from ..errors import ConfigError

DEFAULT_YAML = str(files("jetdask.preprocessing").joinpath("default.yaml"))   # package data

NUM = (int, float)
OPT_NUM = (int, float, type(None))
_LEPTON = {   # muons and electrons take the same keys
    "enabled": (bool,),
    "pt_min": NUM,
    "abs_eta_max": NUM,
    "id": (str, type(None)),
    "id_min": NUM,
    "iso": (str, type(None)),
    "iso_max": OPT_NUM,
}

# name -> types or nested dict (a section). ``dict`` values whose keys are user-chosen
# (patterns, class names) are checked by dedicated validators below.
TYPES: dict[str, Any] = {
    "datasets": (list, type(None)),
    "chunk_size": (int, type(None)),
    "collection": (str,),
    "layout": (str, type(None)),
    "features": (list,),
    "features_exclude": (list,),
    "cleaning": {
        "pt_min": OPT_NUM,
        "pt_max": OPT_NUM,
        "abs_eta_max": OPT_NUM,
        "jet_id_bits": (int,),
        "gen_match": (bool,),
        "leptons": {
            "delta_r": OPT_NUM,
            "muons": _LEPTON,
            "electrons": _LEPTON,
        },
    },
    "labels": {
        "scheme": (str,),
        "classes": (dict, type(None)),
        "source": (str,),
    },
    "splits": {
        "train": NUM,
        "validation": NUM,
        "test": NUM,
        "seed": (int,),
    },
    "defaults": {
        "sentinels": (list,),
        "placeholder": (str, int, float),
        "auto_margin": NUM,
        "fallback_placeholder": NUM,
        "abs_max": OPT_NUM,
        "slots": (dict,),
        "variables": (dict,),
    },
    "reweighting": {
        "enabled": (bool,),
        "target": (str,),
        "correct": (str,),
        "pt_bins": (dict, list),
        "eta_bins": (dict, list),
        "abs_eta": (bool,),
        "min_count": (int,),
        "source_split": (str,),
        "max_weight": OPT_NUM,
        "use_gen_weight": (bool,),
    },
    "scaling": {
        "exclude": (list,),
    },
    "outputs": {
        "tensors": (bool,),
        "scale_tensors": (bool,),
        "defaulted_mask": (bool,),
        "plots": (bool,),
    },
}
#: ``name -> (types, default)``; the defaults are those of ``default.yaml`` (written there only)
SCHEMA: dict[str, Any] = schema_with_defaults(TYPES, DEFAULT_YAML)

SPLIT_NAMES = ("train", "validation", "test")
TARGETS_BUILTIN = ("average", "flat")
CORRECTIONS = ("kinematics", "classes", "both")
SOURCES = ("auto", "flavsplit", "hadron")
VARIABLE_KEYS = {"valid_min", "valid_max", "sentinels", "placeholder"}


def _check_patterns(values, key):
    for i, p in enumerate(values):
        if not isinstance(p, str) or not p:
            raise ConfigError(f"expected a non-empty string (branch name or glob pattern), got {p!r}", f"{key}[{i}]")


def _check_bins(spec, key):
    if isinstance(spec, list):
        if len(spec) < 2:
            raise ConfigError("custom bin edges need at least 2 values", key)
        try:
            edges = [float(x) for x in spec]
        except (TypeError, ValueError):
            raise ConfigError(f"bin edges must be numbers, got {spec!r}", key) from None
        if any(b <= a for a, b in zip(edges, edges[1:])):
            raise ConfigError("bin edges must increase strictly", key)
        return edges
    allowed = {"n", "lo", "hi", "log", "edges"}
    unknown = set(spec) - allowed
    if unknown:
        raise ConfigError("unknown key; expected n, lo, hi, log or edges", f"{key}.{sorted(unknown)[0]}")
    if "edges" in spec:
        if set(spec) - {"edges"}:
            raise ConfigError("give either edges or n/lo/hi/log", key)
        return _check_bins(spec["edges"], key + ".edges")
    for k in ("n", "lo", "hi"):
        if k not in spec:
            raise ConfigError("missing (equal-width bins need n, lo, hi)", f"{key}.{k}")
    n = spec["n"]
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ConfigError(f"expected a positive integer, got {n!r}", f"{key}.n")
    lo, hi = (check_type(spec[k], NUM, f"{key}.{k}") for k in ("lo", "hi"))
    if hi <= lo:
        raise ConfigError(f"hi ({hi}) must exceed lo ({lo})", f"{key}.hi")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"expected true/false, got {log!r}", f"{key}.log")
    if log and lo <= 0:
        raise ConfigError("logarithmic bins need lo > 0", f"{key}.lo")
    return {"n": n, "lo": float(lo), "hi": float(hi), "log": log}


def _check_number_list(values, key):
    out = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, NUM):
            raise ConfigError(f"expected a number, got {v!r}", f"{key}[{i}]")
        out.append(float(v))
    return out


def _check_placeholder(value, key):
    if isinstance(value, str):
        if value != "auto":
            raise ConfigError(f"expected 'auto' or a number, got {value!r}", key)
        return value
    if isinstance(value, bool) or not isinstance(value, NUM):
        raise ConfigError(f"expected 'auto' or a number, got {value!r}", key)
    return float(value)


def validate(cfg: dict) -> dict:
    """Check values beyond their types (ranges, names, consistency); returns the normalised dict."""
    from .label import SCHEMES

    if cfg["datasets"] is not None:
        for i, d in enumerate(cfg["datasets"]):
            if not isinstance(d, str):
                raise ConfigError(f"expected a dataset name, got {d!r}", f"datasets[{i}]")
    if cfg["chunk_size"] is not None and cfg["chunk_size"] < 1:
        raise ConfigError("must be >= 1", "chunk_size")
    if cfg["layout"] is not None:
        from ..inference.layouts import LAYOUTS, get_layout
        try:
            lay = get_layout(cfg["layout"])
        except KeyError:
            raise ConfigError(f"unknown layout {cfg['layout']!r}; registered: {', '.join(sorted(LAYOUTS))}",
                              "layout") from None
        if lay.jets != cfg["collection"]:
            raise ConfigError(f"layout {cfg['layout']!r} reads {lay.jets}: set collection: {lay.jets}", "collection")
    _check_patterns(cfg["features"], "features")
    _check_patterns(cfg["features_exclude"], "features_exclude")
    if not cfg["features"]:
        raise ConfigError("at least one feature pattern is needed", "features")

    c = cfg["cleaning"]
    for k in ("pt_min", "pt_max", "abs_eta_max"):
        if c[k] is not None and c[k] < 0:
            raise ConfigError("must be >= 0 (or null to disable)", f"cleaning.{k}")
    if c["jet_id_bits"] < 0:
        raise ConfigError("must be >= 0 (0 disables the jet ID requirement)", "cleaning.jet_id_bits")
    if c["leptons"]["delta_r"] is not None and c["leptons"]["delta_r"] < 0:
        raise ConfigError("must be >= 0 (or null to disable lepton cleaning)", "cleaning.leptons.delta_r")
    for lep in ("muons", "electrons"):
        L = c["leptons"][lep]
        if (L["iso"] is None) != (L["iso_max"] is None):
            raise ConfigError("iso and iso_max go together (both set or both null)", f"cleaning.leptons.{lep}.iso_max")

    lab = cfg["labels"]
    if lab["source"] not in SOURCES:
        raise ConfigError(f"expected one of {', '.join(SOURCES)}, got {lab['source']!r}", "labels.source")
    if lab["classes"] is None:
        if lab["scheme"] not in SCHEMES:
            raise ConfigError(f"unknown scheme {lab['scheme']!r}; expected one of {', '.join(SCHEMES)} "
                              "or give labels.classes", "labels.scheme")
        lab["classes"] = {k: list(v) for k, v in SCHEMES[lab["scheme"]].items()}
    else:
        if lab["scheme"] not in (*SCHEMES, "custom"):
            raise ConfigError(f"unknown scheme {lab['scheme']!r}", "labels.scheme")
        lab["scheme"] = "custom"
        seen: dict[int, str] = {}
        if not lab["classes"]:
            raise ConfigError("at least one class is needed", "labels.classes")
        for name, codes in lab["classes"].items():
            key = f"labels.classes.{name}"
            if not isinstance(name, str) or not name or "/" in name:
                raise ConfigError("class names must be non-empty strings without '/'", key)
            if not isinstance(codes, list) or not codes:
                raise ConfigError(f"expected a non-empty list of FlavSplit codes, got {codes!r}", key)
            for i, code in enumerate(codes):
                if isinstance(code, bool) or not isinstance(code, int):
                    raise ConfigError(f"expected an integer FlavSplit code, got {code!r}", f"{key}[{i}]")
                if code in seen:
                    raise ConfigError(f"code {code} is already in class {seen[code]!r}", f"{key}[{i}]")
                seen[code] = name

    s = cfg["splits"]
    for k in SPLIT_NAMES:
        if not 0 <= s[k] <= 1:
            raise ConfigError(f"a fraction in [0, 1], got {s[k]}", f"splits.{k}")
    total = sum(s[k] for k in SPLIT_NAMES)
    if abs(total - 1.0) > 1e-9:
        raise ConfigError(f"train + validation + test must be 1, got {total}", "splits")
    if s["train"] <= 0:
        raise ConfigError("the training split cannot be empty (the scaler is computed on it)", "splits.train")
    if s["seed"] < 0:
        raise ConfigError("must be >= 0", "splits.seed")

    d = cfg["defaults"]
    d["sentinels"] = _check_number_list(d["sentinels"], "defaults.sentinels")
    d["placeholder"] = _check_placeholder(d["placeholder"], "defaults.placeholder")
    if d["abs_max"] is not None and d["abs_max"] <= 0:
        raise ConfigError("must be > 0 (or null)", "defaults.abs_max")
    if d["auto_margin"] < 0:
        raise ConfigError("must be >= 0", "defaults.auto_margin")
    for prefix, counter in d["slots"].items():
        if not isinstance(prefix, str) or not isinstance(counter, str) or not prefix or not counter:
            raise ConfigError("expected 'branch prefix': 'count branch'", f"defaults.slots[{prefix!r}]")
    for pattern, rule in d["variables"].items():
        key = f"defaults.variables[{pattern!r}]"
        if not isinstance(rule, dict):
            raise ConfigError(f"expected a mapping of {sorted(VARIABLE_KEYS)}, got {rule!r}", key)
        unknown = set(rule) - VARIABLE_KEYS
        if unknown:
            raise ConfigError(f"unknown key; expected {', '.join(sorted(VARIABLE_KEYS))}",
                              f"{key}.{sorted(unknown)[0]}")
        for k in ("valid_min", "valid_max"):
            if k in rule and rule[k] is not None:
                rule[k] = float(check_type(rule[k], NUM, f"{key}.{k}"))
        if "sentinels" in rule:
            rule["sentinels"] = _check_number_list(check_type(rule["sentinels"], (list,), f"{key}.sentinels"),
                                                   f"{key}.sentinels")
        if "placeholder" in rule:
            rule["placeholder"] = _check_placeholder(rule["placeholder"], f"{key}.placeholder")

    r = cfg["reweighting"]
    classes = list(lab["classes"])
    if r["target"] not in TARGETS_BUILTIN and r["target"] not in classes:
        raise ConfigError(f"expected average, flat or a class name ({', '.join(classes)}), got {r['target']!r}",
                          "reweighting.target")
    if r["correct"] not in CORRECTIONS:
        raise ConfigError(f"expected one of {', '.join(CORRECTIONS)}, got {r['correct']!r}", "reweighting.correct")
    r["pt_bins"] = _check_bins(r["pt_bins"], "reweighting.pt_bins")
    r["eta_bins"] = _check_bins(r["eta_bins"], "reweighting.eta_bins")
    if r["abs_eta"]:
        from .reweight import edges_from_spec
        if edges_from_spec(r["eta_bins"])[0] < 0:
            raise ConfigError("with abs_eta the eta bins must start at >= 0", "reweighting.eta_bins")
    if r["min_count"] < 1:
        raise ConfigError("must be >= 1", "reweighting.min_count")
    if r["source_split"] not in (*SPLIT_NAMES, "all"):
        raise ConfigError(f"expected train, validation, test or all, got {r['source_split']!r}",
                          "reweighting.source_split")
    if r["max_weight"] is not None and r["max_weight"] <= 0:
        raise ConfigError("must be > 0 (or null)", "reweighting.max_weight")
    _check_patterns(cfg["scaling"]["exclude"], "scaling.exclude")
    return cfg


def load_config(source=None) -> dict:
    """Validated, fully populated config from a YAML/JSON path, a dict, or the defaults (``None``)."""
    given = read_user_config(source)
    return validate(merge_schema(SCHEMA, given))


def default_yaml_config() -> dict:
    """``default.yaml`` read as a user's config and validated (the same as ``load_config(None)``)."""
    return load_config(DEFAULT_YAML)


def canonical(cfg: dict) -> str:
    """Stable JSON text of a config (to compare the config of an existing run directory)."""
    return json.dumps(cfg, sort_keys=True)
