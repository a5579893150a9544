"""Every figure of a finished run, and ``summary.json``: what ``jetdask plot RUN`` writes.

Inputs are the run's public outputs (:func:`jetdask.load_output`) and the facts the run
recorded (fileset metadata, analysis arguments: :mod:`jetdask.plotting.normalisation`).
"""
from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
import time

import numpy as np

from .cutflow import plot_cutflow
from .datamc import plot_datamc, plot_datamc_pair
from .hists import categories, counted, kind_of, prepare, run_components
from .labels import channel_text, data_label, file_stem, label_text, split_name, tagger_title, xlabel_for
from .normalisation import Normalisation, metadata_of, normalisation, run_facts, run_metadata
from .ratio import ratio_range
from .style import PNG_DPI, cms_style


@dataclasses.dataclass
class PlotConfig:
    """What to plot and how it is named; every field has a default taken from the run.

    ``pairs``: (tagger A, tagger B) shown side by side (also their distorted variants
    ``A@d``/``B@d``); None: the first two taggers the run's analysis was given; ``[]``: none.
    ``names``: display name per tagger key (``{"DeepJet_nominal": "DeepJet, nominal training"}``).
    ``label``: label mode (:data:`jetdask.plotting.labels.LABEL_MODES`). ``energy``: overrides
    the fileset's ``energy``. ``lumi``: pb^-1, overrides the data luminosity.
    """
    channel: str = "all"
    lumi: float | None = None
    energy: str | None = None
    label: str | None = None
    log: object = "auto"
    only: list | None = None
    pairs: list | None = None
    names: dict = dataclasses.field(default_factory=dict)
    systematics: bool = True           # stat ⊕ syst bands when the run has variations (jetdask.plotting.bands)
    btag_norm: bool = True             # b-tag shape SF normalised to the yield before tagging
    breakdown: bool = False            # the band by group in the ratio panel


def load_run(run, metadata: dict | None = None):
    """(RunOutput, {dataset: metadata}, analysis kwargs) from a run directory or a RunOutput."""
    from ..engine.outputs import RunOutput, load_output
    from ..errors import ConfigError

    if isinstance(run, RunOutput):
        out = run
    else:
        run = os.fspath(run)
        if not os.path.exists(os.path.join(run, "output", "hists.json")):
            raise ConfigError(f"{run} has no merged output (output/hists.json); is it a finished jetdask run?",
                              "run_dir")
        out = load_output(run)
    md, kwargs = run_metadata(out.run_dir) if out.run_dir else ({}, {})
    if metadata is not None:
        md = metadata_of(metadata)
    return out, md, kwargs


def default_pairs(kwargs: dict) -> list[tuple[str, str]]:
    """The first two taggers given to the run's analysis (``taggers`` argument), as one pair."""
    names = [t.get("name") if isinstance(t, dict) else getattr(t, "name", None) for t in kwargs.get("taggers", [])]
    names = [n for n in names if n]
    return [(names[0], names[1])] if len(names) >= 2 else []


def paired_names(names, pairs) -> list[tuple[str, str, str, str]]:
    """(left histogram, right histogram, left tagger, right tagger) for every histogram of tagger A
    with a counterpart of tagger B (same discriminant, same distortion)."""
    names = set(names)
    out = []
    for a, b in pairs:
        for n in sorted(names):
            tagger, disc = split_name(n)
            base, sep, dist = tagger.partition("@")
            if base != a:
                continue
            other_tagger = b + sep + dist
            other = f"{other_tagger}_{disc}" if disc else other_tagger
            if other in names:
                out.append((n, other, tagger, other_tagger))
    return out


def _categories(hists, name) -> list[str]:
    """The channel categories of histogram ``name`` (over the data sets; none without a channel axis)."""
    chans = []
    for hs in hists.values():
        if name in hs and "channel" in hs[name].axes.name:
            chans += [c for c in categories(hs[name], "channel") if c not in chans and c != "all"]
    return chans


def _channels(hists, name, channel) -> list[str]:
    chans = _categories(hists, name)
    if not chans:
        return ["all"]
    if channel in ("all", None):
        return ["all"] + chans
    if channel == "sum":
        return ["all"]
    return [channel] if channel in chans else []


def _use_log(log, kind, mc) -> bool:
    """auto: log for discriminants; for other variables spanning > 2 decades or with a flavour below 5 %."""
    if log != "auto":
        return bool(log)
    if kind == "discriminant":
        return True
    tot = np.sum([t[0] for t in mc.values()], axis=0)
    pos = tot[tot > 0]
    if pos.size and pos.max() / pos.min() > 100:
        return True
    yields = [float(t[0].sum()) for t in mc.values()]
    return len(yields) > 1 and sum(yields) > 0 and min(yields) / sum(yields) < 0.05


