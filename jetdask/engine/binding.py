"""A run directory belongs to one analysis: its class, the sha256 of its source and its arguments.

The first run on a directory records the analysis' *identity* in the ledger (meta key
``analysis_identity``): the spec it was loaded from (``analyses/dimuon.py:Dimuon``), the class
(or function) name, the file that defines it with the sha256 of that file's bytes, and its
arguments. The arguments are the ``--kwargs`` given to the class together with the instance's
JSON-able public attributes (so ``Dimuon()`` and ``Dimuon(min_pt=20)`` are the same arguments,
and an analysis built in Python without a spec is compared by what it holds), except
``resources`` (where chunks run, not what they compute).

A later run or resubmit on that directory whose analysis differs (another class, an edited
source file, other arguments) is refused with one line naming what differs, before a cluster
starts: the histograms already stored were made by the recorded analysis, and mixing them with
another's would be a wrong answer that looks right. ``--allow-analysis-change``
(``Runner(..., allow_analysis_change=True)``) accepts the change when the user knows it cannot
alter the results done so far; the new identity is recorded and the change is kept in
``analysis_changes``. A directory with no done chunk yet takes the new analysis without asking
(nothing it holds was made by the old one). Directories made before identities were recorded
are compared by what they have (the spec's class name and the ``--kwargs``) and get the full
record on their next run.

:func:`differences` is the policy, a pure function of two identities.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import os
import time

from ..errors import ConfigError
from .protocol import ChunkState

META_KEY = "analysis_identity"
CHANGES_KEY = "analysis_changes"
MAX_ARGUMENTS_JSON = 65536     # larger arguments are recorded (and compared) by their sha256
NOT_ARGUMENTS = frozenset({"resources"})   # where chunks run (dask resources, e.g. a GPU), not what they compute


def _jsonable(value):
    """``value`` as JSON would give it back (tuples as lists), or ``None`` when not JSON-able."""
    try:
        return True, json.loads(json.dumps(value, sort_keys=True, allow_nan=True))
    except (TypeError, ValueError):
        return False, None


def arguments(analysis) -> dict:
    """The analysis' arguments: its JSON-able public attributes, overridden by the ``--kwargs`` given."""
    out = {}
    for key, value in sorted(vars(analysis).items()):
        if key.startswith("_") or key in NOT_ARGUMENTS:
            continue
        ok, plain = _jsonable(value)
        if ok:
            out[key] = plain
    ok, given = _jsonable(dict(getattr(analysis, "_spec_kwargs", None) or {}))
    out.update(given if ok else {})
    text = json.dumps(out, sort_keys=True)
    if len(text) > MAX_ARGUMENTS_JSON:
        return {"sha256": hashlib.sha256(text.encode()).hexdigest()}
    return out


def _defining_object(analysis):
    fn = getattr(analysis, "fn", None)          # FunctionAnalysis: the decorated function
    return fn if callable(fn) and not isinstance(analysis, type) else type(analysis)


def source(analysis) -> tuple[str | None, str | None]:
    """(file that defines the analysis, sha256 of its bytes); the hash of the class' own source
    text where it has no file (a notebook cell); ``(None, None)`` where neither can be read."""
    obj = _defining_object(analysis)
    spec = getattr(analysis, "_spec", None) or ""
    candidates = []
    target = spec.rsplit(":", 1)[0] if ":" in spec else ""
    if target.endswith(".py"):
        candidates.append(target)
    try:
        candidates.append(inspect.getsourcefile(obj))
    except (TypeError, OSError):
        pass
    for path in candidates:
        if path and os.path.isfile(path):
            with open(path, "rb") as f:
                return os.path.abspath(path), hashlib.sha256(f.read()).hexdigest()
    try:
        text = inspect.getsource(obj)
    except (TypeError, OSError):
        return None, None
    return None, hashlib.sha256(text.encode()).hexdigest()


def defaults(analysis) -> dict:
    """The JSON-able defaults of the class' arguments (what a legacy record's absent ``--kwargs`` meant)."""
    try:
        params = inspect.signature(type(analysis).__init__).parameters.values()
    except (TypeError, ValueError):
        return {}
    out = {}
    for p in params:
        if p.default is not inspect.Parameter.empty:
            ok, plain = _jsonable(p.default)
            if ok:
                out[p.name] = plain
    return out


def identity(analysis) -> dict:
    """What the run directory records about ``analysis`` (JSON)."""
    obj = _defining_object(analysis)
    path, digest = source(analysis)
    name = getattr(obj, "__qualname__", None) or type(analysis).__name__
    return {"spec": getattr(analysis, "_spec", None) or f"{getattr(obj, '__module__', '?')}:{name}",
            "class": name, "source": path, "sha256": digest, "arguments": arguments(analysis)}


