"""The preprocessing passes (jetdask analyses) and the driver that chains them.

Layout of a preprocessing directory ``RUN``::

    RUN/prep.json            validated config, resolved feature list, datasets (written once)
    RUN/fileset.json         the fileset restricted to the simulated datasets used
    RUN/pass1-hists/         jetdask run: (pT, eta) histograms per class, moments per chunk
    RUN/weights.json         reweighting map (reweight.WeightMap) from pass 1
    RUN/scaler.json          mean/std/default per feature (scale.py) from pass 1
    RUN/pass2-shards/        jetdask run: parquet shards per split, arrays/{train,validation,test}/DATASET/CHUNK.parquet
    RUN/tensors/SPLIT/       features.npy (float32, N x F), columns.json, label.npy, weight.npy,
                             defaulted.npy, ids.npy (client-side concatenation of the shards)
    RUN/summary.json, RUN/plots/*.png

Both passes are ordinary jetdask runs: resumable, and ``jetdask resubmit RUN/pass1-hists``
or ``RUN/pass2-shards`` reruns what failed. The pass analyses are built from the directory
alone (``HistogramPass(prep_dir=RUN)``, ``ShardPass(prep_dir=RUN)``; the ledger records the
spec ``jetdask.preprocessing.pipeline:ShardPass`` and ``{"prep_dir": RUN}``), so the CLI can
rebuild them. They read the small JSON files above at construction (on the client) and travel
to the workers by pickle: only the parquet outputs need a shared file system.

A pass with failed chunks stops the chain (``PreprocessOutput.complete`` False, exit code 3
from the CLI). After fixing the cause: ``jetdask resubmit RUN/pass2-shards`` (or
``jetdask preprocess ... --resubmit``), then ``jetdask preprocess --run-dir RUN`` again: the
finished passes are not rerun, and the tensors equal those of a run that never failed (the
shard files are named by chunk id and concatenated in canonical order).

Per chunk, both passes compute the same thing first (:meth:`_Pass.prepare`): flavour codes and
classes (label.py), the event split (split.py), the cleaning steps (clean.py) and, for the kept
jets, every feature as float32 with its defaulted mask (defaults.py). Counters (per chunk,
summed by the engine): ``cutflow/<step>`` and ``cutflow/<step>/<class>`` (jets left after each
step; ``dropped`` for jets whose code is in no class), ``count/<split>/<class>/before`` (all
jets) and ``.../after`` (cleaned, labelled).
"""
from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
import time

import awkward as ak
import numpy as np

from ..errors import ConfigError, FileAccessError
from ..plugin import Analysis, load_analysis
from ..result import Result
from . import clean, defaults, label, reweight, scale, split
from .config import canonical, load_config

PREP_FILE, WEIGHTS_FILE, SCALER_FILE, FILESET_FILE = "prep.json", "weights.json", "scaler.json", "fileset.json"
PASS1, PASS2 = "pass1-hists", "pass2-shards"
SPEC1 = "jetdask.preprocessing.pipeline:HistogramPass"
SPEC2 = "jetdask.preprocessing.pipeline:ShardPass"
DEFAULTED_BITS = "defaulted_bits"


def _flat(x) -> np.ndarray:
    return np.asarray(ak.to_numpy(ak.flatten(x, axis=None)))


class _FlatFields:
    """Flat numpy view of each field of a jagged record collection (fast path on the layout)."""

    def __init__(self, jets):
        self._jets = jets
        self._rec = None
        lay = jets.layout
        if isinstance(lay, ak.contents.ListOffsetArray) and isinstance(lay.content, ak.contents.RecordArray):
            off = np.asarray(lay.offsets.data)
            self._a, self._b = (int(off[0]), int(off[-1])) if len(off) else (0, 0)
            self._rec = lay.content

    def __call__(self, field: str) -> np.ndarray:
        if self._rec is not None:
            c = self._rec.content(field)
            if isinstance(c, ak.contents.NumpyArray) and c.data.ndim == 1:
                return np.asarray(c.data)[self._a:self._b]
        return _flat(self._jets[field])


def _read_json(path: str):
    with open(path) as f:
        return json.load(f)


def _write_json(path: str, obj, **kw) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, **kw)
    os.replace(tmp, path)


@dataclasses.dataclass
class Prepared:
    """What both passes compute for one chunk (flat arrays over the kept jets unless noted)."""
    cls: np.ndarray
    codes: np.ndarray
    split: np.ndarray
    pt: np.ndarray
    eta: np.ndarray
    run: np.ndarray
    lumi: np.ndarray
    event: np.ndarray
    jet_idx: np.ndarray
    entry: np.ndarray
    gen_weight: np.ndarray
    values: list           # float32 per feature
    defaulted: list        # bool per feature
    counters: dict
    label_path: str


