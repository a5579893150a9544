"""One pass of any number of taggers over a chunk's jets, results as new jet fields.

::

    taggers = [Tagger("dj", "dj.pt"), Tagger("part", "part.pt")]
    taggers += [taggers[0].variant("noise0.1"), taggers[0].variant("fgsm0.01")]

    class MyAnalysis(jetdask.Analysis):
        columns = ["Jet", "Muon"] + tagger_columns(taggers)
        def process(self, events, chunk):
            jets = events.Jet
            events = tagger_pass(events, taggers, (jets.pt > 20) & (abs(jets.eta) < 2.5),
                                 is_data=chunk.metadata.get("is_data"))
            bvsl = events.Jet["dj"].BvsL       # also .b .bb .lepb .c .uds .g

For each jet collection the kept jets are located once, each distinct layout is converted
once, each (layout, scaler) pair scaled once, then every tagger predicts in batches.
``events[collection][tagger.name]`` becomes a record with one field per class (and the
four discriminants of :mod:`.discriminants` when the classes are the six DeepJet ones).
Jets not kept by the mask get **-1** in every field, so the jagged structure of the
collection is unchanged and ``score >= 0`` selects evaluated jets.
"""
from __future__ import annotations

import os
from typing import Sequence

import awkward as ak
import numpy as np

from ..errors import ModelFileError
from ..plugin import Analysis
from ..result import Result
from .batching import predict
from .cache import load_model
from .discriminants import discriminants, has_classes
from .distortions import FGSM, Noise, add_noise, distortable, jet_keys, truth_labels
from .layouts import get_layout, kept_jets, list_items
from .modelfiles import check_tagger
from .tagger import Tagger, tagger_resources

LABEL_COLUMNS = ("optional:Jet_hadronFlavour", "optional:Jet_FlavSplit")


def tagger_columns(taggers: Sequence[Tagger]) -> list:
    """Branches the taggers' layouts need (plus truth labels for FGSM, when the files have them).

    Every tagger file is opened here (on the client) as the workers will open it
    (:func:`~.modelfiles.check_tagger`): a file that would run code, names an unknown model class
    or arguments the class does not declare stops the run with a ModelFileError before any
    chunk is sent (a file missing here is checked by the workers, when the spec gives its layout).
    Layouts of TorchScript and ONNX taggers must be given in the spec.
    """
    cols = set(LABEL_COLUMNS)
    seen: dict = {}  # (file, class, kwargs) -> summary: variants of a tagger (distortions) share one file
    for t in taggers:
        key = (t.source, t.model_class, repr(t.model_kwargs))
        if key not in seen:   # a file only the workers see (spec with a layout) is checked there
            seen[key] = check_tagger(t) if (t.layout is None or os.path.exists(t.source)) else {"kind": "?"}
        layout = t.layout or seen[key].get("layout")
        if layout is None:
            raise ModelFileError(f"tagger {t.name!r}: give layout= (a {seen[key]['kind']} file does not say)",
                                 t.source)
        if isinstance(t.distortion, FGSM) and seen[key]["kind"] == "onnx":
            raise ModelFileError(f"tagger {t.name!r}: FGSM needs gradients; ONNX taggers take noise only",
                                 t.source)
        cols.update(get_layout(layout).columns)
    return sorted(cols)


def _jet_ids(events, sel: np.ndarray, counts: np.ndarray) -> np.ndarray:
    fields = set(events.fields)
    n = len(counts)
    event = np.asarray(events.event) if "event" in fields else (
        np.asarray(events._entry) if "_entry" in fields else np.arange(n))
    run = np.asarray(events.run) if "run" in fields else np.zeros(n, dtype=np.uint64)
    ev_of = np.repeat(np.arange(n), counts)[sel]
    local = sel - np.repeat(np.cumsum(counts) - counts, counts)[sel]
    return jet_keys(run[ev_of], event[ev_of], local)


def _record(scores: np.ndarray, classes, sel: np.ndarray, n_total: int, with_disc: bool) -> ak.Array:
    """Flat record per jet of the collection (-1 for jets not kept)."""
    full = np.full((n_total, scores.shape[1]), -1.0, dtype=np.float32)
    full[sel] = scores
    fields = {c: full[:, i] for i, c in enumerate(classes)}
    if with_disc and has_classes(classes):
        fields.update({k: np.asarray(v, dtype=np.float32) for k, v in discriminants(fields).items()})
    contents = [ak.contents.NumpyArray(np.ascontiguousarray(v)) for v in fields.values()]
    return ak.Array(ak.contents.RecordArray(contents, list(fields), n_total))


