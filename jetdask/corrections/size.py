"""The output size of a study with variations, printed before a run starts."""
from __future__ import annotations

from .fill import CHANNELS, FLAVOURS, SF_ABSETA_EDGES, SF_PT_EDGES

SF_DISC_BINS = 20


def output_size(n_syst: int, value_bins: list[int], n_sf: int) -> dict:
    """Bins per data set: ``value_bins`` (bins of each per-jet histogram, flow excluded) with the
    syst, channel and flavour axes (category overflow and the value's flow bins included), ``n_sf``
    ``sf_*`` histograms, ``btag_sumw`` (4 stages x 9 multiplicities) and ``n_jets`` (2 channels x 9)."""
    cat = (len(CHANNELS) + 1) * (len(FLAVOURS) + 1)
    values = sum((b + 2) * cat * n_syst for b in value_bins)
    sf = n_sf * n_syst * len(CHANNELS) * len(FLAVOURS) * len(SF_PT_EDGES) * (len(SF_ABSETA_EDGES) - 1) * \
        (SF_DISC_BINS + 2)
    total = values + sf + (n_syst * (4 + 2) * 9 if n_sf else 0)
    return {"histograms": len(value_bins) + n_sf + (2 if n_sf else 0), "variations": n_syst, "bins": total,
            "bytes": 16 * total}      # Weight storage: sum of weights and of their squares


def describe(n_syst: int, value_bins: list[int], n_sf: int) -> str:
    s = output_size(n_syst, value_bins, n_sf)
    return (f"output per data set: {s['histograms']} histograms x {n_syst} variations (nominal + "
            f"{n_syst - 1}) x {len(CHANNELS)} channels x {len(FLAVOURS)} flavours = {s['bins']:,} bins "
            f"(~{s['bytes'] / 2 ** 20:.1f} MiB of weighted sums)")
