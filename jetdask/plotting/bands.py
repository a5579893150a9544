"""Systematic bands of data/MC figures: stat ⊕ syst, per group, yield impacts, χ² with syst.

A run made with corrections has histograms with a ``syst`` axis (:mod:`jetdask.corrections`).
For one figure (histogram, channel), :meth:`SystContext.band` takes the MC total of every
variation (summed over data sets and flavours, each data set scaled by its variation's
normalisation, :func:`jetdask.corrections.normalise.variation_scales`), folds it exactly as the
nominal figure (same flow folding, same crop), and combines the shifts ``variation - nominal``:

* per source: the upward shift of a bin is ``max(up, down, 0)``, the downward one
  ``min(up, down, 0)`` (both variations on one side count once, on that side); a one-sided
  source (``Up`` only) is symmetrised;
* sources of one ``envelope`` (the muR/muF 7-point scale) combine as their envelope;
* ``component_of`` sources (the regrouped JES sources beside the Total) are a breakdown only;
* groups (pile-up, b-tag, JES, JER, theory) and the total are quadrature sums.

The band drawn is the total ⊕ the MC statistical uncertainty. The χ² with systematics is
diagonal: per bin the data variance, the MC statistical variance and the square of the
systematic shift on the side of the data (the systematics' bin-to-bin correlations are ignored;
stated in the summary).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .datamc import SYST_BAND_LABEL as BAND_LABEL
from .hists import (
    fold,
    mc_flavour_hists,
    occupied_range,
    run_components,
    tuple_sum,
    with_flow,
)
from .summary import agreement

GROUP_COLOURS = {"pileup": "#1f77b4", "btag": "#d62728", "jes": "#2ca02c", "jer": "#9467bd", "theory": "#ff7f0e"}


@dataclasses.dataclass
class Band:
    """Absolute per-bin shifts of the MC total (``up``/``down`` >= 0), by group and by source."""
    up: np.ndarray
    down: np.ndarray
    groups: dict                      # group -> (up, down)
    impacts: dict                     # source -> {"up": %, "down": %} of the MC yield
    sources: list

    def relative(self, total) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(divide="ignore", invalid="ignore"):
            return (np.where(total > 0, self.up / total, 0.0), np.where(total > 0, self.down / total, 0.0))


def combine(nominal: np.ndarray, variations: dict, sources) -> Band:
    """The band of ``variations`` (``{syst: per-bin totals}``) around ``nominal`` for the
    registry ``sources`` present (see the module docstring)."""
    per_source = {}
    impacts = {}
    tot = float(nominal.sum())
    for s in sources:
        up = variations.get(f"{s.name}Up")
        if up is None:
            continue
        down = variations.get(f"{s.name}Down")
        du = up - nominal
        dd = (down - nominal) if down is not None else -du
        per_source[s.name] = (np.maximum(np.maximum(du, dd), 0.0), -np.minimum(np.minimum(du, dd), 0.0))
        impacts[s.name] = {"up": 100.0 * float(du.sum()) / tot if tot else 0.0,
                           "down": 100.0 * float(dd.sum()) / tot if tot else 0.0}
    present = set(per_source)
    terms: dict = {}                  # group -> list of (up, down)
    envelopes: dict = {}
    for s in sources:
        if s.name not in per_source or (s.component_of and s.component_of in present):
            continue
        if s.envelope:
            envelopes.setdefault((s.group, s.envelope), []).append(per_source[s.name])
        else:
            terms.setdefault(s.group, []).append(per_source[s.name])
    for (group, _), members in envelopes.items():
        terms.setdefault(group, []).append((np.max([m[0] for m in members], axis=0),
                                            np.max([m[1] for m in members], axis=0)))
    groups = {g: (np.sqrt(np.sum([t[0] ** 2 for t in ts], axis=0)), np.sqrt(np.sum([t[1] ** 2 for t in ts], axis=0)))
              for g, ts in terms.items()}
    zero = np.zeros_like(nominal)
    up = np.sqrt(sum((g[0] ** 2 for g in groups.values()), zero))
    down = np.sqrt(sum((g[1] ** 2 for g in groups.values()), zero))
    return Band(up, down, groups, impacts, [s.name for s in sources if s.name in per_source])


def chi2_with_syst(panel, band: Band) -> dict:
    """Diagonal χ² of the panel's data against its MC with data, MC stat and syst variances."""
    d, m = panel.data, panel.mc_total
    syst = np.where(d >= m, band.up, band.down)
    return agreement(d, m, data_var=panel.data_var, mc_var=panel.mc_total_var + syst ** 2)