def tagger_pass(events, taggers: Sequence[Tagger], jet_mask=None, *, is_data: bool | None = None,
                batch_size: int | None = None, memory_budget: int | None = None,
                with_discriminants: bool = True):
    """``events`` with ``events[collection][tagger.name]`` for every tagger (see the module docstring).

    ``jet_mask``: jagged boolean array over the taggers' jet collection (``None``: all jets),
    or a dict collection -> mask when taggers read different collections. ``batch_size``:
    for taggers whose spec has none (default: adaptive, see :mod:`.batching`). ``is_data``:
    True makes FGSM attack the model's own prediction (see :mod:`.distortions`); None
    decides from the presence of truth branches.
    """
    loaded = {t.name: load_model(t) for t in taggers}
    if len(loaded) != len(taggers):
        raise ValueError("tagger names must be unique within a pass")
    by_coll: dict = {}
    for t in taggers:
        by_coll.setdefault(loaded[t.name].layout.jets, []).append(t)
    for coll, group in by_coll.items():
        mask = jet_mask.get(coll) if isinstance(jet_mask, dict) else jet_mask
        jets = events[coll]
        recs, sel, counts = kept_jets(jets, mask)
        n_total = int(counts.sum())
        converted, scaled, keys = {}, {}, None
        new_fields = {}
        for t in group:
            lm = loaded[t.name]
            conv = converted.get(lm.layout)
            if conv is None:
                conv = converted[lm.layout] = lm.layout.convert(recs)
            skey = (lm.layout, lm.scaler)
            arrays = scaled.get(skey)
            if arrays is None:
                arrays = scaled[skey] = lm.scaler.apply(conv) if lm.scaler is not None else dict(conv.arrays)
            names = [s.name for s in conv.specs]
            d = t.distortion
            kwargs = {}
            if isinstance(d, Noise):
                if keys is None:
                    keys = _jet_ids(events, sel, counts)
                arrays = add_noise(arrays, distortable(conv), d.sigma, keys, d.seed)
            elif isinstance(d, FGSM):
                if lm.backend != "torch":
                    raise ModelFileError(f"tagger {t.name!r}: FGSM needs gradients; ONNX taggers take noise only",
                                         t.source)
                masks = distortable(conv)
                labels = None if is_data else truth_labels(recs, lm.classes)
                kwargs = dict(fgsm=d, fgsm_masks=[masks[n] for n in names], labels=labels)
            scores = predict(lm, [arrays[n] for n in names], batch_size=t.batch_size or batch_size,
                             memory_budget=memory_budget, **kwargs)
            new_fields[t.name] = _record(scores, lm.classes, sel, n_total, with_discriminants)
        events = with_item_fields(events, coll, new_fields)
    return events


def _with_fields_layout(layout, new: dict):
    """``ak.with_field`` of every flat per-item array in ``new`` on a list-of-records layout, or None."""
    wrappers, inner = [], layout
    while isinstance(inner, ak.contents.IndexedArray):          # selected events: IndexedArray(ListOffsetArray(...))
        wrappers.append(inner)
        inner = inner.content
    if not isinstance(inner, (ak.contents.ListOffsetArray, ak.contents.ListArray)) or \
            not isinstance(inner.content, ak.contents.RecordArray) or inner.content.is_tuple:
        return None
    rec = inner.content
    _, _, items = list_items(layout, np.arange(len(layout), dtype=np.int64), None)
    direct = rec.length == len(items) and np.array_equal(items, np.arange(len(items)))
    if not direct and len(items) == 0:
        return None
    where = None
    fields, contents = list(rec.fields), list(rec.contents)      # contents may be longer than length
    for name, values in new.items():
        v = ak.to_layout(values)
        if len(v) != len(items):
            return None
        if not direct:
            if where is None:
                where = np.zeros(rec.length, dtype=np.int64)      # record position -> flat item
                where[items] = np.arange(len(items))
            v = ak.contents.IndexedArray(ak.index.Index64(where), v)
        if name in fields:
            contents[fields.index(name)] = v
        else:
            fields.append(name)
            contents.append(v)
    out = inner.copy(content=ak.contents.RecordArray(contents, fields, rec.length, parameters=rec.parameters))
    for w in reversed(wrappers):
        out = w.copy(content=out)
    return out