class _Pass(Analysis):
    """Shared configuration and per-chunk preparation of the two passes."""

    def __init__(self, prep_dir: str):
        self.prep_dir = os.path.abspath(prep_dir)
        path = os.path.join(self.prep_dir, PREP_FILE)
        if not os.path.exists(path):
            raise ConfigError(f"{self.prep_dir} is not a preprocessing directory (no {PREP_FILE})", "prep_dir")
        prep = _read_json(path)
        self.cfg = prep["config"]
        self.features: list[str] = list(prep["features"])
        self.collection: str = self.cfg["collection"]
        self.class_names: list[str] = list(self.cfg["labels"]["classes"])
        self.rules = defaults.compile_rules(self.features, self.cfg["defaults"])
        self.pt_edges = reweight.edges_from_spec(self.cfg["reweighting"]["pt_bins"])
        self.eta_edges = reweight.edges_from_spec(self.cfg["reweighting"]["eta_bins"])
        coll = self.collection
        cols = set(self.features) | set(defaults.count_columns(self.rules)) | set(clean.columns(self.cfg, coll))
        cols |= {f"{coll}_pt", f"{coll}_eta"}
        self.columns = sorted(cols) + label.columns(coll)

    # -- per chunk ---------------------------------------------------------------------------
    def prepare(self, events, chunk) -> Prepared:
        cfg, coll = self.cfg, self.collection
        if chunk.metadata.get("is_data"):
            raise ValueError(f"dataset {chunk.dataset!r} is data: preprocessing needs simulation (truth labels)")
        jets = events[coll]
        counts = np.asarray(ak.num(jets, axis=1), dtype=np.int64)
        n_jets = int(counts.sum())
        ev = np.repeat(np.arange(len(counts)), counts)
        codes, path = label.flavour_codes(jets, cfg["labels"]["source"])
        cls = label.class_index(codes, cfg["labels"]["classes"])
        run = np.asarray(events.run).astype(np.int64)
        lumi = np.asarray(events.luminosityBlock).astype(np.int64)
        event = np.asarray(events.event).astype(np.uint64)
        ev_split = split.event_splits(run, lumi, event, cfg["splits"])
        jsplit = ev_split[ev]

        names = self.class_names + ["dropped"]
        cname_idx = np.where(cls >= 0, cls, len(self.class_names)).astype(np.int64)
        counters: dict[str, float] = {}

        def count(prefix, mask):
            counters[prefix] = counters.get(prefix, 0) + int(np.count_nonzero(mask))
            per = np.bincount(cname_idx[mask], minlength=len(names))
            for i, nm in enumerate(names):
                counters[f"{prefix}/{nm}"] = counters.get(f"{prefix}/{nm}", 0) + int(per[i])

        keep = np.ones(n_jets, dtype=bool)
        count("cutflow/all", keep)
        for step, m in clean.step_masks(events, cfg, coll):
            keep &= m
            count(f"cutflow/{step}", keep)
        keep &= cls >= 0
        count("cutflow/label", keep)
        for s, sname in enumerate(split.SPLITS):
            per_b = np.bincount(cname_idx[jsplit == s], minlength=len(names))
            per_a = np.bincount(cname_idx[(jsplit == s) & keep], minlength=len(names))
            for i, nm in enumerate(names):
                counters[f"count/{sname}/{nm}/before"] = int(per_b[i])
                if i < len(self.class_names):
                    counters[f"count/{sname}/{nm}/after"] = int(per_a[i])

        local = _flat(ak.local_index(jets.pt, axis=1)).astype(np.int32)
        gen_w = (np.asarray(events.genWeight, dtype=np.float64)[ev] if "genWeight" in events.fields
                 else np.ones(n_jets))
        entry = np.asarray(events._entry, dtype=np.int64)[ev]
        field = _FlatFields(jets)
        slot_counts = {c: field(c[len(coll) + 1:])[keep] for c in defaults.count_columns(self.rules)}
        values, dmask = [], []
        for var, rule in zip(self.features, self.rules):
            x = field(var[len(coll) + 1:])[keep].astype(np.float32)
            values.append(x)
            dmask.append(defaults.defaulted_mask(x, rule, slot_counts))
        return Prepared(cls[keep].astype(np.int16), codes[keep], jsplit[keep], _flat(jets.pt)[keep].astype(np.float64),
                        _flat(jets.eta)[keep].astype(np.float64), run[ev][keep], lumi[ev][keep], event[ev][keep],
                        local[keep], entry[keep], gen_w[keep], values, dmask, counters, path)

    def _eta_for_hist(self, eta):
        return np.abs(eta) if self.cfg["reweighting"]["abs_eta"] else eta

    def _hist(self):
        return reweight.make_hist(len(self.class_names), self.pt_edges, self.eta_edges,
                                  "|eta|" if self.cfg["reweighting"]["abs_eta"] else "eta")


