"""Closure: the DY+jets study rerun with the derived SFs applied to MC, data/MC before and after.

1. :func:`closure_config` writes a corrections config equal to the run's own (pile-up, JEC,
   JES, JER, theory blocks, paths made absolute) whose ``btag`` block points at the derived
   ``deepJet_shape`` (discriminant ``btagDeepFlavB``), with the SF's own uncertainties as the
   only variations: ``btag_lf`` (its systematic part, ``up_lf``/``down_lf`` in the file) and
   ``btag_lfstats1`` (its statistical part);
2. :func:`run_closure` reruns the run's analysis with it on the run's fileset, in a run
   directory named after the SF file's digest (the same SF file resumes, another starts anew);
3. :func:`compare` computes, for every discriminant histogram (channels summed), the Pearson
   chi2 of data against MC before (the original run, MC statistics) and after (the closure run,
   MC statistics and the SF uncertainty), draws data/MC before and after, and writes
   ``summary.json``.
"""
from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from .sources import NOMINAL

CLOSURE_SYSTEMATICS = ("btag_lf", "btag_lfstats1")
SHAPE = "deepJet_shape"


def _sha(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def closure_config(run_dir: str, sf_path: str, out_path: str, systematics=CLOSURE_SYSTEMATICS,
                   shape: str = SHAPE) -> tuple[str, dict]:
    """Write the closure corrections config; return ``(path, analysis kwargs of the closure run)``."""
    import yaml

    from ..plotting.normalisation import run_metadata
    _, kwargs = run_metadata(run_dir)
    raw, base = {}, None
    cfg = kwargs.get("corrections")
    if isinstance(cfg, str) and os.path.exists(cfg):
        with open(cfg) as f:
            raw = yaml.safe_load(f) or {}
        base = os.path.dirname(os.path.abspath(cfg))
    for block in raw.values():
        if isinstance(block, dict) and isinstance(block.get("file"), str) and base:
            f = block["file"]
            if "://" not in f and not os.path.isabs(f):
                block["file"] = os.path.join(base, f)
    raw["btag"] = {"file": os.path.abspath(sf_path), "shape": shape, "discriminant": "btagDeepFlavB"}
    raw["systematics"] = list(systematics)
    with open(out_path, "w") as f:
        f.write("# jetdask sf closure: the run's corrections with the derived light-jet shape SF\n")
        yaml.safe_dump(raw, f, sort_keys=False)
    new = dict(kwargs, corrections=os.path.abspath(out_path), systematics=list(systematics))
    if "disable" in new:
        new["disable"] = [d for d in new["disable"] if d != "btag"]
    return out_path, new


def run_closure(run_dir: str, sf_path: str, out_dir: str, client=None, serial: bool = False,
                progress: bool = False) -> str:
    """Rerun the analysis of ``run_dir`` with the derived SFs; return the closure run directory."""
    from ..engine.ledger import Ledger
    from ..engine.runner import Runner
    from ..errors import ConfigError
    from ..plugin import load_analysis

    led = Ledger(os.path.join(run_dir, "ledger.sqlite"), readonly=True)
    try:
        spec, fileset = led.get_meta("analysis"), led.get_meta("fileset")
    finally:
        led.close()
    if not spec or not fileset:
        raise ConfigError(f"{run_dir} does not record its analysis and fileset; cannot rerun it", "run_dir")
    os.makedirs(out_dir, exist_ok=True)
    _, kwargs = closure_config(run_dir, sf_path, os.path.join(out_dir, "closure_corrections.yaml"))
    target = os.path.join(out_dir, f"closure-run-{_sha(sf_path)[:12]}")
    analysis = load_analysis(spec, **kwargs)
    with Runner(analysis, fileset, target, client, serial=serial, progress=progress) as runner:
        out = runner.run()
    if not out.complete:
        raise ConfigError(f"the closure run {target} is not complete (see jetdask status {target})", "closure")
    return target


# -- before / after ---------------------------------------------------------------------------

def _components(run, name: str):
    """(data values, data variances, MC nominal values, MC variances, {syst: MC values}) of the
    discriminant histogram ``name`` summed over channels and datasets; underflow (undefined
    scores) dropped, overflow in the last bin."""
    from ..plotting.normalisation import normalisation
    from ..plotting.run import load_run
    from .derive import _variation_scales
    out, md, _ = load_run(run)
    norm = normalisation(out, md)
    scales = _variation_scales(out, md) or {}
    data = mc = None
    variations: dict = {}
    edges = None

    def arr(h):
        v = np.asarray(h.values(flow=True), float)
        w = h.variances(flow=True)
        w = v.copy() if w is None else np.asarray(w, float)
        v, w = v[1:].copy(), w[1:].copy()
        v[-2] += v[-1]
        w[-2] += w[-1]
        return v[:-1], w[:-1]

    for ds, info in norm.datasets.items():
        h = out.hists.get(ds, {}).get(name)
        if h is None:
            continue
        h = h[{a: sum for a in ("channel", "pt", "abseta") if a in h.axes.name}]
        systs = [str(c) for c in h.axes["syst"]] if "syst" in h.axes.name else [NOMINAL]
        edges = np.asarray(h.axes[-1].edges, float)
        if info["is_data"]:
            hd = h[{"syst": NOMINAL}] if "syst" in h.axes.name else h
            v, w = arr(hd[{"flavour": sum}])
            data = (v, w) if data is None else (data[0] + v, data[1] + w)
            continue
        for s in systs:
            hs = h[{"syst": s}] if "syst" in h.axes.name else h
            k = float(scales.get(ds, {}).get(s, info.get("scale") or 1.0))
            v, w = arr(hs[{"flavour": sum}])
            if s == NOMINAL:
                mc = (v * k, w * k * k) if mc is None else (mc[0] + v * k, mc[1] + w * k * k)
            else:
                variations[s] = v * k if s not in variations else variations[s] + v * k
    return data, mc, variations, edges


def _syst_variance(nominal, variations: dict) -> np.ndarray:
    """Sum over sources of the larger squared shift of each Up/Down pair."""
    from .registry import sources_for
    total = np.zeros_like(nominal)
    for src in sources_for([NOMINAL, *variations]):
        shifts = [variations[m] - nominal for m in src.members if m in variations]
        if shifts and src.in_total:
            total += np.max(np.square(shifts), axis=0)
    return total


def discriminant_names(run) -> list[str]:
    """The run's discriminant histograms; an ``sf_*`` one (summed over pT and |eta|) only where
    no plain histogram of the same discriminant exists (``sf_DeepJet_B``: btagDeepFlavB)."""
    from ..plotting.run import load_run
    out, _, _ = load_run(run)
    names = {n for hs in out.hists.values() for n, h in hs.items()
             if not n.startswith("input_") and n != "cutflow" and "flavour" in h.axes.name}
    names = {n for n in names if not (n.startswith("sf_") and n[3:] in names)}
    return sorted(names, key=lambda n: (not n.removeprefix("sf_").startswith("DeepJet_"), n.removeprefix("sf_")))


def compare(before, after, out_dir: str, names=None, figures: bool = True) -> dict:
    """chi2 of data vs MC before and after the SFs for every discriminant; figures and
    ``summary.json`` in ``out_dir``; returns the summary."""
    from ..plotting.summary import agreement
    os.makedirs(out_dir, exist_ok=True)
    names = names or [n for n in discriminant_names(after) if n in set(discriminant_names(before))]
    summary = {"before": str(before), "after": str(after), "systematics": list(CLOSURE_SYSTEMATICS),
               "chi2": "Pearson, data and MC statistical variances (after: plus the SF uncertainty)",
               "histograms": {}}
    for name in names:
        d0, m0, _, edges = _components(before, name)
        d1, m1, var1, _ = _components(after, name)
        if d0 is None or m0 is None or d1 is None or m1 is None:
            continue
        syst = _syst_variance(m1[0], var1)
        entry = {"before": agreement(d0[0], m0[0], data_var=d0[1], mc_var=m0[1]),
                 "after_stat": agreement(d1[0], m1[0], data_var=d1[1], mc_var=m1[1]),
                 "after": agreement(d1[0], m1[0], data_var=d1[1], mc_var=m1[1] + syst),
                 "data_yield": float(d1[0].sum()), "mc_yield_before": float(m0[0].sum()),
                 "mc_yield_after": float(m1[0].sum())}
        if figures:
            entry["figure"] = os.path.basename(_figure(out_dir, name, edges, d0, m0, d1, m1, syst, _facts(after)))
        summary["histograms"][name] = entry
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")
    return summary


def format_summary(summary: dict) -> str:
    """chi2/ndf before, after (MC stat only) and after (with the SF uncertainty), p-value after."""
    lines = [f"{'closure: data vs MC':<28}{'chi2/ndf before':>16}{'after, stat':>16}{'after':>16}{'p after':>10}"]
    for name, e in summary["histograms"].items():
        b, s, a = e["before"], e["after_stat"], e["after"]
        lines.append(f"{name:<28}" + "".join(f"{x['chi2']:>10.1f} / {x['ndf']:<3}" for x in (b, s, a))
                     + f"{a['p_value']:>10.3g}")
    return "\n".join(lines)


def _facts(run) -> dict:
    from ..plotting.normalisation import normalisation
    from ..plotting.run import load_run
    from .derive import _facts as facts
    out, md, _ = load_run(run)
    return facts(normalisation(out, md), md)


def _figure(out_dir, name, edges, d0, m0, d1, m1, syst, facts) -> str:
    from ..plotting.style import PNG_DPI, cms_label, cms_style, new_figure
    centres = 0.5 * (edges[:-1] + edges[1:])
    shown = name.removeprefix("sf_")
    with cms_style():
        fig = new_figure(8, 8)
        top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.3], "hspace": 0.05})
        top.stairs(m0[0], edges, color="0.5", ls="--", lw=1.5, label="MC, before")
        top.stairs(m1[0], edges, color="#5790fc", lw=2, label="MC, derived SF applied")
        top.errorbar(centres, d1[0], yerr=np.sqrt(d1[1]), fmt="o", color="black",
                     label="synthetic data" if facts.get("synthetic") else "data")
        top.set_yscale("log")
        top.set_ylabel("jets")
        top.legend(fontsize="small", title="derived light-jet SF, closure", title_fontsize="small")
        cms_label(top, facts.get("label", "Private work"), lumi_fb=facts.get("lumi_fb"),
                  energy=facts.get("energy", "13 TeV"))
        with np.errstate(divide="ignore", invalid="ignore"):
            for d, m, style, lab in ((d0, m0, {"mfc": "white", "color": "0.4"}, "before"),
                                     (d1, m1, {"color": "black"}, "after")):
                ok = m[0] > 0
                bottom.errorbar(centres[ok], d[0][ok] / m[0][ok], yerr=np.sqrt(d[1][ok]) / m[0][ok], fmt="o", ms=4,
                                label=lab, **style)
            band = np.where(m1[0] > 0, np.sqrt(m1[1] + syst) / np.abs(m1[0]), 0.0)
        bottom.fill_between(edges, np.r_[1 - band, (1 - band)[-1]], np.r_[1 + band, (1 + band)[-1]], step="post",
                            color="#5790fc", alpha=0.3, lw=0)
        bottom.axhline(1, color="0.4", ls="--", lw=1)
        bottom.set_ylim(0.5, 1.5)
        bottom.set_ylabel("data / MC")
        bottom.set_xlabel(shown.replace("_", " ") + (" (btagDeepFlavB)" if shown == "DeepJet_B" else ""))
        bottom.text(0.02, 0.95, "open: before, filled: after; band: MC stat + SF unc.", transform=bottom.transAxes,
                    va="top", fontsize="x-small")
        path = os.path.join(out_dir, f"closure_{name}.png")
        fig.savefig(path, dpi=PNG_DPI)
    return path
