"""MC normalisation of a run's outputs: ``xsec * lumi / sumw`` per MC dataset, and the run's facts.

Pure functions on a :class:`~jetdask.engine.outputs.RunOutput` and the per-dataset fileset
metadata (``{dataset: {"is_data", "xsec", "lumi", ...}}``):

* :func:`normalisation` — scale factor of every dataset (data: 1; MC: ``xsec * lumi / sumw``
  with ``sumw`` the generator weights of the *processed* chunks, or their event count when the
  sample has no ``genWeight``), with visible notes for fallbacks and incompleteness;
* :func:`run_facts` — what the figures state: luminosity, centre-of-mass energy, whether
  there is data and whether the events are synthetic (fileset metadata ``synthetic``);
* :func:`metadata_of` — ``{dataset: metadata}`` from a coffea-style fileset dict;
* :func:`run_metadata` — the fileset metadata and analysis arguments a run directory recorded.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os


@dataclasses.dataclass
class Normalisation:
    """How each dataset enters the figures: data, or MC scaled by ``scale``."""
    lumi_pb: float | None
    datasets: dict                     # dataset -> {"is_data", "scale", "xsec", "sumw", ...}
    to_data: bool                      # MC scaled to the data yield per figure (no xsec/lumi)
    notes: list                        # visible notes (incompleteness, fallbacks)

    @property
    def note(self) -> str | None:
        """The visible notes joined into one line, or None."""
        return "; ".join(self.notes) if self.notes else None

    @property
    def data(self) -> list:
        """The data sets that are collision data."""
        return [d for d, x in self.datasets.items() if x["is_data"]]

    @property
    def mc(self) -> list:
        """The data sets that are simulation."""
        return [d for d, x in self.datasets.items() if not x["is_data"]]


@dataclasses.dataclass(frozen=True)
class RunFacts:
    """What a figure states about the run (from the fileset metadata)."""
    lumi_pb: float | None
    energy: str                        # "13 TeV"
    has_data: bool
    synthetic: bool


def metadata_of(fileset: dict) -> dict:
    """``{ds: metadata}`` from a coffea-style fileset dict or an already flat ``{ds: metadata}``."""
    if "datasets" in fileset and isinstance(fileset["datasets"], dict):
        fileset = fileset["datasets"]
    return {ds: dict(v.get("metadata", {}) if isinstance(v, dict) and ("files" in v or "metadata" in v)
                     else (v if isinstance(v, dict) else {}))
            for ds, v in fileset.items()}


def run_metadata(run_dir: str) -> tuple[dict, dict]:
    """``({dataset: metadata}, analysis_kwargs)`` recorded by the run in ``run_dir``.

    Read from ``output/metadata.json`` when the run wrote them there (keys ``fileset`` and
    ``analysis_kwargs``), else from the run's ledger meta; ``({}, {})`` when neither has them.
    """
    meta_path = os.path.join(run_dir, "output", "metadata.json")
    meta = {}
    if os.path.exists(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
    fileset, kwargs = meta.get("fileset"), meta.get("analysis_kwargs")
    ledger_path = os.path.join(run_dir, "ledger.sqlite")
    if (fileset is None or kwargs is None) and os.path.exists(ledger_path):
        from ..engine.ledger import Ledger
        led = Ledger(ledger_path, readonly=True)
        try:
            fileset = fileset if fileset is not None else led.get_meta("fileset")
            kwargs = kwargs if kwargs is not None else led.get_meta("analysis_kwargs")
        finally:
            led.close()
    return metadata_of(fileset or {}), dict(kwargs or {})


def _pct(frac: float) -> str:
    pct = 100.0 * frac
    if pct >= 99:
        return f"{math.floor(pct * 10) / 10:.1f}%"
    return f"{math.floor(pct)}%" if pct >= 1 else f"{pct:.2g}%"


def completeness_notes(completeness: dict, datasets: dict) -> list[str]:
    """Visible notes for incompletely processed data or MC ("incomplete: 93% of MC events processed")."""
    notes = []
    for kind, names in (("MC", [d for d, x in datasets.items() if not x["is_data"]]),
                        ("data", [d for d, x in datasets.items() if x["is_data"]])):
        if not names:
            continue
        recs = [completeness.get(d) for d in names]
        if any(r is None for r in recs):
            notes.append(f"{kind} completeness not recorded")
            continue
        if all(r.get("complete", False) for r in recs):
            continue
        planned = sum(int(r.get("events_planned", 0) or 0) for r in recs)
        done = sum(int(r.get("events_processed", 0) or 0) for r in recs)
        bad = sum(int(r.get("files_unreadable", 0) or 0) for r in recs)
        parts = []
        if planned and done < planned:
            txt = f"{_pct(done / planned)} of {kind} events processed"
            parts.append(txt + (" (luminosity not corrected)" if kind == "data" else ""))
        if bad:
            parts.append(f"{bad} {kind} file{'s' if bad > 1 else ''} unreadable")
        if not parts:
            parts.append(f"{kind} not complete")
        notes.append("incomplete: " + ", ".join(parts))
    return notes


def data_lumi(metadata: dict) -> float | None:
    """Summed ``lumi`` (pb^-1) of the data datasets; None when none states one."""
    lumis = [float(md["lumi"]) for md in metadata.values() if md.get("is_data") and md.get("lumi") is not None]
    return float(sum(lumis)) if lumis else None


def normalisation(out, metadata: dict, lumi_pb: float | None = None) -> Normalisation:
    """Scale factors ``xsec * lumi / sumw`` per MC dataset of ``out`` (a RunOutput).

    ``lumi_pb`` defaults to the summed ``lumi`` of the data datasets. Without luminosity,
    cross section or sum of weights the MC is normalised to the data yield per figure
    (``to_data``; stated in the notes), or left unscaled when there is no data.
    """
    ds_info, notes = {}, []
    for ds in out.hists:
        md = metadata.get(ds, {})
        ds_info[ds] = {"is_data": bool(md.get("is_data", False)), "xsec": md.get("xsec"),
                       "lumi": md.get("lumi"), "in_fileset": ds in metadata}
    if lumi_pb is None:
        lumi_pb = data_lumi({ds: metadata.get(ds, {}) for ds in out.hists})
    to_data = False
    for ds, x in ds_info.items():
        if x["is_data"]:
            x["scale"] = 1.0
            continue
        c = out.counters.get(ds, {})
        sumw = c.get("sumw", out.completeness.get(ds, {}).get("sumw_processed"))
        x["sumw_source"] = "sumw"
        if sumw is None:
            sumw, x["sumw_source"] = c.get("events"), "events"
        x["sumw"] = sumw
        if x["xsec"] is None or lumi_pb is None or not sumw:
            to_data = True
            x["scale"] = None
        else:
            x["scale"] = float(x["xsec"]) * lumi_pb / float(sumw)
    if to_data:
        has_data = any(x["is_data"] for x in ds_info.values())
        why = "no luminosity" if lumi_pb is None else "no cross section or sum of weights"
        notes.append(f"MC normalised to the data yield ({why})" if has_data else f"MC not normalised ({why})")
        for x in ds_info.values():
            if not x["is_data"]:
                x["scale"] = 1.0
    if not metadata:
        notes.append("no fileset metadata: every dataset taken as MC")
    notes = completeness_notes(out.completeness, ds_info) + notes
    return Normalisation(lumi_pb, ds_info, to_data, notes)


def energy_text(value) -> str:
    """``13`` / ``"13"`` / ``"13 TeV"`` / ``13.6`` -> ``"13 TeV"`` / ``"13.6 TeV"``."""
    if isinstance(value, (int, float)):
        return f"{value:g} TeV"
    s = str(value).strip()
    try:
        return f"{float(s):g} TeV"
    except ValueError:
        return s


def run_facts(norm: Normalisation, metadata: dict, *, energy: str | None = None) -> RunFacts:
    """Luminosity, energy (``energy`` overrides the metadata's ``energy``, default 13 TeV), data and
    synthetic flags of a run. Synthetic: any dataset whose metadata has ``synthetic: true``."""
    used = {ds: metadata.get(ds, {}) for ds in norm.datasets}
    if energy is None:
        energies = sorted({energy_text(md["energy"]) for md in used.values() if md.get("energy") is not None})
        energy = " + ".join(energies) if energies else "13 TeV"
    return RunFacts(norm.lumi_pb, energy_text(energy), bool(norm.data),
                    any(bool(md.get("synthetic", False)) for md in used.values()))
