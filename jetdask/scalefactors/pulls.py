"""Pulls of derived SFs against a known truth (synthetic samples with an injected mismodelling).

``pull = (SF - truth) / sigma_stat`` per bin, with ``sigma_stat`` the data and MC statistical
uncertainties in quadrature (the pull test runs without systematic variations). Only bins
whose normalised MC light-jet expectation in the measured subset is at least ``min_expected``
enter: the linear error propagation describes a ratio of counts only away from a handful of
entries, and the selection uses MC alone, so it does not bias the data. Shape bins measured
together with their neighbours do not enter (the truth of a group is not the one at a bin centre).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .measure import SFTable
from .sources import NOMINAL


@dataclasses.dataclass
class Pulls:
    values: np.ndarray      # one per used bin
    labels: list            # "L pT 30-50 |eta| 0-0.8"
    skipped: int            # bins below min_expected or undefined

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if len(self.values) else float("nan")

    @property
    def width(self) -> float:
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else float("nan")


def bin_centres(edges) -> np.ndarray:
    e = np.asarray(edges, float)
    return 0.5 * (e[:-1] + e[1:])


def wp_pulls(table: SFTable, truth, min_expected: float = 20.0) -> Pulls:
    """Pulls of a working-point table; ``truth(wp, pt, abseta) -> SF`` (arrays of bin centres)."""
    if table.kind != "wp":
        raise ValueError("wp_pulls needs a working-point table")
    eta, pt = np.meshgrid(bin_centres(table.abseta_edges), bin_centres(table.pt_edges), indexing="ij")
    values, labels, skipped = [], [], 0
    for iw, wp in enumerate(table.wps):
        t = np.asarray(truth(wp.name, pt, eta), float)
        sigma = np.hypot(table.stat["data"][iw], table.stat["mc"][iw])
        use = table.defined[iw] & (table.expected_light[iw] >= min_expected) & (sigma > 0)
        skipped += int((~use).sum())
        for ie, ip in zip(*np.nonzero(use)):
            values.append((table.central[iw, ie, ip] - t[ie, ip]) / sigma[ie, ip])
            labels.append(f"{wp.name} pT {table.pt_edges[ip]:g}-{table.pt_edges[ip + 1]:g} "
                          f"|eta| {table.abseta_edges[ie]:g}-{table.abseta_edges[ie + 1]:g}")
    return Pulls(np.asarray(values), labels, skipped)


def shape_pulls(table: SFTable, truth, min_expected: float = 20.0) -> Pulls:
    """Pulls of a shape table; ``truth(pt, abseta, discriminant) -> SF`` at bin centres."""
    if table.kind != "shape":
        raise ValueError("shape_pulls needs a shape table")
    eta, pt, disc = np.meshgrid(bin_centres(table.abseta_edges), bin_centres(table.pt_edges),
                                bin_centres(table.disc_edges), indexing="ij")
    t = np.asarray(truth(pt, eta, disc), float)
    sigma = np.hypot(table.stat["data"], table.stat["mc"])
    use = table.defined & (table.expected_light >= min_expected) & (sigma > 0)
    if table.merged is not None:      # a group of bins: its truth is not the one at a bin centre
        use &= ~table.merged
    idx = list(zip(*np.nonzero(use)))
    values = [(table.central[i] - t[i]) / sigma[i] for i in idx]
    labels = [f"shape pT {table.pt_edges[ip]:g}-{table.pt_edges[ip + 1]:g} |eta| {table.abseta_edges[ie]:g}-"
              f"{table.abseta_edges[ie + 1]:g} d {table.disc_edges[idd]:g}" for ie, ip, idd in idx]
    return Pulls(np.asarray(values), labels, int((~use).sum()))


def pull_study(work_dir: str, seed: int, events: int, strength: float = 1.0, min_expected: float = 20.0,
               analysis: str | None = None) -> dict:
    """One seed of the synthetic pull test: a sample whose data carry the injected light-jet
    mismodelling of strength ``strength`` (no other data/MC difference), the DY+jets study with
    the corrections of the sample but no b-tag SF and no variations, the SFs of the official
    DeepJet score, and their pulls against :mod:`jetdask.synthetic.truth`.

    Returns ``{"pretag": {"wp": Pulls, "shape": Pulls}, "lumi": {...}, "seconds": {...}}``, one
    entry per MC normalisation of the derivation; ``analysis`` defaults to the checkout's
    ``analyses/dy_jets.py:DYJets``."""
    import os
    import time

    from ..engine.runner import Runner
    from ..plugin import load_analysis
    from ..synthetic import generate_sample, truth
    from .derive import derive

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    analysis = analysis or os.path.join(repo, "analyses", "dy_jets.py") + ":DYJets"
    base = os.path.join(work_dir, f"seed{seed}")
    t0 = time.perf_counter()
    fileset = os.path.join(base, "sample", "fileset.json")
    if not os.path.exists(fileset):
        generate_sample(os.path.join(base, "sample"), events=events, files=1, seed=seed, mismodel=0.0,
                        sf_mismodel=strength, workers=1)
    t1 = time.perf_counter()
    sample = os.path.dirname(fileset)
    ana = load_analysis(analysis, corrections=os.path.join(sample, "corrections.yaml"), disable=["btag"],
                        systematics=[])
    with Runner(ana, fileset, os.path.join(base, "run"), serial=True, progress=False) as runner:
        runner.run()
    t2 = time.perf_counter()
    out = {}
    for norm in ("pretag", "lumi"):
        res = derive(os.path.join(base, "run"), wp_file=os.path.join(sample, "btagging.json.gz"), taggers=["DeepJet"],
                     norm=norm)
        out[norm] = {
            "wp": wp_pulls(res.table("DeepJet", "B"), lambda w, pt, eta: truth.light_mistag_sf_wp(w, pt, eta, strength),
                           min_expected),
            "shape": shape_pulls(res.table("DeepJet", "B", kind="shape"),
                                 lambda pt, eta, d: truth.light_mistag_sf(pt, eta, d, strength), min_expected)}
    out["data_over_mc"] = data_over_mc(os.path.join(base, "run"))
    out["seconds"] = {"sample": t1 - t0, "run": t2 - t1, "sf": time.perf_counter() - t2}
    return out


def data_over_mc(run, name: str = "sf_DeepJet_B") -> float:
    """Data jets over MC jets (normalised by xsec x lumi) in histogram ``name``: what the
    ``lumi`` normalisation takes as given and ``pretag`` divides out, bin by bin."""
    from ..plotting.normalisation import normalisation
    from ..plotting.run import load_run
    from .derive import _variation_scales
    from .inputs import build_region
    out, md, _ = load_run(run)
    r = build_region(out.hists, name, normalisation(out, md), "all", _variation_scales(out, md))
    mc = r.light[NOMINAL].values.sum() + r.nonlight[NOMINAL].values.sum()
    return float(r.data.values.sum() / mc) if r.data is not None and mc > 0 else float("nan")