class HistogramPass(_Pass):
    """Pass 1: (pT, eta) histograms per class and split; per-chunk feature moments (parquet ``moments``)."""

    name = "preprocess-pass1"

    def process(self, events, chunk) -> Result:
        p = self.prepare(events, chunk)
        h = self._hist()
        w = p.gen_weight if self.cfg["reweighting"]["use_gen_weight"] else None
        reweight.fill_hist(h, p.cls, p.split, p.pt, self._eta_for_hist(p.eta), self.pt_edges, self.eta_edges, w)
        train = p.split == split.TRAIN
        valid = [~d for d in p.defaulted]
        table = scale.chunk_moments(self.features, [x[train] for x in p.values], [v[train] for v in valid],
                                    p.values, valid)
        p.counters[f"label_path/{p.label_path}"] = 1
        return Result(hists={"kin": h}, counters=p.counters, arrays={"moments": scale.table_to_arrays(table)})


class ShardPass(_Pass):
    """Pass 2: per-jet weight, placeholders, training shards per split (parquet), weight histograms."""

    name = "preprocess-pass2"

    def __init__(self, prep_dir: str):
        super().__init__(prep_dir)
        for fn in (WEIGHTS_FILE, SCALER_FILE):
            if not os.path.exists(os.path.join(self.prep_dir, fn)):
                raise ConfigError(f"{fn} missing in {self.prep_dir}: pass 1 has not completed", "prep_dir")
        self.weight_map = reweight.WeightMap.load(os.path.join(self.prep_dir, WEIGHTS_FILE))
        sc = scale.load_scaler(os.path.join(self.prep_dir, SCALER_FILE))
        self.placeholders = [float(sc[v]["placeholder"]) for v in self.features]

    def process(self, events, chunk) -> Result:
        import hist
        p = self.prepare(events, chunk)
        rw = self.cfg["reweighting"]
        w = self.weight_map.lookup(p.cls, p.pt, p.eta)
        if rw["use_gen_weight"]:
            w = w * p.gen_weight
        cols: dict[str, np.ndarray] = {}
        for var, x, d, ph in zip(self.features, p.values, p.defaulted, self.placeholders):
            cols[var] = defaults.apply(x, d, ph)
        cols[DEFAULTED_BITS] = defaults.pack_mask(p.defaulted, len(p.cls))
        cols.update({"label": p.cls.astype(np.int16), "flavour": p.codes.astype(np.int32),
                     "weight": w.astype(np.float64), "split": p.split.astype(np.int8),
                     "run": p.run.astype(np.int64), "luminosityBlock": p.lumi.astype(np.int64),
                     "event": p.event.astype(np.uint64), "jet_idx": p.jet_idx.astype(np.int32),
                     "entry": p.entry.astype(np.int64)})
        arrays = {}
        for s, sname in enumerate(split.SPLITS):
            rows = p.split == s
            if rows.any():
                arrays[sname] = ak.Array({k: v[rows] for k, v in cols.items()})
        hk = self._hist()
        reweight.fill_hist(hk, p.cls, p.split, p.pt, self._eta_for_hist(p.eta), self.pt_edges, self.eta_edges, w)
        hw = hist.Hist(hist.axis.IntCategory(list(range(len(self.class_names))), name="cls"),
                       hist.axis.IntCategory([0, 1, 2], name="split"),
                       hist.axis.Regular(60, -3, 3, name="log10w", label="log10(weight)"), storage=hist.storage.Double())
        if len(w):
            with np.errstate(divide="ignore"):
                hw.fill(cls=p.cls.astype(np.int64), split=p.split.astype(np.int64),
                        log10w=np.log10(np.maximum(np.abs(w), 1e-300)))
        return Result(hists={"kin_weighted": hk, "weights": hw}, counters=p.counters, arrays=arrays)


# --------------------------------------------------------------------------------------- driver

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
        for f, url in ((f, url) for f, _ in files for url in f.urls):
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
    os.makedirs(run_dir, exist_ok=True)
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
    features = resolve_features(_first_branches(fs, datasets), cfg)
    sub = {}
    for d in datasets:
        ds = fs[d]
        sub[d] = ds.to_dict()
    _write_json(os.path.join(run_dir, FILESET_FILE), sub, indent=1)
    prep = {"version": 1, "config": cfg, "features": features, "datasets": datasets, "chunk_size": chunk_size,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
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
    led = Ledger(os.path.join(pass_dir, "ledger.sqlite"))
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
    if cfg["outputs"]["tensors"]:
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
