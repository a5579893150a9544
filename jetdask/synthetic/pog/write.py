"""Write the synthetic correction files and ``corrections.yaml`` beside a sample's fileset."""
from __future__ import annotations

import os

from . import btag, jerc, pileup
from .common import write_cset

FILES = {"btag": "btagging.json.gz", "pileup": "puWeights.json.gz", "jerc": "jet_jerc.json.gz"}
CONFIG = "corrections.yaml"


def corrections_config(systematics: list[str] | None = None) -> dict:
    """The corrections config (``corrections.yaml`` content) naming the synthetic files."""
    from ...corrections.systematics import REGISTRY
    jes = jerc.jes_names()
    return {
        "era": "Synth18",
        "pileup": {"file": FILES["pileup"], "correction": pileup.NAME},
        "btag": {"file": FILES["btag"], "shape": "deepJet_shape", "discriminant": "btagDeepFlavB",
                 "wp_values": "deepJet_wp_values"},
        "jec": {"file": FILES["jerc"], "compound": jerc.compound_name()},
        "jes": {"file": FILES["jerc"], "sources": jes},
        "jer": {"file": FILES["jerc"], **jerc.jer_names()},
        "theory": {"scale": "LHEScaleWeight", "ps": "PSWeight"},
        "systematics": list(systematics) if systematics is not None else [s.name for s in REGISTRY],
    }


def write_corrections(out_dir: str, mismodel: float = 0.0, sf_mismodel: float | None = None) -> str:
    """Write ``btagging.json.gz``, ``puWeights.json.gz``, ``jet_jerc.json.gz`` (the truth of a
    sample made with ``mismodel``/``sf_mismodel``) and ``corrections.yaml``; return the yaml path."""
    import yaml

    strength = float(mismodel if sf_mismodel is None else sf_mismodel)
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    write_cset(os.path.join(out_dir, FILES["btag"]), btag.build(strength))
    write_cset(os.path.join(out_dir, FILES["pileup"]), pileup.build(mismodel))
    write_cset(os.path.join(out_dir, FILES["jerc"]), jerc.build(mismodel))
    path = os.path.join(out_dir, CONFIG)
    with open(path, "w") as f:
        f.write("# Corrections and systematic variations of the DY+jets study (written by jetdask sample).\n"
                "# File paths are relative to this file; see docs/tutorials/corrections.md for official POG files.\n")
        f.write(f"# synthetic truth: mismodel {float(mismodel):g}, sf_mismodel {strength:g}\n")
        yaml.safe_dump(corrections_config(), f, sort_keys=False, default_flow_style=False)
    return path
