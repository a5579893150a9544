"""``jet_jerc.json.gz``: JEC (compound L1L2L3Res), JES uncertainties, JER, as the JME files;
plus ``JERSmear`` (as the JME ``jer_smear`` file) keyed on (run, lumi, event, jet index).

JERSmear inputs: ``JetPt, JetEta, GenPt, Rho, Run, LumiBlock, EventID, JetIndex, JER, JERSF``;
``GenPt`` < 0 (no matched GenJet) -> stochastic ``1 + N(0,1) JER sqrt(max(SF^2 - 1, 0))`` with the
normal number from ``HashPRNG`` of (Run, LumiBlock, EventID, JetIndex); else the scaling
``1 + (SF - 1)(pT - GenPt)/pT``; both floored at 0. The caller matches (GenPt = -1 when the
GenJet is missing or ``|pT - GenPt| >= 3 JER pT``).
"""
from __future__ import annotations

import numpy as np
from correctionlib import schemav2 as cs

from .. import calibration as cal
from .common import category, integer, multibinning, real, string

TAG, JR_TAG, ALGO = "Synth18_V1", "Synth18_JRV1", "AK4PFchs"


def jec_names() -> dict:
    levels = ("L1FastJet", "L2Relative", "L3Absolute", "L2L3Residual")
    return {lvl: f"{TAG}_MC_{lvl}_{ALGO}" for lvl in levels}


def compound_name() -> str:
    return f"{TAG}_MC_L1L2L3Res_{ALGO}"


def jes_names() -> dict:
    out = {"Total": f"{TAG}_MC_Total_{ALGO}"}
    out.update({s: f"{TAG}_MC_Regrouped_{s}_{ALGO}" for s in cal.JES_SOURCES})
    return out


def jer_names() -> dict:
    return {"resolution": f"{JR_TAG}_MC_PtResolution_{ALGO}", "scale_factor": f"{JR_TAG}_MC_ScaleFactor_{ALGO}",
            "smear": "JERSmear"}


def _jec_levels() -> list:
    n = jec_names()
    eta, pt, area, rho = real("JetEta"), real("JetPt"), real("JetA"), real("Rho")
    centres = 0.5 * (cal.L2_ETA_EDGES[1:] + cal.L2_ETA_EDGES[:-1])
    l2 = cs.Binning(nodetype="binning", input="JetEta", edges=[float(e) for e in cal.L2_ETA_EDGES], flow="clamp",
                    content=[cs.Formula(nodetype="formula", expression="[0]+[1]/x", parser="TFormula",
                                        variables=["JetPt"], parameters=[float(cal.l2_slope(c)), cal.L2_B])
                             for c in centres])
    return [
        cs.Correction(name=n["L1FastJet"], version=1, description="pile-up offset", inputs=[area, eta, pt, rho],
                      output=real("correction"),
                      data=cs.Formula(nodetype="formula", expression="max(0.0001,1-(x*y*[0])/z)", parser="TFormula",
                                      variables=["JetA", "Rho", "JetPt"], parameters=[cal.L1_K])),
        cs.Correction(name=n["L2Relative"], version=1, description="relative response in eta", inputs=[eta, pt],
                      output=real("correction"), data=l2),
        cs.Correction(name=n["L3Absolute"], version=1, description="absolute response (1 in MC)", inputs=[eta, pt],
                      output=real("correction"), data=1.0),
        cs.Correction(name=n["L2L3Residual"], version=1, description="residual (1 in MC)", inputs=[eta, pt],
                      output=real("correction"), data=1.0),
    ]


def _compound() -> cs.CompoundCorrection:
    return cs.CompoundCorrection(
        name=compound_name(), description="L1FastJet x L2Relative x L3Absolute x L2L3Residual",
        inputs=[real("JetA"), real("JetEta"), real("JetPt", "raw pT"), real("Rho")], output=real("correction"),
        inputs_update=["JetPt"], input_op="*", output_op="*", stack=list(jec_names().values()))


