"""The two preprocessing passes (jetdask analyses); see :mod:`.pipeline` for the directory layout.

Per chunk, both passes compute the same thing first (:meth:`_Pass.prepare`): flavour codes and
classes (label.py), the event split (split.py), the cleaning steps (clean.py) and, for the kept
jets, either every configured feature branch as float32 with its defaulted mask (defaults.py)
or, with ``layout:`` in the config, the layout's converted inputs and valid masks
(:mod:`.layout_tensors`). Counters (per chunk, summed by the engine): ``cutflow/<step>`` and
``cutflow/<step>/<class>`` (jets left after each step; ``dropped`` for jets whose code is in no
class), ``count/<split>/<class>/before`` (all jets) and ``.../after`` (cleaned, labelled).
"""
from __future__ import annotations

import dataclasses
import json
import os

import awkward as ak
import numpy as np

from ..atomicwrite import write_json
from ..errors import ConfigError
from ..plugin import Analysis
from ..result import Result
from . import clean, defaults, label, layout_tensors, reweight, scale, split

PREP_FILE, WEIGHTS_FILE, SCALER_FILE, FILESET_FILE = "prep.json", "weights.json", "scaler.json", "fileset.json"
PASS1, PASS2 = "pass1-hists", "pass2-shards"
SPEC1 = "jetdask.preprocessing.pipeline:HistogramPass"
SPEC2 = "jetdask.preprocessing.pipeline:ShardPass"
DEFAULTED_BITS = "defaulted_bits"

# what :mod:`.pipeline` re-exports (the driver imports these names from here too)
__all__ = ["PREP_FILE", "WEIGHTS_FILE", "SCALER_FILE", "FILESET_FILE", "PASS1", "PASS2", "SPEC1", "SPEC2",
           "DEFAULTED_BITS", "Prepared", "HistogramPass", "ShardPass"]


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
    write_json(path, obj, **kw)


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
    conv: object = None    # layout mode: the layout's Converted inputs of the kept jets


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
        self.layout_name = prep.get("layout")
        self.layout = None
        if self.layout_name:
            from ..inference.layouts import get_layout
            self.layout = get_layout(self.layout_name)
        self.rules = defaults.compile_rules(self.features, self.cfg["defaults"])
        self.pt_edges = reweight.edges_from_spec(self.cfg["reweighting"]["pt_bins"])
        self.eta_edges = reweight.edges_from_spec(self.cfg["reweighting"]["eta_bins"])
        coll = self.collection
        cols = set(self.features) | set(defaults.count_columns(self.rules)) | set(clean.columns(self.cfg, coll))
        cols |= {f"{coll}_pt", f"{coll}_eta"}
        if self.layout is not None:
            cols |= set(self.layout.columns)
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
        conv = None
        if self.layout is not None:
            from ..inference.layouts import kept_jets
            recs, _, _ = kept_jets(jets, None)
            conv = self.layout.convert(recs.take(np.flatnonzero(keep)))
        return Prepared(cls[keep].astype(np.int16), codes[keep], jsplit[keep], _flat(jets.pt)[keep].astype(np.float64),
                        _flat(jets.eta)[keep].astype(np.float64), run[ev][keep], lumi[ev][keep], event[ev][keep],
                        local[keep], entry[keep], gen_w[keep], values, dmask, counters, path, conv)

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
        if self.layout is not None:
            table = layout_tensors.chunk_table(self.layout, p.conv, train)
        else:
            valid = [~d for d in p.defaulted]
            table = scale.chunk_moments(self.features, [x[train] for x in p.values], [v[train] for v in valid])
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
        self.placeholders = [] if self.layout is not None else [float(sc[v]["placeholder"]) for v in self.features]

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
        if self.layout is not None:
            cols.update(layout_tensors.shard_columns(p.conv))
        else:
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
                       hist.axis.Regular(60, -3, 3, name="log10w", label="log10(weight)"),
                       storage=hist.storage.Double())
        if len(w):
            with np.errstate(divide="ignore"):
                hw.fill(cls=p.cls.astype(np.int64), split=p.split.astype(np.int64),
                        log10w=np.log10(np.maximum(np.abs(w), 1e-300)))
        return Result(hists={"kin_weighted": hk, "weights": hw}, counters=p.counters, arrays=arrays)