def _prepared(out, name, norm, ch, kind):
    """(data, mc, xlabel, flow note) of ``name`` in channel ``ch``: flow folded into the edge bins
    (discriminants: overflow only), inputs cut to the bins with entries (other variables keep the
    booked range)."""
    data, mc, axlabel = run_components(out.hists, name, norm, ch)
    data, mc, flow = prepare(data, mc, mode="over" if kind == "discriminant" else "both", crop=kind == "input")
    return data, mc, xlabel_for(name, axlabel), flow.axis_note()


def build_figures(run, *, metadata: dict | None = None, config: PlotConfig | None = None,
                  norm: Normalisation | None = None, **options):
    """Yield ``(file_stem, figure, summary_entry)`` for every figure of a run (see :func:`plot_run`).

    ``options``: the fields of :class:`PlotConfig` (``channel``, ``lumi``, ``label``, ``pairs`` ...).
    """
    cfg = dataclasses.replace(config or PlotConfig(), **options)
    out, md, kwargs = load_run(run, metadata)
    norm = norm or normalisation(out, md, cfg.lumi)
    from .bands import SystContext, summary_entry
    syst = SystContext(out, md, norm, btag_norm=cfg.btag_norm)   # syst.norm_for(name): with the b-tag
    # shape-SF normalisation of that histogram (per jet multiplicity; noted on the figure)
    facts = run_facts(norm, md, energy=cfg.energy)
    has_data = facts.has_data
    common = dict(lumi_fb=facts.lumi_pb / 1000.0 if facts.lumi_pb else None, energy=facts.energy,
                  label=label_text(cfg.label, has_data, facts.synthetic), incomplete_note=norm.note,
                  data_label=data_label(facts.synthetic))
    pairs = default_pairs(kwargs) if cfg.pairs is None else [tuple(p) for p in cfg.pairs]
    patterns = [cfg.only] if isinstance(cfg.only, str) else cfg.only
    kinds = {}
    for hs in out.hists.values():
        for name, h in hs.items():
            if name not in kinds and (not patterns or any(fnmatch.fnmatchcase(name, x) for x in patterns)):
                kinds[name] = kind_of(name, h)

    def one(name, kind):
        tagger, _ = split_name(name)
        for ch in _channels(out.hists, name, cfg.channel):
            data, mc, xlabel, flow_note = _prepared(out, name, syst.norm_for(name), ch, kind)
            if not mc:
                continue
            band = syst.band(name, ch, kind) if cfg.systematics else None
            flow_note = "\n".join(x for x in (flow_note, syst.figure_note(name, band is not None)) if x)
            fig = plot_datamc(data if has_data else None, mc, xlabel=xlabel, log=_use_log(cfg.log, kind, mc),
                              channel=channel_text(ch, _categories(out.hists, name)), flow_note=flow_note,
                              ylabel=counted(out.hists, name),
                              title=tagger_title(tagger, cfg.names) if kind == "discriminant" else None,
                              syst_band=band, breakdown=cfg.breakdown, **common)
            entry = {"histogram": name, "channel": ch, "kind": kind, "incomplete": norm.note,
                     **fig.panels[0].as_dict(), **summary_entry(fig.panels[0], band)}
            if band is not None:
                entry["caption"] = syst.caption()
            yield file_stem(name, ch), fig, entry

    discs = sorted((n for n, k in kinds.items() if k == "discriminant"), key=lambda n: (not n.startswith("DeepJet"), n))
    for name in discs:
        yield from one(name, "discriminant")
    for left, right, lt, rt in paired_names(discs, pairs):
        disc = split_name(left)[1]
        for ch in _channels(out.hists, left, cfg.channel):
            ld, lm, lx, lf = _prepared(out, left, syst.norm_for(left), ch, "discriminant")
            rd, rm, rx, rf = _prepared(out, right, syst.norm_for(right), ch, "discriminant")
            if not lm or not rm:
                continue
            bands = [syst.band(n, ch, "discriminant") if cfg.systematics else None for n in (left, right)]
            lf, rf = ("\n".join(x for x in (f, syst.figure_note(n, b is not None)) if x)
                      for f, n, b in zip((lf, rf), (left, right), bands))
            rr = None
            if has_data and ld is not None and rd is not None:
                with np.errstate(divide="ignore", invalid="ignore"):
                    pts = [d[0] / sum(t[0] for t in m.values()) for d, m in ((ld, lm), (rd, rm))]
                rr = ratio_range(np.concatenate([p[np.isfinite(p) & (d[0] > 0)] for p, d in zip(pts, (ld, rd))]))
            fig = plot_datamc_pair((ld if has_data else None, lm), (rd if has_data else None, rm),
                                   titles=(tagger_title(lt, cfg.names), tagger_title(rt, cfg.names)),
                                   xlabels=(lx, rx), flow_notes=(lf, rf), log=_use_log(cfg.log, "discriminant", lm),
                                   channel=channel_text(ch, _categories(out.hists, left)), ratio_range=rr,
                                   ylabel=counted(out.hists, left), syst_bands=bands, breakdown=cfg.breakdown,
                                   **common)
            entry = {"histogram": f"{left} vs {right}", "channel": ch, "kind": "comparison",
                     "incomplete": norm.note,
                     "panels": {n: {**p.as_dict(), **summary_entry(p, b)}
                                for n, p, b in zip((left, right), fig.panels, bands)}}
            if any(b is not None for b in bands):
                entry["caption"] = syst.caption()
            yield file_stem(f"{lt}_vs_{rt}" + (f"_{disc}" if disc else ""), ch), fig, entry
    for kind in ("input", "variable"):
        for name in sorted(n for n, k in kinds.items() if k == kind):
            yield from one(name, kind)
    if kinds.get("cutflow") == "cutflow":
        cfs = {ds: hs["cutflow"] for ds, hs in out.hists.items() if "cutflow" in hs}
        drop = () if kwargs.get("lumi_mask") else ("lumi",)
        fig = plot_cutflow(cfs, {ds: norm.datasets[ds]["is_data"] for ds in cfs}, label=common["label"],
                           energy=facts.energy, lumi_fb=common["lumi_fb"], incomplete_note=norm.note, metadata=md,
                           drop_steps=drop)
        yield "cutflow", fig, {"histogram": "cutflow", "kind": "cutflow", "incomplete": norm.note,
                               "cutflow": fig.cutflow}