def legacy_identity(spec: str | None, kwargs: dict | None) -> dict | None:
    """What a directory made before identities were recorded says (``None``: nothing)."""
    if not spec:
        return None
    return {"spec": spec, "class": spec.rsplit(":", 1)[-1], "kwargs": dict(kwargs or {}), "legacy": True}


def _short(value) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."


def differences(recorded: dict | None, current: dict) -> list[str]:
    """What differs between the recorded identity and the current one, in words ([] = the same).

    A legacy record (no source hash) compares the class name and the ``--kwargs`` given; a hash
    or a source that one side could not read is not compared.
    """
    if not recorded:
        return []
    out = []
    if recorded.get("class") != current.get("class"):
        out.append(f"analysis {current.get('spec')} instead of {recorded.get('spec')}")
        return out
    if recorded.get("sha256") and current.get("sha256") and recorded["sha256"] != current["sha256"]:
        where = os.path.basename(recorded.get("source") or "") or "its source"
        out.append(f"{where} changed since the directory was made "
                   f"(sha256 {recorded['sha256'][:12]} -> {current['sha256'][:12]})")
    if recorded.get("legacy"):     # the --kwargs given then and now, over the class' defaults
        base = current.get("defaults") or {}
        theirs = {**base, **(recorded.get("kwargs") or {})}
        mine = {**base, **(current.get("kwargs") or {})}
        changed = sorted(k for k in set(theirs) | set(mine) if theirs.get(k) != mine.get(k))
    else:
        theirs, mine = recorded.get("arguments") or {}, current.get("arguments") or {}
        changed = sorted(k for k in set(theirs) | set(mine) if theirs.get(k) != mine.get(k))
    if changed:
        out.append("arguments " + ", ".join(
            f"{k} {_short(theirs[k]) if k in theirs else '(unset)'} -> {_short(mine[k]) if k in mine else '(unset)'}"
            for k in changed))
    return out


def recorded(ledger) -> dict | None:
    """The identity a run directory's ledger records (a legacy one for older directories)."""
    ident = ledger.get_meta(META_KEY)
    if ident:
        return ident
    return legacy_identity(ledger.get_meta("analysis"), ledger.get_meta("analysis_kwargs"))


def _has_results(ledger) -> int:
    """Done chunks (and folded files) the directory holds: what another analysis would mix with."""
    done = int(ledger.counts().get(ChunkState.DONE, 0))
    if done:
        return done
    return int(ledger.db.execute("SELECT COUNT(*) FROM file_results").fetchone()[0])   # (schema.py: always there)


def check(ledger, analysis, run_dir: str, allow: bool = False) -> tuple[dict, list[str]]:
    """The current identity and what differs from the recorded one; raises :class:`ConfigError`
    (one line) when it differs, results are stored and the change is not allowed."""
    current = identity(analysis)
    if getattr(analysis, "_spec", None) is not None:
        current["kwargs"] = dict(getattr(analysis, "_spec_kwargs", None) or {})
    current["defaults"] = defaults(analysis)
    rec = recorded(ledger)
    diffs = differences(rec, current)
    if diffs and not allow:
        n = _has_results(ledger)
        if n:
            raise ConfigError(
                f"{run_dir} holds {n} done chunk(s) of {(rec or {}).get('spec')}; this run's analysis differs: "
                f"{'; '.join(diffs)}. Use a new run directory, or pass --allow-analysis-change "
                f"(Python: allow_analysis_change=True) if the change cannot alter the results done so far",
                "run_dir")
    return current, diffs


def check_run_dir(run_dir: str, analysis, allow: bool = False) -> list[str]:
    """:func:`check` on an existing run directory, read-only (the CLI, before a cluster starts)."""
    from .ledger import Ledger
    path = os.path.join(run_dir, "ledger.sqlite")
    if not os.path.exists(path):
        return []
    led = Ledger(path, readonly=True)
    try:
        return check(led, analysis, os.path.abspath(run_dir), allow)[1]
    finally:
        led.close()


def record(ledger, current: dict, diffs: list[str]) -> None:
    """Write the identity (the run-lock holder, before the run goes); a change is kept with its reasons."""
    ident = {k: v for k, v in current.items() if k not in ("kwargs", "defaults")}
    if ledger.get_meta(META_KEY) == ident:
        return
    if diffs:
        changes = ledger.get_meta(CHANGES_KEY) or []
        changes.append({"at": time.time(), "from": recorded(ledger), "to": ident, "what": diffs})
        ledger.set_meta(CHANGES_KEY, changes)
    ledger.set_meta(META_KEY, ident)
    if current.get("kwargs") is not None:          # what resubmit rebuilds the analysis with
        ledger.set_meta("analysis", current["spec"])
        ledger.set_meta("analysis_kwargs", current["kwargs"])
