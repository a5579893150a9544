"""The preprocessing driver: ``RUN/prep.json``, both passes as jetdask runs, the fits between
them (weights, scaler) and the client-side end (tensors, summary, plots); see :mod:`.pipeline`."""
from __future__ import annotations

import dataclasses
import fnmatch
import os
import time

import numpy as np

from ..errors import ConfigError, FileAccessError
from ..plugin import load_analysis
from . import defaults, layout_tensors, reweight, scale, split
from .config import canonical, load_config
from .passes import (
    FILESET_FILE,
    PASS1,
    PASS2,
    PREP_FILE,
    SCALER_FILE,
    SPEC1,
    SPEC2,
    WEIGHTS_FILE,
    _read_json,
    _write_json,
)


def resolve_features(branches, cfg: dict) -> list[str]:
    """Feature branches from the config patterns, in pattern order then file order, minus exclusions."""
    coll = cfg["collection"] + "_"
    avail = [b for b in branches if b.startswith(coll)]
    out: list[str] = []
    seen = set()
    for i, pat in enumerate(cfg["features"]):
        found = [b for b in avail if fnmatch.fnmatchcase(b, pat)]
        if not found:
            raise ConfigError(f"no {cfg['collection']} branch matches {pat!r}", f"features[{i}]")
        for b in found:
            if b not in seen and not any(fnmatch.fnmatchcase(b, x) for x in cfg["features_exclude"]):
                seen.add(b)
                out.append(b)
    if not out:
        raise ConfigError("every matching branch is excluded by features_exclude", "features")
    return out


def select_datasets(fs, cfg: dict) -> list[str]:
    names = [d.name for d in fs]
    if cfg["datasets"] is None:
        chosen = [d.name for d in fs if not d.is_data]
        if not chosen:
            raise ConfigError("the fileset has no simulated dataset (all have is_data: true)", "datasets")
        return sorted(chosen)
    for i, n in enumerate(cfg["datasets"]):
        if n not in names:
            raise ConfigError(f"dataset {n!r} is not in the fileset ({', '.join(names)})", f"datasets[{i}]")
        if fs[n].is_data:
            raise ConfigError(f"dataset {n!r} is data: preprocessing needs simulation", f"datasets[{i}]")
    return sorted(cfg["datasets"])


def _first_branches(fs, datasets) -> list[str]:
    from ..engine.planning import expand_patterns
    from ..nanoaod import io
    errors = []
    for ds in datasets:
        files, failed = expand_patterns(fs[ds].files, ds)
        errors.extend(f"{x.path}: {x.reason}" for x in failed)
        for f, url in ((spec, url) for spec, _ in files for url in spec.urls):
            try:
                t = io.open_tree(url, f.tree, cache=False)
                try:
                    return list(t.keys())
                finally:
                    t.file.close()
            except FileAccessError as err:
                errors.append(str(err))
    first = fs[datasets[0]].files[0].path if fs[datasets[0]].files else "?"
    raise FileAccessError(first, "no readable file to resolve the feature patterns: " + "; ".join(errors[:3]))


def _identity(cfg: dict) -> dict:
    """The part of a config that fixes the passes' results (everything but ``outputs``)."""
    return {k: v for k, v in cfg.items() if k != "outputs"}