def _jes() -> list:
    pt_c = np.sqrt(cal.JES_PT_EDGES[1:] * cal.JES_PT_EDGES[:-1])
    eta_c = 0.5 * (cal.JES_ETA_EDGES[1:] + cal.JES_ETA_EDGES[:-1])
    eta, pt = np.meshgrid(eta_c, pt_c, indexing="ij")
    out = []
    for src, name in jes_names().items():
        v = cal.jes_total(eta, pt) if src == "Total" else cal.jes_source(src, eta, pt)
        out.append(cs.Correction(name=name, version=1, description=f"JES uncertainty ({src}), relative",
                                 inputs=[real("JetEta"), real("JetPt")], output=real("uncertainty"),
                                 data=multibinning(["JetEta", "JetPt"], [cal.JES_ETA_EDGES, cal.JES_PT_EDGES],
                                                   v.ravel())))
    return out


def _jer(mismodel: float) -> list:
    n = jer_names()
    res = cs.Correction(
        name=n["resolution"], version=1, description="relative jet pT resolution",
        inputs=[real("JetEta"), real("JetPt"), real("Rho")], output=real("resolution"),
        data=cs.Binning(nodetype="binning", input="JetEta", edges=[-5.2, 5.2], flow="clamp",
                        content=[cs.Formula(nodetype="formula", expression="[0]+[1]/sqrt(x)", parser="TFormula",
                                            variables=["JetPt"], parameters=[0.05, 0.9])]))
    abs_edges = cal.JER_ABSETA_EDGES
    edges = [float(-e) for e in abs_edges[::-1]] + [float(e) for e in abs_edges[1:]]
    centres = 0.5 * (np.array(edges[1:]) + np.array(edges[:-1]))
    nom = cal.jer_sf(centres, mismodel)
    unc = cal.JER_SF_UNC[cal.jer_bin(centres)]
    sf_data = category("systematic", {
        k: cs.Binning(nodetype="binning", input="JetEta", edges=edges, flow="clamp", content=[float(x) for x in v])
        for k, v in (("nom", nom), ("up", nom + unc), ("down", nom - unc))})
    sf = cs.Correction(name=n["scale_factor"], version=1, description="JER scale factor (data / MC resolution)",
                       inputs=[real("JetEta"), string("systematic", "nom, up or down")], output=real("scale_factor"),
                       data=sf_data)
    stochastic = cs.Transform(
        nodetype="transform", input="GenPt",
        rule=cs.HashPRNG(nodetype="hashprng", inputs=["Run", "LumiBlock", "EventID", "JetIndex"],
                         distribution="normal"),
        content=cs.Formula(nodetype="formula", expression="max(0.,1.+z*x*sqrt(max(y*y-1.,0.)))", parser="TFormula",
                           variables=["JER", "JERSF", "GenPt"]))
    scaling = cs.Formula(nodetype="formula", expression="max(0.,1.+(z-1.)*(x-y)/x)", parser="TFormula",
                         variables=["JetPt", "GenPt", "JERSF"])
    smear = cs.Correction(
        name=n["smear"], version=1, description="JER smearing factor, hybrid method; random numbers from HashPRNG",
        inputs=[real("JetPt"), real("JetEta"), real("GenPt", "matched GenJet pT, -1 if none"), real("Rho"),
                integer("Run"), integer("LumiBlock"), integer("EventID"),
                integer("JetIndex", "index in the event's Jet"),
                real("JER", "relative resolution"), real("JERSF", "JER scale factor")],
        output=real("smear"),
        data=cs.Binning(nodetype="binning", input="GenPt", edges=[-1.0, 0.0, 1.0e6], flow="clamp",
                        content=[stochastic, scaling]))
    return [res, sf, smear]


def build(mismodel: float) -> cs.CorrectionSet:
    return cs.CorrectionSet(schema_version=2, description="synthetic JME-format jet corrections (jetdask)",
                            corrections=_jec_levels() + _jes() + _jer(mismodel), compound_corrections=[_compound()])
