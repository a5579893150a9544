"""Filling histograms with a leading ``syst`` axis: one bin lookup, one weighted count per variation.

A :class:`SystBook` holds, per histogram name, a dense C-ordered accumulator of the histogram's
``(value, variance)`` storage with flow bins. :meth:`SystBook.filler` returns a
``fill(name, values, bins=20, lo=0., hi=1., label=None)`` function (the signature of the DY
study's own ``fill``) bound to a set of jets: their channel and flavour indices, pT, |eta|, and
one weight row per variation that shares these jets (all weight variations share the nominal
jets; each shape variation has its own). The bin of each jet is computed once with the axis'
own ``index`` (boost-histogram's binning, so edges behave as ``Hist.fill``), then one
``np.bincount`` per weight row adds into that variation's slice. :meth:`SystBook.hists` writes
the accumulators into ``hist.Hist`` objects at the end of the chunk.

Discriminant histograms (every name not starting with ``input_``, except the distorted-input
variants ``tagger@distortion`` of robustness studies) also fill ``sf_<name>``:
axes ``syst, channel, flavour, pt, abseta, discriminant`` (the contract with the scale-factor
code, ``/work/coord/sf_contract.md``).
"""
from __future__ import annotations

import hist
import numpy as np

CHANNELS = ("mumu", "ee")
FLAVOURS = ("b", "c", "light", "data")
SF_PT_EDGES = (20.0, 30.0, 50.0, 70.0, 100.0, 140.0, 200.0, 300.0, 1000.0)
SF_ABSETA_EDGES = (0.0, 0.8, 1.6, 2.5)


def value_hist(syst_axis, name: str, bins: int, lo: float, hi: float, label: str, make=None) -> hist.Hist:
    """The study's (channel, flavour, variable) histogram (``make(name, bins, lo, hi, label)``, the
    analysis' own booking, when given) with a leading syst axis."""
    if make is None:
        base = hist.Hist(hist.axis.StrCategory(list(CHANNELS), name="channel"),
                         hist.axis.StrCategory(list(FLAVOURS), name="flavour"),
                         hist.axis.Regular(bins, lo, hi, name=name, label=label), storage=hist.storage.Weight())
    else:
        base = make(name, bins, lo, hi, label)
    return hist.Hist(syst_axis, *base.axes, storage=base.storage_type(), label=base.label)


def sf_hist(syst_axis, label: str) -> hist.Hist:
    return hist.Hist(syst_axis, hist.axis.StrCategory(list(CHANNELS), name="channel", overflow=False),
                     hist.axis.StrCategory(list(FLAVOURS), name="flavour", overflow=False),
                     hist.axis.Variable(SF_PT_EDGES, name="pt", label="jet $p_T$ [GeV]", underflow=False),
                     hist.axis.Variable(SF_ABSETA_EDGES, name="abseta", label=r"jet $|\eta|$", underflow=False,
                                        overflow=False),
                     hist.axis.Regular(20, 0.0, 1.0, name="discriminant", label=label),
                     storage=hist.storage.Weight())


def _offset(ax) -> int:
    return 1 if ax.traits.underflow else 0


def _flow_len(ax) -> int:
    return len(ax) + int(ax.traits.underflow) + int(ax.traits.overflow)


class _Accum:
    def __init__(self, h: hist.Hist):
        self.h = h
        self.shape = tuple(_flow_len(ax) for ax in h.axes)
        self.value = np.zeros(self.shape)
        self.variance = np.zeros(self.shape)
        self.inner = int(np.prod(self.shape[1:]))

    def add(self, rows, index, weights, same_rows: bool) -> None:
        """Add ``weights[k]`` at flat inner bins ``index`` into syst row ``rows[k]``."""
        ok = index >= 0
        idx = index[ok]
        if same_rows:
            w = weights[0][ok]
            v, v2 = np.bincount(idx, w, self.inner), np.bincount(idx, w * w, self.inner)
            for r in rows:
                self.value[r].reshape(-1)[:] += v
                self.variance[r].reshape(-1)[:] += v2
            return
        for r, w in zip(rows, weights):
            w = w[ok]
            self.value[r].reshape(-1)[:] += np.bincount(idx, w, self.inner)
            self.variance[r].reshape(-1)[:] += np.bincount(idx, w * w, self.inner)

    def finish(self) -> hist.Hist:
        view = self.h.view(flow=True)
        view["value"] = self.value
        view["variance"] = self.variance
        return self.h


class SystBook:
    """Accumulators of every syst-axis histogram of one chunk."""

    def __init__(self, syst_names: list[str], make_hist=None):
        self.names = list(syst_names)
        self.make_hist = make_hist
        self.axis = hist.axis.StrCategory(self.names, name="syst", label="systematic variation", overflow=False)
        self._acc: dict[str, _Accum] = {}

    def _get(self, name, make) -> _Accum:
        acc = self._acc.get(name)
        if acc is None:
            acc = self._acc[name] = _Accum(make())
        return acc

    def filler(self, rows, channel_idx, flavour_idx, weights, pt, abseta, same_rows: bool = False):
        """``fill(name, values, bins, lo, hi, label)`` for these jets and weight rows."""
        rows = [int(r) for r in rows]
        weights = [np.asarray(w, dtype=np.float64) for w in weights]
        ch = np.asarray(channel_idx, dtype=np.int64)
        fl = np.asarray(flavour_idx, dtype=np.int64)
        sf_base = None

        def sf_index(ax_pt, ax_eta, n_disc):
            nonlocal sf_base
            if sf_base is None:
                ipt = ax_pt.index(np.asarray(pt, dtype=np.float64)) + _offset(ax_pt)
                ieta = ax_eta.index(np.asarray(abseta, dtype=np.float64)) + _offset(ax_eta)
                bad = (ipt < 0) | (ipt >= _flow_len(ax_pt)) | (ieta < 0) | (ieta >= _flow_len(ax_eta))
                base = ((ch * len(FLAVOURS) + fl) * _flow_len(ax_pt) + ipt) * _flow_len(ax_eta) + ieta
                sf_base = np.where(bad, -1, base * n_disc)
            return sf_base

        def fill(name, values, bins=20, lo=0.0, hi=1.0, label=None):
            values = np.asarray(values, dtype=np.float64)
            if hi == 1.0:  # a discriminant of exactly 1 belongs in the last bin, not the overflow
                values = np.where(values == 1.0, np.nextafter(1.0, 0.0), values)
            acc = self._get(name, lambda: value_hist(self.axis, "value", bins, lo, hi, label or name, self.make_hist))
            ax_fl, ax_v = acc.h.axes[2], acc.h.axes[3]
            iv = ax_v.index(values) + _offset(ax_v)
            index = (ch * _flow_len(ax_fl) + fl) * _flow_len(ax_v) + iv
            acc.add(rows, index, weights, same_rows)
            if not name.startswith("input_") and "@" not in name:   # distorted-input variants: no SF input
                fill_sf(f"sf_{name}", values, label or name)

        def fill_sf(name, values, label):
            acc = self._get(name, lambda: sf_hist(self.axis, label))
            ax_pt, ax_eta, ax_d = acc.h.axes[3], acc.h.axes[4], acc.h.axes[5]
            base = sf_index(ax_pt, ax_eta, _flow_len(ax_d))
            idx = ax_d.index(np.asarray(values, dtype=np.float64)) + _offset(ax_d)
            acc.add(rows, np.where(base < 0, -1, base + idx), weights, same_rows)

        fill.sf = fill_sf
        return fill

    def hists(self) -> dict:
        return {name: acc.finish() for name, acc in self._acc.items()}
