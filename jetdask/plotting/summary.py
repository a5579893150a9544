"""Data/MC agreement: Pearson chi2 with data and MC statistical variances, and its table.

``chi2 = sum_i (d_i - m_i)^2 / (var_d_i + var_m_i)`` over the bins as drawn (flow folded
into the edge bins where the figure folds it); bins with zero expected and zero observed are
skipped; ``ndf`` is the number of bins used (the MC normalisation is absolute, xsec x lumi, not fitted).
A used bin whose total variance is zero (no data and an MC expectation with no
recorded variance) takes the MC expectation as its Poisson variance. The p-value is
the chi2 survival function (scipy); it is shown as ``p < 1e-10`` below that floor, never as 0.
"""
from __future__ import annotations

import numpy as np

from .labels import p_text


def _values_variances(x, var=None, poisson: bool = False):
    if hasattr(x, "values") and hasattr(x, "axes"):      # hist.Hist / UHI plottable
        values = np.asarray(x.values(), dtype=np.float64)
        v = x.variances()
        if var is None and v is not None:
            var = v
    else:
        values = np.asarray(x, dtype=np.float64)
    if var is None:
        var = values.copy() if poisson else np.zeros_like(values)
    return values, np.asarray(var, dtype=np.float64)


def agreement(data, mc_total, *, data_var=None, mc_var=None) -> dict:
    """Pearson chi2 of ``data`` against ``mc_total`` (``hist.Hist`` or arrays).

    Variances come from the histograms' Weight storage; for plain arrays the data
    variance defaults to the data (Poisson) and the MC variance to zero.
    Returns ``{"chi2", "ndf", "chi2_ndf", "p_value"}`` (``chi2_ndf`` and ``p_value``
    are ``None`` when no bin is used).
    """
    d, vd = _values_variances(data, data_var, poisson=True)
    m, vm = _values_variances(mc_total, mc_var, poisson=False)
    if d.shape != m.shape:
        raise ValueError(f"data and MC have different binning: {d.shape} vs {m.shape}")
    use = ~((d == 0) & (m == 0))
    var = vd + vm
    var = np.where((var <= 0) & use, np.abs(m), var)
    use &= var > 0
    chi2 = float(np.sum((d[use] - m[use]) ** 2 / var[use]))
    ndf = int(use.sum())
    return {"chi2": chi2, "ndf": ndf, "chi2_ndf": chi2 / ndf if ndf else None,
            "p_value": chi2_sf(chi2, ndf) if ndf else None}


def chi2_sf(x: float, k: int) -> float:
    """P(chi2_k >= x) (scipy's chi-square survival function)."""
    from scipy.stats import chi2

    if k <= 0:
        raise ValueError("ndf must be positive")
    return float(chi2.sf(max(float(x), 0.0), k))


def format_table(plots: dict) -> str:
    """Compact text table of ``summary.json``'s ``plots`` entries that carry a chi2."""
    rows = [(name, e) for name, e in plots.items() if e.get("ndf")]
    if not rows:
        return "no data/MC comparison with data"
    w = max(30, max(len(e.get("histogram", n)) for n, e in rows) + 2)
    lines = [f"{'histogram':<{w}}{'channel':<9}{'chi2 / ndf':>16}{'p-value':>10}  note"]
    for name, e in rows:
        chi = f"{e['chi2']:.1f} / {e['ndf']}"
        p = e["p_value"]
        ptxt = f"{p:.3f}" if p >= 1e-3 else p_text(p).removeprefix("p = ")
        lines.append(f"{e.get('histogram', name):<{w}}{e.get('channel', ''):<9}{chi:>16}{ptxt:>10}  "
                     f"{'INCOMPLETE' if e.get('incomplete') else ''}")
    return "\n".join(lines)