class SystContext:
    """What every figure of a run needs for its bands (built once per run)."""

    def __init__(self, out, metadata: dict, norm, btag_norm: bool = True):
        from ..corrections import systematics as reg
        from ..corrections.normalise import btag_norm as norm_of
        from ..corrections.normalise import syst_names_of, variation_scales
        self.out = out
        names = []
        for hs in out.hists.values():
            names = syst_names_of(hs)
            if len(names) > 1:
                break
        self.names = names
        self.active = len(names) > 1
        self.sources = [reg.parse(n)[0] for n in names[1:] if n.endswith("Up")]
        self.btag_norm = btag_norm
        self.scales = variation_scales(out, metadata, btag_norm_on=btag_norm, norm=norm) if self.active else {}
        self.norm = norm
        self.norm_factors = {}
        if self.active and btag_norm:
            import copy
            self.norm = copy.deepcopy(norm)
            for ds, x in self.norm.datasets.items():
                h = out.hists.get(ds, {}).get("btag_sumw")
                if not x["is_data"] and h is not None:
                    k = norm_of(h, "nominal")
                    x["scale"] = x["scale"] * k
                    x["btag_norm"] = k
                    self.norm_factors[ds] = k

    def _variation_total(self, name: str, syst: str, channel: str):
        parts = []
        for ds, x in self.norm.datasets.items():
            h = self.out.hists.get(ds, {}).get(name)
            if h is None or x["is_data"] or "syst" not in h.axes.name:
                continue
            hs = h[{"syst": syst}]
            for hf in mc_flavour_hists(hs, channel).values():
                parts.append(with_flow(hf, self.scales[ds][syst] if syst in self.scales.get(ds, {}) else x["scale"]))
        return tuple_sum(parts)

    def band(self, name: str, channel: str, kind: str) -> Band | None:
        """The band of histogram ``name`` in ``channel``, folded as the figure; None without variations."""
        if not self.active:
            return None
        if not any("syst" in hs[name].axes.name for hs in self.out.hists.values() if name in hs):
            return None
        data, mc, _ = run_components(self.out.hists, name, self.norm, channel)
        if not mc:
            return None
        mode = "over" if kind == "discriminant" else "both"
        sl = occupied_range(data, mc) if kind == "input" else None
        nominal = self._variation_total(name, "nominal", channel)
        nom_f = fold(nominal, sl, mode)[0][0]
        variations = {}
        for s in self.names[1:]:
            t = self._variation_total(name, s, channel)
            if t is not None:
                variations[s] = fold(t, sl, mode)[0][0]
        return combine(nom_f, variations, self.sources)

    def figure_note(self) -> str:
        """The line a figure with a band states: the b-tag normalisation correction applied."""
        if not self.norm_factors:
            return ""
        return "b-tag SF norm. " + ", ".join(f"x{k:.3f}" for k in self.norm_factors.values())

    def caption(self) -> dict:
        """What the figures' caption files name: corrections files, systematics, normalisation."""
        import json
        import os
        prov = {}
        if self.out.run_dir:
            path = os.path.join(self.out.run_dir, "output", "metadata.json")
            if os.path.exists(path):
                with open(path) as f:
                    prov = (json.load(f).get("provenance") or {}).get("corrections") or {}
        return {"corrections": [{"path": f["path"], "sha256": f["sha256"], "corrections": [c["name"] for c in
                                                                                         f["corrections"]]}
                                for f in prov.get("files", [])],
                "era": prov.get("era"), "systematics": [s.name for s in self.sources],
                "btag_normalisation": self.norm_factors if self.btag_norm else "off",
                "chi2_syst": "diagonal: data, MC stat and the systematic shift towards the data added in quadrature"}


def summary_entry(panel, band: Band | None) -> dict:
    """``summary.json`` additions of one figure: χ² stat only and stat+syst, yield impacts."""
    if band is None:
        return {}
    out = {"syst_impact_pct": band.impacts,
           "syst_band_pct": {"up": 100.0 * float(band.up.sum()) / max(float(panel.mc_total.sum()), 1e-300),
                             "down": 100.0 * float(band.down.sum()) / max(float(panel.mc_total.sum()), 1e-300)}}
    if panel.data is not None:
        out["chi2_stat"] = panel.agreement
        out["chi2_stat_syst"] = chi2_with_syst(panel, band)
    return out


def _totals(panel, band: Band):
    stat = np.sqrt(panel.mc_total_var)
    return np.sqrt(band.up ** 2 + stat ** 2), np.sqrt(band.down ** 2 + stat ** 2)


def draw_main_band(ax, panel, band: Band) -> np.ndarray:
    """stat ⊕ syst band around the MC total; returns its top per bin (for the y range)."""
    up, down = _totals(panel, band)
    ax.stairs(panel.mc_total + up, panel.edges, baseline=panel.mc_total - down, fill=True, facecolor="#9e9e9e",
              alpha=0.35, linewidth=0, label=BAND_LABEL, gid="mc:syst")
    return panel.mc_total + up


def draw_ratio_band(rax, panel, band: Band, breakdown: bool = False) -> None:
    """The relative stat ⊕ syst band around 1 in the ratio panel (drawn after its range is set);
    with ``breakdown`` each group's relative band as lines (solid up, dotted down)."""
    edges, total = panel.edges, panel.mc_total
    up, down = _totals(panel, band)
    with np.errstate(divide="ignore", invalid="ignore"):
        ru, rd = np.where(total > 0, up / total, 0.0), np.where(total > 0, down / total, 0.0)
    lo, hi = rax.get_ylim()
    rax.stairs(np.minimum(1 + ru, hi), edges, baseline=np.maximum(1 - rd, lo), fill=True, facecolor="#9e9e9e",
               alpha=0.35, linewidth=0, gid="ratio:syst", zorder=1)
    if breakdown:
        for g, (gu, gd) in band.groups.items():
            with np.errstate(divide="ignore", invalid="ignore"):
                gu_r, gd_r = np.where(total > 0, gu / total, 0.0), np.where(total > 0, gd / total, 0.0)
            colour = GROUP_COLOURS.get(g, "black")
            rax.stairs(np.minimum(1 + gu_r, hi), edges, color=colour, linewidth=1.2, gid=f"ratio:syst:{g}", label=g)
            rax.stairs(np.maximum(1 - gd_r, lo), edges, color=colour, linewidth=1.2, linestyle=":")
        rax.legend(fontsize="xx-small", ncol=len(band.groups), loc="lower left", frameon=False)
        rax.set_ylim(lo, hi)
