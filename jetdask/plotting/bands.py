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
    """What every figure of a run needs for its bands and its b-tag normalisation (built once per run).

    ``norm`` is the run's :class:`~jetdask.plotting.normalisation.Normalisation`; the figures of a
    histogram use :meth:`norm_for` (the same, times the b-tag shape-SF normalisation of that
    histogram: per jet multiplicity, :func:`jetdask.corrections.normalise.btag_factor`).
    When the MC is normalised to the data yield (``norm.to_data``), every variation is normalised
    to the data yield too, as the nominal: the band then holds the shape of each variation only
    (stated on the figure, :meth:`figure_note`, and in the caption).
    """

    def __init__(self, out, metadata: dict, norm, btag_norm: bool = True):
        from ..corrections import systematics as reg
        from ..corrections.normalise import btag_norm_table, syst_names_of, variation_scales
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
        self.scales = variation_scales(out, metadata, btag_norm_on=False, norm=norm) if self.active else {}
        self.norm = norm
        self.sumw = {}                 # dataset -> its btag_sumw histogram (b-tag normalisation on)
        self.norm_factors = {}         # dataset -> nominal factor per jet multiplicity (what the summary states)
        if btag_norm:
            for ds, x in norm.datasets.items():
                h = out.hists.get(ds, {}).get("btag_sumw")
                if not x["is_data"] and h is not None:
                    self.sumw[ds] = h
                    self.norm_factors[ds] = [float(k) for k in btag_norm_table(h)["nominal"]]
        self._norms: dict = {}

    def factor(self, ds: str, syst: str, h):
        """The b-tag normalisation factor of data set ``ds``'s histogram ``h`` for ``syst`` (1 when off)."""
        from ..corrections.normalise import btag_factor
        sumw = self.sumw.get(ds)
        if sumw is None or syst not in [str(c) for c in sumw.axes["syst"]]:
            return 1.0
        return btag_factor(sumw, syst, h)

    def norm_for(self, name: str):
        """The run's normalisation with each MC data set's scale times the nominal b-tag
        normalisation of histogram ``name`` (a per-bin array for a jet-multiplicity histogram)."""
        if not self.sumw:
            return self.norm
        if name not in self._norms:
            import copy
            n = copy.copy(self.norm)
            n.datasets = {ds: dict(x) for ds, x in self.norm.datasets.items()}
            for ds, x in n.datasets.items():
                h = self.out.hists.get(ds, {}).get(name)
                if h is not None and ds in self.sumw:
                    x["scale"] = x["scale"] * self.factor(ds, "nominal", h)
            self._norms[name] = n
        return self._norms[name]

    def _variation_total(self, name: str, syst: str, channel: str, data_total: float | None = None):
        parts = []
        for ds, x in self.norm.datasets.items():
            h = self.out.hists.get(ds, {}).get(name)
            if h is None or x["is_data"] or "syst" not in h.axes.name:
                continue
            hs = h[{"syst": syst}]
            scale = self.scales[ds][syst] if syst in self.scales.get(ds, {}) else x["scale"]
            scale = scale * self.factor(ds, syst, h)
            for hf in mc_flavour_hists(hs, channel).values():
                parts.append(with_flow(hf, scale))
        tot = tuple_sum(parts)
        if tot is not None and data_total is not None:      # MC normalised to data: each variation too
            s = float(tot[0].sum())
            k = data_total / s if s > 0 else 1.0
            tot = (tot[0] * k, tot[1], tot[2] * k * k)
        return tot

    def band(self, name: str, channel: str, kind: str) -> Band | None:
        """The band of histogram ``name`` in ``channel``, folded as the figure; None without variations."""
        if not self.active:
            return None
        if not any("syst" in hs[name].axes.name for hs in self.out.hists.values() if name in hs):
            return None
        data, mc, _ = run_components(self.out.hists, name, self.norm_for(name), channel)
        if not mc:
            return None
        data_total = float(data[0].sum()) if (self.norm.to_data and data is not None) else None
        mode = "over" if kind == "discriminant" else "both"
        sl = occupied_range(data, mc) if kind == "input" else None
        nominal = self._variation_total(name, "nominal", channel, data_total)
        nom_f = fold(nominal, sl, mode)[0][0]
        variations = {}
        for s in self.names[1:]:
            t = self._variation_total(name, s, channel, data_total)
            if t is not None:
                variations[s] = fold(t, sl, mode)[0][0]
        return combine(nom_f, variations, self.sources)

    def figure_note(self, name: str | None = None, band: bool = True) -> str:
        """The lines a figure of histogram ``name`` states: the b-tag normalisation applied (its
        range over the MC data sets, per jet multiplicity where the histogram has it) and, with a
        band of MC normalised to data, that the band holds the variations' shapes only."""
        lines = []
        if self.sumw:
            ks = []
            for ds in self.sumw:
                h = self.out.hists.get(ds, {}).get(name) if name else None
                k = self.factor(ds, "nominal", h) if h is not None else np.asarray(self.norm_factors[ds])
                ks += [float(v) for v in np.ravel(k) if v != 1.0] or [1.0]
            per = name is not None and any(self.out.hists.get(ds, {}).get(name) is not None and "njet" in
                                           self.out.hists[ds][name].axes.name for ds in self.sumw)
            rng = f"x{min(ks):.3f}" if max(ks) - min(ks) < 5e-4 else f"x{min(ks):.3f}-{max(ks):.3f}"
            lines.append(f"b-tag SF norm. {rng}" + (" (per $n_{jet}$)" if per else ""))
        if band and self.active and self.norm.to_data:
            lines.append("syst. band: shapes only (MC to data)")
        return "\n".join(lines)

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
        cap = {"corrections": [{"path": f["path"], "sha256": f["sha256"], "corrections": [c["name"] for c in
                                                                                        f["corrections"]]}
                               for f in prov.get("files", [])],
               "era": prov.get("era"), "systematics": [s.name for s in self.sources],
               "btag_normalisation": ({"per_njet": self.norm_factors,
                                       "applied": "per data set and jet multiplicity: bin by bin for a "
                                                  "jet-multiplicity histogram, summed over each jet's event "
                                                  "multiplicity for a per-jet histogram"}
                                      if self.btag_norm else "off"),
               "chi2_syst": "diagonal: data, MC stat and the systematic shift towards the data added in quadrature"}
        if self.norm.to_data:
            cap["band_normalisation"] = ("MC normalised to the data yield: every variation normalised to the data "
                                         "yield too, so the band holds the variations' shapes only")
        return cap


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
