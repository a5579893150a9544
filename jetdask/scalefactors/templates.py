"""Per-flavour templates of each discriminant with every variation, written to ROOT (uproot),
for users who fit with external tools (combine, pyhf via its ROOT reader, ...).

Layout (one TH1D per entry, flow bins kept: the underflow holds the ``-1`` of jets without
a defined score)::

    <channel>/<discriminant>/data_obs
    <channel>/<discriminant>/<flavour>                 b, c, light (MC, normalised as the figures)
    <channel>/<discriminant>/<flavour>_<source>Up      every source of the run's syst axis
    <channel>/<discriminant>/<flavour>_<source>Down

``<channel>``: each channel of the run and ``all`` (summed); ``<discriminant>``: the ``sf_*``
histogram name without ``sf_`` (``DeepJet_B``, ``nominal_BvsL``). Envelope sources (the
muR/muF scale variations) are written as one template pair, ``<envelope>Up``/``Down``, the
bin-by-bin maximum and minimum of their members; a one-sided source gets its ``Down`` mirrored
(``2 x nominal - Up``), as fits expect both sides.
"""
from __future__ import annotations

import hist
import numpy as np

from .inputs import LIGHT, PREFIX, region_names
from .registry import sources_for
from .sources import NOMINAL

FLAVOURS = ("b", "c", LIGHT)


def _project(h, channel: str, flavour: str | None, syst: str | None):
    sel = {}
    if "syst" in h.axes.name and syst is not None:
        sel["syst"] = syst
    if "channel" in h.axes.name and channel != "all":
        sel["channel"] = channel
    if flavour is not None:
        sel["flavour"] = flavour
    return (h[sel] if sel else h).project("discriminant")


def _empty_like(h):
    ax = h.axes["discriminant"]
    return hist.Hist(ax, storage=hist.storage.Weight())


def _with(h, values, variances):
    out = h.copy()
    view = out.view(flow=True)
    view["value"], view["variance"] = values, variances
    return out


def templates(out, norm_info, scales: dict | None, channel: str = "all") -> dict:
    """``{path: 1D hist}`` of every ``sf_*`` histogram of a RunOutput (see the module doc)."""
    result = {}
    for name in region_names(out.hists):
        disc = name[len(PREFIX):]
        parts = {(ds, info["is_data"]): hs[name] for ds, info in norm_info.datasets.items()
                 if (hs := out.hists.get(ds, {})) and name in hs}
        if not parts:
            continue
        ref = next(iter(parts.values()))
        chans = [str(c) for c in ref.axes["channel"]] if "channel" in ref.axes.name else []
        chans = (["all"] + chans) if channel == "all" else [channel]
        systs = [str(c) for c in ref.axes["syst"]] if "syst" in ref.axes.name else [NOMINAL]
        srcs = sources_for(systs)
        for ch in chans:
            base = f"{ch}/{disc}"
            data = None
            mc: dict = {}
            for (ds, is_data), h in parts.items():
                if is_data:
                    d = _project(h, ch, None, NOMINAL if NOMINAL in systs else None)
                    data = d if data is None else data + d
                    continue
                for fl in FLAVOURS:
                    if fl not in [str(c) for c in h.axes["flavour"]]:
                        continue
                    for s in systs:
                        k = (scales or {}).get(ds, {}).get(s, norm_info.datasets[ds].get("scale") or 1.0)
                        p = _project(h, ch, fl, s) * float(k)
                        mc[(fl, s)] = p if (fl, s) not in mc else mc[(fl, s)] + p
            if data is not None:
                result[f"{base}/data_obs"] = data
            for fl in FLAVOURS:
                nom = mc.get((fl, NOMINAL))
                if nom is None:
                    continue
                result[f"{base}/{fl}"] = nom
                for src in srcs:
                    members = [mc[(fl, m)] for m in src.members if (fl, m) in mc]
                    if not members:
                        continue
                    for side, h in _sides(src, members, nom).items():
                        result[f"{base}/{fl}_{src.name}{side}"] = h
    return result


def _sides(src, members, nom) -> dict:
    if src.combine == "envelope" or len(members) > 2:
        vals = np.stack([m.view(flow=True)["value"] for m in members])
        var = np.stack([m.view(flow=True)["variance"] for m in members])
        hi, lo = vals.argmax(0), vals.argmin(0)
        pick = np.arange(vals.shape[1])
        return {"Up": _with(nom, vals[hi, pick], var[hi, pick]), "Down": _with(nom, vals[lo, pick], var[lo, pick])}
    up = next((m for n, m in zip(src.members, members) if n.lower().endswith("up")), members[0])
    downs = [m for n, m in zip(src.members, members) if n.lower().endswith("down")]
    if downs:
        return {"Up": up, "Down": downs[0]}
    nv = nom.view(flow=True)
    uv = up.view(flow=True)
    return {"Up": up, "Down": _with(nom, 2 * nv["value"] - uv["value"], uv["variance"])}


def write_templates(run, path: str, channel: str = "all", metadata: dict | None = None) -> int:
    """Write the templates of a run (directory or RunOutput) to ROOT file ``path``; the count."""
    import uproot

    from ..plotting.normalisation import normalisation
    from ..plotting.run import load_run
    from .derive import _variation_scales

    out, md, _ = load_run(run, metadata)
    norm_info = normalisation(out, md)
    hs = templates(out, norm_info, _variation_scales(out, md), channel)
    with uproot.recreate(path) as f:
        for key, h in hs.items():
            f[key] = h
    return len(hs)

