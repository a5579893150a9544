"""Fixed-working-point event weights, method "1a": how an analysis applies the SFs of a WP.

For one working point each MC jet contributes ``SF`` when tagged and ``(1 - SF eps) / (1 - eps)``
when not; the event weight is the product over its jets. With several working points the jets
fall in exclusive bins, ``k`` = the number of (ascending) cuts passed, and a jet contributes

    (SF_k eps_k - SF_k+1 eps_k+1) / (eps_k - eps_k+1)      with eps_0 = SF_0 = 1, eps_n+1 = 0

(one WP: the two expressions above). ``eps``: the MC efficiency of the jet's flavour, pT and
|eta| in the analysed dataset (:mod:`jetdask.scalefactors.efficiency`); ``SF``: light jets from
a ``*_incl`` correction (e.g. the one ``jetdask sf`` writes), b and c jets from a
``*_comb``/``*_mujets`` one (both inputs ``(systematic, working_point, flavor, abseta, pt)``);
without a heavy-flavour correction b and c jets have SF 1.

Variations: the light and the heavy-flavour SFs are varied separately (they come from
different measurements): ``light_up``/``light_down`` (total), ``light_up_correlated`` ...
``light_down_uncorrelated``, and the same with ``bc_``; every other jet keeps its central SF.
"""
from __future__ import annotations

import awkward as ak
import numpy as np

LIGHT_CODES = (0,)
HEAVY_CODES = (4, 5)
SYSTEMATICS = ("up", "down", "up_correlated", "down_correlated", "up_uncorrelated", "down_uncorrelated")


class Method1a:
    """Event weights from efficiencies and SFs (correctionlib ``Correction`` objects).

    ``cuts``: ``{wp: cut}`` of the working points used (one or several); ``eff``: inputs
    ``(working_point, flavor, abseta, pt)``.
    """

    def __init__(self, cuts: dict, eff, sf_light, sf_heavy=None):
        if not cuts:
            raise ValueError("at least one working point is needed")
        self.wps = sorted(cuts, key=lambda w: cuts[w])
        self.cuts = [float(cuts[w]) for w in self.wps]
        self.eff, self.sf_light, self.sf_heavy = eff, sf_light, sf_heavy

    # -- per jet --------------------------------------------------------------------------------
    def category(self, disc) -> np.ndarray:
        """Number of cuts each jet passes (0: below the loosest)."""
        d = np.asarray(disc, float)
        return np.sum(np.stack([d >= c for c in self.cuts]), axis=0) if len(d) else np.zeros(0, int)

    def _sf(self, wp, flav, abseta, pt, light_syst, heavy_syst) -> np.ndarray:
        out = np.ones(len(flav))
        light = np.isin(flav, LIGHT_CODES)
        if light.any():
            out[light] = self.sf_light.evaluate(light_syst, wp, flav[light], abseta[light], pt[light])
        heavy = np.isin(flav, HEAVY_CODES)
        if heavy.any() and self.sf_heavy is not None:
            out[heavy] = self.sf_heavy.evaluate(heavy_syst, wp, flav[heavy], abseta[heavy], pt[heavy])
        return out

    def jet_factors(self, flavour, pt, abseta, disc, light_syst: str = "central",
                    heavy_syst: str = "central") -> np.ndarray:
        """The factor of each jet (flat arrays; ``flavour`` = hadronFlavour)."""
        flav = np.asarray(flavour, dtype=np.int64)
        pt, abseta = np.asarray(pt, float), np.abs(np.asarray(abseta, float))
        n = len(flav)
        eps = [np.ones(n)]
        sfe = [np.ones(n)]
        for wp in self.wps:
            e = np.asarray(self.eff.evaluate(wp, flav, abseta, pt), float)
            eps.append(e)
            sfe.append(self._sf(wp, flav, abseta, pt, light_syst, heavy_syst) * e)
        eps.append(np.zeros(n))
        sfe.append(np.zeros(n))
        eps, sfe = np.stack(eps), np.stack(sfe)
        k = self.category(disc)
        idx = np.arange(n)
        return (sfe[k, idx] - sfe[k + 1, idx]) / (eps[k, idx] - eps[k + 1, idx])

    # -- per event ------------------------------------------------------------------------------
    def event_weights(self, counts, flavour, pt, abseta, disc, variations: bool = True,
                      systematics=SYSTEMATICS) -> dict:
        """``{"nominal": w, "light_up": w, ...}`` per event; ``counts``: jets per event, the other
        arrays flat (jets of event 0 first); ``systematics``: the SF files' variations to use."""
        counts = np.asarray(counts, dtype=np.int64)

        def product(f):
            return np.asarray(ak.prod(ak.unflatten(f, counts), axis=1))

        out = {"nominal": product(self.jet_factors(flavour, pt, abseta, disc))}
        if not variations:
            return out
        for s in systematics:
            out[f"light_{s}"] = product(self.jet_factors(flavour, pt, abseta, disc, light_syst=s))
            if self.sf_heavy is not None:
                out[f"bc_{s}"] = product(self.jet_factors(flavour, pt, abseta, disc, heavy_syst=s))
        return out

    def weights_of(self, jets, discriminant: str, variations: bool = True, systematics=SYSTEMATICS) -> dict:
        """:meth:`event_weights` of an awkward array of jets (fields ``hadronFlavour``, ``pt``,
        ``eta`` and ``discriminant``)."""
        counts = ak.num(jets, axis=1)
        flat = {f: np.asarray(ak.flatten(jets[f])) for f in ("hadronFlavour", "pt", "eta", discriminant)}
        return self.event_weights(counts, flat["hadronFlavour"], flat["pt"], np.abs(flat["eta"]), flat[discriminant],
                                  variations, systematics)
