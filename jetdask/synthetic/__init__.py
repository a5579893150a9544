"""Synthetic PFNano generator: Drell-Yan + jets events with flavour-tagging inputs.

Writes NanoAOD-like ROOT files (TTree ``Events``, uproot, ZSTD) whose branch
names, types and jagged structure follow real PFNano: event ids, pile-up and
vertices, muons and electrons, AK4 jets with truth flavour (MC), official
DeepJet/DeepCSV scores, the DeepCSV inputs, the full PFNano DeepJet input table
(``Jet_DeepJet_*``, 603 branches), ``JetPFCands``/``PFCands``, ``JetSVs``/``SV``,
MET, triggers and filter flags. MC-like and data-like files differ by a tunable
"mismodelling" (:mod:`.conditions`); data-like files carry no truth branches.

Modules, one job each::

    zboson        Z/gamma* -> l l production and decay
    leptons       reconstructed prompt / non-prompt / fake muons and electrons
    jets          jet multiplicity, kinematics, truth flavour, GenJets
    constituents  charged tracks (impact parameters) and neutrals per jet
    vertices      secondary vertices per jet, JetSVs and SV tables
    deepjet       the Jet_DeepJet_* slot branches
    deepcsv       the Jet_DeepCSV_* inputs
    scores        btagDeepFlav*, btagDeep*, qgl from the inputs
    jetreco       jet ID, pile-up ID, energy fractions
    pfcands       PFCands and JetPFCands tables
    event         ids, pile-up, rho, MET, triggers, flags, genWeight
    conditions    MC vs data-like settings (the mismodelling)
    schema        branch names and NanoAOD types
    batch         runs the models for one batch of events
    writer        uproot TTree writing (uint32 counters, one basket per step)
    sample        generate_file / generate_sample and the fileset

Usage::

    from jetdask.synthetic import generate_sample, generate_file
    fileset_json = generate_sample("synth", events=100_000, files=2, seed=1, mismodel=0.5)
"""
from .sample import generate_file, generate_sample

__all__ = ["generate_file", "generate_sample"]
