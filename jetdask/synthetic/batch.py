"""One batch of synthetic events: runs every model and assembles the NanoAOD tables.

Order of the simulation (each step a module of this package):

1. event ids, pile-up, primary vertices (:mod:`.event`);
2. Z/gamma* -> l l at generator level (:mod:`.zboson`) and the reconstructed
   prompt leptons (:mod:`.leptons`);
3. jets with truth flavour, including lepton and pile-up jets (:mod:`.jets`);
4. jet constituents with track impact parameters (:mod:`.constituents`) and
   secondary vertices (:mod:`.vertices`);
5. leptons inside jets and fakes, Muon/Electron tables and the jet <-> lepton
   cross references (:mod:`.leptons`);
6. DeepJet and DeepCSV inputs (:mod:`.deepjet`, :mod:`.deepcsv`), official
   scores (:mod:`.scores`), jet IDs and composition (:mod:`.jetreco`);
7. PFCands/JetPFCands (:mod:`.pfcands`), JetSVs/SV, MET, triggers, flags, weights;
8. what the corrections need (:mod:`.calibration`): ``Jet_rawFactor`` consistent with the
   synthetic JEC, the data-like JER smearing, ``LHEScaleWeight``/``PSWeight`` (MC). These draw
   from their own generator ``aux`` so that the other branches keep their random path.

A :class:`Batch` holds per-event scalar arrays and jagged collections as
``(counts, {field: flat array})`` with NanoAOD dtypes; the writer turns it into
TTree baskets. Truth is simulated for every batch (so MC-like and data-like
batches follow the same random path) and the generator/truth fields listed
in :mod:`.schema` are dropped from data-like batches.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import (
    calibration,
    constituents,
    deepcsv,
    deepjet,
    event,
    jagged,
    jetreco,
    leptons,
    pfcands,
    schema,
    scores,
    vertices,
    zboson,
)
from . import jets as jetmod
from .conditions import Conditions


@dataclass
class Batch:
    """Synthetic events in columnar form, ready to be written."""

    n_events: int
    scalars: dict = field(default_factory=dict)
    collections: dict = field(default_factory=dict)
    extras: dict = field(default_factory=dict)     # per-jet/per-event truth that is not written


def select_events(b: Batch, keep: np.ndarray) -> Batch:
    """The events of ``b`` where ``keep`` (bool per event), in order; ``extras`` follow."""
    keep = np.asarray(keep, dtype=bool)
    out = Batch(n_events=int(keep.sum()))
    out.scalars = {k: v[keep] for k, v in b.scalars.items()}
    for name, (counts, fields) in b.collections.items():
        item = np.repeat(keep, counts)
        out.collections[name] = (counts[keep], {k: v[item] for k, v in fields.items()})
    jet_counts = b.collections["Jet"][0]
    jet_keep = np.repeat(keep, jet_counts)
    out.extras = {k: (v[jet_keep] if k.startswith("jet_") else v[keep]) for k, v in b.extras.items()}
    return out


def _lepton_fields(fields: dict) -> dict:
    return {k: v for k, v in fields.items() if not k.startswith("_")}


def concat(a: Batch | None, b: Batch) -> Batch:
    """The events of ``a`` followed by those of ``b`` (same layout)."""
    if a is None or a.n_events == 0:
        return b
    out = Batch(n_events=a.n_events + b.n_events)
    out.scalars = {k: np.concatenate([v, b.scalars[k]]) for k, v in a.scalars.items()}
    out.collections = {name: (np.concatenate([c, b.collections[name][0]]),
                              {k: np.concatenate([v, b.collections[name][1][k]]) for k, v in f.items()})
                       for name, (c, f) in a.collections.items()}
    out.extras = {k: np.concatenate([v, b.extras[k]]) for k, v in a.extras.items() if k in b.extras}
    return out


def split(b: Batch, n: int) -> tuple[Batch, Batch]:
    """(the first ``n`` events of ``b``, the rest)."""
    first = np.zeros(b.n_events, dtype=bool)
    first[:n] = True
    return select_events(b, first), select_events(b, ~first)


def simulate(rng: np.random.Generator, n_events: int, first_event: int, cond: Conditions,
             aux: np.random.Generator | None = None) -> Batch:
    """Generate ``n_events`` events starting at event number ``first_event``.

    ``aux``: the generator of the calibration quantities (default: seeded from ``first_event``).
    """
    n = n_events
    if aux is None:
        aux = np.random.default_rng(np.random.SeedSequence([first_event, 0xCA1]))
    ids = event.ids(n, first_event, cond.is_data)
    pu = event.pileup(rng, n, cond.pileup)

    z = zboson.generate(rng, n)
    prompt = leptons.prompt_candidates(rng, z)
    smear = None
    if cond.is_data and cond.mismodel > 0:
        def smear(pt, eta):
            return calibration.data_smear(aux, pt, eta, cond.mismodel)
    jet_counts, jets = jetmod.generate(rng, z, prompt, pu["Pileup_nPU"], cond.charm_fraction, smear)
    nj = len(jets["pt"])

    decay, n_ch, n_ne, n_disp, charged, neutral = constituents.generate(rng, jets, cond.ip_smear)
    svs = vertices.generate(rng, jets, decay, n_ch, n_disp, cond.sv_efficiency, cond.sv_smear)
    for table in (charged, neutral):
        table["drminsv"] = vertices.min_dr_to_sv(table["jet"], table["deta"], table["dphi"], svs, nj)

    cands = leptons.concat(prompt, leptons.nonprompt_candidates(rng, jets), leptons.fake_candidates(rng, n))
    lep = leptons.build_collections(rng, cands, n, pu["Pileup_nPU"])
    mu_counts, mu = lep["Muon"]
    el_counts, el = lep["Electron"]
    mu1, mu2, n_mu = leptons.jet_references(jet_counts, mu["_event"], mu["jetIdx"], mu["_local"])
    el1, el2, n_el = leptons.jet_references(jet_counts, el["_event"], el["jetIdx"], el["_local"])
    _, _, n_soft_mu = leptons.jet_references(jet_counts, mu["_event"], np.where(mu["_origin"] > 1, mu["jetIdx"], -1),
                                             mu["_local"])
    _, _, n_soft_el = leptons.jet_references(jet_counts, el["_event"], np.where(el["_origin"] > 1, el["jetIdx"], -1),
                                             el["_local"])

    dj = deepjet.build(rng, charged, neutral, svs, n_ch, n_ne, pu["PV_npvsGood"][jets["event"]])
    csv = deepcsv.build(rng, jets, charged, svs, n_ch)
    n_const = n_ch + n_ne
    jet_fields = {"pt": jets["pt"], "eta": jets["eta"], "phi": jets["phi"], "mass": jets["mass"]}
    jet_fields.update(jetreco.build(rng, jets, charged, neutral, n_ch, n_ne))
    rho = pu["fixedGridRhoFastjetAll"][jets["event"]]
    jet_fields["rawFactor"] = calibration.raw_factor(jets["pt"], jets["eta"], jet_fields["area"], rho)
    jet_fields.update(muonIdx1=mu1, muonIdx2=mu2, electronIdx1=el1, electronIdx2=el2, nMuons=n_mu, nElectrons=n_el)
    jet_fields.update(scores.deepjet(rng, dj, jets, n_const, (n_soft_mu + n_soft_el) > 0))
    jet_fields.update(scores.deepcsv(rng, csv))
    jet_fields["qgl"] = scores.qgl(rng, jets, n_const)
    jet_fields.update(csv)
    jet_fields.update(dj)

    g_counts, g_fields, gen_idx = jetmod.gen_jets(rng, jet_counts, jets)
    jet_fields.update(hadronFlavour=jets["hadron_flavour"], partonFlavour=jets["parton_flavour"],
                      nBHadrons=jets["n_b"], nCHadrons=jets["n_c"], genJetIdx=gen_idx, FlavSplit=jets["flav_split"])
    collections = {"Jet": (jet_counts, jet_fields), "Muon": (mu_counts, _lepton_fields(mu)),
                   "Electron": (el_counts, _lepton_fields(el))}
    pf, jpf = pfcands.build(charged, neutral, jets["event"], jets["local"], n)
    collections["JetPFCands"] = jpf
    collections["PFCands"] = pf
    jsv, sv = vertices.collections(svs, jet_counts, jets["event"], jets["local"], pu)
    collections["JetSVs"] = jsv
    collections["SV"] = sv
    collections["GenJet"] = (g_counts, g_fields)
    hard = (jets["source"] == jetmod.HADRONIC) & (jets["pt"] > 30.0)
    scale_w, ps_w = calibration.theory_weights(aux, z["pt"], np.bincount(jets["event"][hard], minlength=n))
    collections["LHEScaleWeight"] = (np.full(n, scale_w.shape[1]), {"": scale_w.ravel()})
    collections["PSWeight"] = (np.full(n, ps_w.shape[1]), {"": ps_w.ravel()})

    sum_et = (jagged.segment_sum(jets["event"], jets["pt"], n) + jagged.segment_sum(mu["_event"], mu["pt"], n)
              + jagged.segment_sum(el["_event"], el["pt"], n) + 5.0 * pu["fixedGridRhoFastjetAll"] + 20.0)
    scalars = dict(ids)
    scalars.update(pu)
    scalars.update(event.met(rng, n, sum_et))
    scalars.update(event.triggers(rng, n, (mu_counts, mu), (el_counts, el)))
    scalars.update(event.flags(rng, n))
    scalars["genWeight"] = event.gen_weight(rng, n)

    if cond.is_data:
        collections, scalars = schema.strip_truth(collections, scalars)
    b = Batch(n_events=n)
    b.collections = {name: (np.asarray(c, np.int64), schema.cast(name, f)) for name, (c, f) in collections.items()}
    b.scalars = schema.cast("event", scalars)
    b.extras = {"jet_is_lepton": jets["source"] == jetmod.LEPTON, "jet_hadron_flavour": jets["hadron_flavour"],
                "z_pt": z["pt"]}
    return b