def with_item_fields(events: ak.Array, collection: str, new: dict) -> ak.Array:
    """``events`` with ``events[collection][name] = values`` for each flat per-item array in ``new``.

    Same result as nested ``ak.with_field`` calls, built directly on the layout (ak.with_field
    walks every field of a 700-field jet record: ~10 ms per call); falls back to it otherwise.
    """
    jets = events[collection]
    layout = _with_fields_layout(ak.to_layout(jets), new)
    if layout is None:
        counts = ak.to_numpy(ak.num(jets, axis=1))
        for name, values in new.items():
            jets = ak.with_field(jets, ak.unflatten(values, counts), name)
        layout = ak.to_layout(jets)
    ev = ak.to_layout(events)
    if isinstance(ev, ak.contents.IndexedArray) and isinstance(ev.content, ak.contents.RecordArray):
        ev = ev.project()                               # lazy carry of the fields
    if isinstance(ev, ak.contents.RecordArray) and collection in ev.fields and not ev.is_tuple:
        contents = list(ev.contents)
        contents[ev.fields.index(collection)] = layout
        return ak.Array(ak.contents.RecordArray(contents, ev.fields, ev.length, parameters=ev.parameters),
                        behavior=events.behavior, attrs=events.attrs)
    return ak.with_field(events, ak.Array(layout, behavior=events.behavior, attrs=events.attrs), collection)


class InferenceStep:
    """Taggers + pass options in one picklable object: ``events = step(events, jet_mask, chunk)``."""

    def __init__(self, taggers: Sequence[Tagger], *, batch_size: int | None = None,
                 memory_budget: int | None = None, with_discriminants: bool = True):
        self.taggers = list(taggers)
        self.batch_size = batch_size
        self.memory_budget = memory_budget
        self.with_discriminants = with_discriminants

    @property
    def columns(self) -> list:
        """The branches the taggers read (:func:`tagger_columns`)."""
        return tagger_columns(self.taggers)

    @property
    def resources(self) -> dict:
        """dask resources of a task running this step (``{"GPU": 1}`` when a tagger asks for CUDA)."""
        return tagger_resources(self.taggers)

    def __call__(self, events, jet_mask=None, chunk=None):
        is_data = None if chunk is None else chunk.metadata.get("is_data")
        return tagger_pass(events, self.taggers, jet_mask, is_data=is_data, batch_size=self.batch_size,
                           memory_budget=self.memory_budget, with_discriminants=self.with_discriminants)


class TaggerScores(Analysis):
    """Runs the taggers on jets with pt > ``pt_min`` and ``|eta|`` < ``eta_max``; per-jet scores out.

    ``Result.arrays["jets"]``: one row per kept jet with ``run``, ``event``, ``jet`` (index in
    the event), ``pt``, ``eta``, ``hadronFlavour`` (MC) and ``<tagger>.<class>`` fields;
    histograms ``BvsL/<tagger>`` (50 bins in [0, 1]) for six-class taggers.
    """

    def __init__(self, taggers: Sequence[Tagger], pt_min: float = 20.0, eta_max: float = 2.5,
                 batch_size: int | None = None, memory_budget: int | None = None, save_arrays: bool = True):
        self.step = InferenceStep(taggers, batch_size=batch_size, memory_budget=memory_budget)
        self.pt_min, self.eta_max, self.save_arrays = pt_min, eta_max, save_arrays
        self.columns = sorted(set(self.step.columns) | {"Jet_pt", "Jet_eta"})
        self.resources = self.step.resources

    def process(self, events, chunk):
        """Run the taggers on the jets above ``pt_min`` within ``eta_max``: per-jet scores (arrays), BvsL histograms."""
        import hist
        jets = events.Jet
        mask = (jets.pt > self.pt_min) & (abs(jets.eta) < self.eta_max)
        events = self.step(events, mask, chunk)
        kept = events.Jet[mask]
        out = {"run": ak.flatten(ak.broadcast_arrays(events.run, kept.pt)[0]),
               "event": ak.flatten(ak.broadcast_arrays(events.event, kept.pt)[0]),
               "jet": ak.flatten(ak.local_index(jets.pt)[mask]),
               "pt": ak.flatten(kept.pt), "eta": ak.flatten(kept.eta)}
        if "hadronFlavour" in jets.fields:
            out["hadronFlavour"] = ak.flatten(kept.hadronFlavour)
        hists = {}
        for t in self.step.taggers:
            rec = ak.flatten(kept[t.name])
            out[t.name] = rec
            if "BvsL" in rec.fields:
                h = hist.Hist.new.Reg(50, 0, 1, name="BvsL").Double()
                h.fill(BvsL=ak.to_numpy(rec.BvsL))
                hists[f"BvsL/{t.name}"] = h
        arrays = {"jets": ak.zip(out, depth_limit=1)} if self.save_arrays else {}
        return Result(hists=hists, counters={"jets": float(len(out["pt"]))}, arrays=arrays)