def setup(config, fileset, run_dir: str, chunk_size: int | None = None) -> dict:
    """Create (or check) ``RUN/prep.json`` and ``RUN/fileset.json``; returns the prep dict.

    ``config``: path, dict, or ``None`` (the stored config when ``RUN`` exists, else the defaults).
    An existing ``RUN`` must have been made with the same config (its ``outputs`` section aside)
    and, when ``fileset`` is given, the same files.
    """
    from ..fileset import load_fileset
    run_dir = os.path.abspath(run_dir)
    prep_path = os.path.join(run_dir, PREP_FILE)
    resume_stored = config is None and os.path.exists(prep_path)
    cfg = _read_json(prep_path)["config"] if resume_stored else load_config(config)
    if os.path.exists(prep_path):
        prep = _read_json(prep_path)
        if canonical(_identity(prep["config"])) != canonical(_identity(cfg)):
            raise ConfigError(f"{run_dir} was made with another preprocessing config; use a new run directory",
                              "config")
        if fileset is not None:
            fs = load_fileset(fileset)
            sub = {d: fs[d] for d in prep["datasets"] if d in fs.datasets}
            stored = load_fileset(os.path.join(run_dir, FILESET_FILE))
            if set(sub) != set(prep["datasets"]) or any(sub[d].files != stored[d].files for d in sub):
                raise ConfigError(f"{run_dir} was made with another fileset; use a new run directory", "fileset")
        prep["config"]["outputs"] = cfg["outputs"]        # what is written at the end may change
        return prep
    if fileset is None:
        raise ConfigError(f"{run_dir} is not a preprocessing directory yet: give a fileset", "fileset")
    fs = load_fileset(fileset)
    datasets = select_datasets(fs, cfg)
    features = [] if cfg["layout"] else resolve_features(_first_branches(fs, datasets), cfg)
    sub = {}
    for d in datasets:
        ds = fs[d]
        sub[d] = ds.to_dict()
    os.makedirs(run_dir, exist_ok=True)          # only once the config, fileset and features are valid
    _write_json(os.path.join(run_dir, FILESET_FILE), sub, indent=1)
    prep = {"version": 1, "config": cfg, "features": features, "datasets": datasets, "chunk_size": chunk_size,
            "layout": cfg["layout"], "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    _write_json(prep_path, prep, indent=1)
    return prep


def _merged_hist(out, name):
    total = None
    for ds in sorted(out.hists):
        h = out.hists[ds].get(name)
        if h is not None:
            total = h.copy() if total is None else total + h
    return total


def _merged_counters(out) -> dict:
    total: dict[str, float] = {}
    for ds in sorted(out.counters):
        for k, v in out.counters[ds].items():
            total[k] = total.get(k, 0) + v
    return total


def _array_files(out, name) -> list[str]:
    """Parquet files ``name`` of the done chunks, datasets sorted, chunks in canonical order."""
    return [f for ds in sorted(out.array_files) for f in out.array_files[ds].get(name, [])]


def _dataset_files(out, name) -> list[tuple[str, str]]:
    return [(ds, f) for ds in sorted(out.array_files) for f in out.array_files[ds].get(name, [])]


def fit_pass1(run_dir: str, out1, prep: dict) -> tuple[reweight.WeightMap, dict]:
    """weights.json and scaler.json from the (complete) pass-1 output."""
    cfg = prep["config"]
    features = prep["features"]
    classes = list(cfg["labels"]["classes"])
    h = _merged_hist(out1, "kin")
    if h is None:
        pt_e = reweight.edges_from_spec(cfg["reweighting"]["pt_bins"])
        eta_e = reweight.edges_from_spec(cfg["reweighting"]["eta_bins"])
        h = reweight.make_hist(len(classes), pt_e, eta_e)
    wm = reweight.from_config(h, classes, cfg["reweighting"])
    wm.save(os.path.join(run_dir, WEIGHTS_FILE))
    if prep.get("layout"):
        from ..inference.layouts import get_layout
        layout = get_layout(prep["layout"])
        names = layout_tensors.moment_names(layout)
        table = scale.merge_tables((scale.table_from_parquet(f) for f in _array_files(out1, "moments")), names)
        if list(table["var"]) != names:
            raise ValueError("pass-1 moment tables do not list the layout's features")
        scaler = layout_tensors.build_scaler(prep["layout"], layout, table, cfg["defaults"], cfg["scaling"]["exclude"])
        scale.save_scaler(os.path.join(run_dir, SCALER_FILE), scaler)
        return wm, scaler
    table = scale.merge_tables((scale.table_from_parquet(f) for f in _array_files(out1, "moments")), features)
    if list(table["var"]) != list(features):
        raise ValueError("pass-1 moment tables do not list the configured features")
    rules = defaults.compile_rules(features, cfg["defaults"])
    placeholders = {}
    for i, r in enumerate(rules):
        n = int(table["n"][i])
        std = float(np.sqrt(table["m2"][i] / n)) if n else 1.0
        placeholders[r.var] = defaults.resolve_placeholder(r, float(table["min"][i]), std, n, cfg["defaults"])
    scaler = scale.build_scaler(table, placeholders, cfg["scaling"]["exclude"])
    scale.save_scaler(os.path.join(run_dir, SCALER_FILE), scaler)
    return wm, scaler


@dataclasses.dataclass
class PreprocessOutput:
    """What :func:`preprocess` returns: the run directory, whether both passes are complete
    (``stage``: ``pass1``, ``pass2`` or ``done``), the passes' outputs, the reweighting map, the
    scaler, the tensors per split (``{"dir", "n"}``), the summary and a message.
    """
    run_dir: str
    complete: bool
    stage: str                      # "pass1", "pass2" (incomplete there) or "done"
    pass1: object = None            # RunOutput
    pass2: object = None
    weight_map: object = None
    scaler: dict | None = None
    tensors: dict | None = None     # split -> {"dir", "n"}
    summary: dict | None = None
    message: str = ""


def _run_pass(spec, run_dir, pass_dir, client, serial, chunk_size, resubmit, progress):
    from ..engine.runner import Runner
    analysis = load_analysis(spec, prep_dir=run_dir)
    runner = Runner(analysis, os.path.join(run_dir, FILESET_FILE), os.path.join(run_dir, pass_dir), client,
                    chunk_size=chunk_size, serial=serial, progress=progress)
    runner.step = f"preprocessing pass {1 if pass_dir == PASS1 else 2}/2"      # named in the progress output
    t0 = time.perf_counter()
    try:
        out = runner.resubmit() if resubmit else runner.run()
        ran_all = runner.stats["done"] == out.counts.get("done", 0) > 0
    finally:
        runner.close()
    return out, (time.perf_counter() - t0) if ran_all else None


def _busy_seconds(pass_dir: str) -> float:
    """Sum over the done chunks of their task time (started -> finished, on the workers)."""
    from ..engine.ledger import Ledger
    led = Ledger(os.path.join(pass_dir, "ledger.sqlite"), readonly=True)
    try:
        row = led.db.execute("SELECT COALESCE(SUM(finished - started), 0) FROM chunks WHERE state='done'").fetchone()
        return float(row[0])
    finally:
        led.close()


def preprocess(config, fileset, run_dir: str, *, client=None, serial: bool = False, workers: int | None = None,
               chunk_size: int | None = None, resubmit: bool = False, progress: bool = True,
               verbose: bool = True, stop_after: str | None = None) -> PreprocessOutput:
    """Run (or resume) the whole preprocessing into ``run_dir``; see the module docstring.

    ``client``: a ``distributed.Client``; ``None`` starts a LocalCluster of ``workers``
    processes for the passes (closed at the end) unless ``serial``. ``resubmit``: rerun the
    failed chunks and unreadable files of the passes. A pass that stays incomplete stops the
    chain (``complete`` False, ``stage`` names the pass; its run directory says what failed).
    ``stop_after="pass1"`` stops once ``weights.json``/``scaler.json`` are written (to inspect
    them before writing shards; ``stage`` "pass1", ``complete`` False); run again to go on.
    """
    if stop_after not in (None, "pass1"):
        raise ConfigError(f"stop_after must be None or 'pass1', got {stop_after!r}", "stop_after")
    run_dir = os.path.abspath(run_dir)
    prep = setup(config, fileset, run_dir, chunk_size)
    cfg = prep["config"]
    chunk_size = chunk_size or prep.get("chunk_size") or cfg["chunk_size"]
    own = None
    if client is None and not serial:
        from ..cluster import start_cluster
        own = client = start_cluster("local", **({"n_workers": workers} if workers else {}))
    try:
        out1, t1 = _run_pass(SPEC1, run_dir, PASS1, client, serial, chunk_size, resubmit, progress)
        if not out1.complete:
            return PreprocessOutput(run_dir, False, "pass1", out1, message=_incomplete(run_dir, PASS1, out1))
        wm, scaler = fit_pass1(run_dir, out1, prep)
        if stop_after == "pass1":
            return PreprocessOutput(run_dir, False, "pass1", out1, None, wm, scaler,
                                    message="stopped after pass 1 (weights.json, scaler.json written)")
        out2, t2 = _run_pass(SPEC2, run_dir, PASS2, client, serial, chunk_size, resubmit, progress)
        if not out2.complete:
            return PreprocessOutput(run_dir, False, "pass2", out1, out2, wm, scaler,
                                    message=_incomplete(run_dir, PASS2, out2))
    finally:
        if own is not None:
            from ..cluster import close_cluster
            close_cluster(own)
    timings = {"pass1_s": t1, "pass2_s": t2, "pass1_task_s": _busy_seconds(os.path.join(run_dir, PASS1)),
               "pass2_task_s": _busy_seconds(os.path.join(run_dir, PASS2))}
    return finish(run_dir, out1, out2, prep, wm, scaler, timings=timings, verbose=verbose)


def _incomplete(run_dir, pass_dir, out) -> str:
    d = os.path.join(run_dir, pass_dir)
    return (f"{pass_dir}: {len(out.failed)} chunk(s)/file(s) failed; see `jetdask status {d}`, then "
            f"`jetdask resubmit {d}` (or `jetdask preprocess ... --resubmit`) and run `jetdask preprocess` again")


def finish(run_dir, out1, out2, prep, wm, scaler, timings=None, verbose=True) -> PreprocessOutput:
    """Client-side end: tensors from the shards, summary JSON and plots."""
    from . import shards, summary
    cfg = prep["config"]
    tensors = None
    if cfg["outputs"]["tensors"] and prep.get("layout"):
        tensors = layout_tensors.write_tensors(run_dir, {s: _dataset_files(out2, s) for s in split.SPLITS}, prep)
    elif cfg["outputs"]["tensors"]:
        tensors = shards.write_tensors(run_dir, {s: _dataset_files(out2, s) for s in split.SPLITS}, prep, scaler)
    summ = summary.build(run_dir, prep, _merged_counters(out2), _merged_hist(out1, "kin"),
                         _merged_hist(out2, "kin_weighted"), _merged_hist(out2, "weights"), wm, tensors,
                         timings or {})
    summary.save(run_dir, summ)
    if cfg["outputs"]["plots"]:
        summary.plots(run_dir, summ, _merged_hist(out1, "kin"), _merged_hist(out2, "kin_weighted"),
                      _merged_hist(out2, "weights"), wm, cfg["reweighting"]["source_split"])
    if verbose:
        print(summary.format_text(summ))
    return PreprocessOutput(run_dir, True, "done", out1, out2, wm, scaler, tensors, summ)