def plot_run(run, out_dir: str | None = None, formats=("png",), channel: str = "all", *,
             metadata: dict | None = None, verbose: bool = True, config: PlotConfig | None = None,
             **options) -> list[str]:
    """Write every data/MC figure of a run and ``summary.json``; return the figure paths.

    ``run``: a run directory or a :class:`~jetdask.engine.outputs.RunOutput` (then ``metadata``,
    the fileset dict or ``{dataset: metadata}``, is taken from ``run.run_dir`` unless given).
    ``out_dir`` defaults to ``RUN/plots``. ``channel``: ``"all"`` (channels summed and each
    channel), ``"sum"`` (summed only) or one channel. ``options``: the fields of
    :class:`PlotConfig` (``lumi``, ``energy``, ``label``, ``log``, ``only``, ``pairs``, ``names``).

    Files (one per format): ``{tagger}_{disc}_{channel}``, ``{A}_vs_{B}_{disc}_{channel}`` (side
    by side, for the configured pairs), ``input_*_{channel}``, ``{name}_{channel}`` (any other 1D
    histogram) and ``cutflow``; ``channel`` is ``all`` for the channel sum (and for a histogram
    without a channel axis).
    """
    from .summary import format_table

    cfg = dataclasses.replace(config or PlotConfig(), channel=channel, **options)
    out, md, _ = load_run(run, metadata)
    if out_dir is None:
        if not out.run_dir:
            raise ValueError("out_dir is needed when the RunOutput has no run_dir")
        out_dir = os.path.join(out.run_dir, "plots")
    os.makedirs(out_dir, exist_ok=True)
    if isinstance(formats, str):
        formats = [f.strip() for f in formats.split(",") if f.strip()]
    norm = normalisation(out, md, cfg.lumi)
    paths, plots = [], {}
    for stem, fig, entry in build_figures(out, metadata=metadata, config=cfg, norm=norm):
        files = []
        with cms_style():
            for fmt in formats:
                path = os.path.join(out_dir, f"{stem}.{fmt}")
                fig.savefig(path, dpi=PNG_DPI if fmt == "png" else None,
                            metadata={"Software": None} if fmt == "png" else None)
                files.append(path)
        if "caption" in entry:          # corrections and systematics of the figure, beside it
            cap = os.path.join(out_dir, f"{stem}.caption.json")
            with open(cap, "w") as f:
                json.dump(entry["caption"], f, indent=2)
                f.write("\n")
            entry["caption_file"] = os.path.basename(cap)
            del entry["caption"]
        entry["files"] = [os.path.basename(f) for f in files]
        plots[stem] = entry
        paths += files
    facts = run_facts(norm, md, energy=cfg.energy)
    summary = {"run_dir": os.path.abspath(out.run_dir) if out.run_dir else None,
               "written": time.strftime("%Y-%m-%dT%H:%M:%S"), "lumi_pb": norm.lumi_pb, "energy": facts.energy,
               "synthetic": facts.synthetic, "complete": bool(out.complete), "notes": norm.notes,
               "normalisation": norm.datasets, "options": {k: v for k, v in dataclasses.asdict(cfg).items()},
               "plots": plots}
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2, default=_json_default)
        f.write("\n")
    if verbose:
        print(format_table(plots))
        for n in norm.notes:
            print(f"NOTE: {n}")
    return paths


def _json_default(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")
