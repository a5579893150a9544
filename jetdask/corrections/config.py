"""The corrections config (``corrections.yaml``): which files, which corrections, which variations.

Every block is optional; a block that is absent (or switched off with ``disable``) is not
applied, and the systematics that need it may not be asked for::

    era: Synth18
    pileup: {file: puWeights.json.gz, correction: Collisions18_UltraLegacy_goldenJSON}
    btag:   {file: btagging.json.gz, shape: deepJet_shape, discriminant: btagDeepFlavB}
    jec:    {file: jet_jerc.json.gz, compound: Synth18_V1_MC_L1L2L3Res_AK4PFchs}
    jes:    {file: jet_jerc.json.gz, sources: {Total: ..._Total_AK4PFchs, Absolute: ..., ...}}
    jer:    {file: jet_jerc.json.gz, resolution: ..., scale_factor: ..., smear: JERSmear}
    theory: {scale: LHEScaleWeight, ps: PSWeight}
    systematics: [pileup, btag_hf, ..., jer]      # registry names or groups; "all"; [] = nominal only

File paths are relative to the YAML file (or absolute, or ``root://`` URLs). Loading resolves
them, hashes each file once (:class:`~jetdask.corrections.loader.FileRef`) and checks that every
named correction exists, on the client, before any chunk runs.
"""
from __future__ import annotations

import dataclasses
import os

from ..errors import ConfigError
from . import systematics as reg
from .loader import FileRef, load, ref_for

BLOCKS = {  # block -> (keys naming corrections in the file, other allowed keys)
    "pileup": (("correction",), ()),
    "btag": (("shape",), ("discriminant", "wp_values")),
    "jec": (("compound",), ()),
    "jes": ((), ("sources",)),
    "jer": (("resolution", "scale_factor", "smear"), ()),
    "theory": ((), ("scale", "ps")),
}
TOP_KEYS = ("era", "systematics", *BLOCKS)


def needs(source: reg.Source) -> tuple[str, str | None]:
    """(block, key inside it) that a registry source needs."""
    if source.group == "pileup":
        return "pileup", None
    if source.group == "btag":
        return "btag", None
    if source.name in ("muR", "muF", "muRmuF"):
        return "theory", "scale"
    if source.name in ("isr", "fsr"):
        return "theory", "ps"
    if source.group == "jes":
        return "jes", source.name[3:]
    return "jer", None


@dataclasses.dataclass(frozen=True)
class CorrectionsConfig:
    """A resolved corrections config: blocks with :class:`FileRef` files, and the sources."""
    source: str
    era: str
    blocks: dict
    sources: tuple

    def has(self, block: str) -> bool:
        """Whether the correction ``block`` (``pileup``, ``btag``, ``jec``, ...) is enabled."""
        return block in self.blocks

    @property
    def syst_names(self) -> list[str]:
        """The ``syst`` axis of this configuration, nominal first, in the registry's order."""
        return reg.syst_names(self.sources)

    def provenance(self) -> dict:
        """What metadata.json and the ledger record: the config, every file's sha256, names, versions."""
        files = {}
        for name, block in self.blocks.items():
            ref = block.get("file")
            if ref is None:
                continue
            entry = files.setdefault(ref.path, {"path": ref.path, "sha256": ref.sha256, "blocks": [],
                                                "corrections": load(ref).corrections()})
            entry["blocks"].append(name)
        return {"config": self.source, "era": self.era, "systematics": [s.name for s in self.sources],
                "files": list(files.values())}


def load_config(path: str, disable=(), systematics=None) -> CorrectionsConfig:
    """Read and check ``path``; ``disable``: block names to switch off; ``systematics``: overrides
    the file's list (registry names or groups). Raises :class:`ConfigError` naming the key."""
    import yaml

    try:
        with open(path) as f:
            raw = yaml.safe_load(f) or {}
    except OSError as err:
        raise ConfigError(f"cannot read corrections config {path}: {err}", "corrections") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})", "corrections") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of blocks", "corrections")
    for k in raw:
        if k not in TOP_KEYS:
            raise ConfigError(f"{path}: unknown key {k!r}; known: {', '.join(TOP_KEYS)}", f"corrections.{k}")
    for d in disable:
        if d not in BLOCKS:
            raise ConfigError(f"cannot disable {d!r}; blocks: {', '.join(BLOCKS)}", "disable")
    base = os.path.dirname(os.path.abspath(path))
    blocks = {name: _block(path, base, name, raw[name]) for name in BLOCKS
              if raw.get(name) is not None and name not in disable}
    wanted = raw.get("systematics", "all") if systematics is None else systematics
    try:
        sources = reg.select(wanted if wanted is not None else [])
    except KeyError as err:
        raise ConfigError(f"{path}: {err.args[0]}", "corrections.systematics") from None
    kept = []
    for s in sources:
        block, key = needs(s)
        have = block in blocks and (key is None or key in (blocks[block].get("sources") or blocks[block]))
        if not have:
            if systematics is None and wanted == "all" or block in disable:
                continue          # "all" means all that the config can give; a disabled block drops its own
            raise ConfigError(f"{path}: systematic {s.name!r} needs {block}{'.' + key if key else ''} in the config",
                              "corrections.systematics")
        kept.append(s)
    return CorrectionsConfig(os.path.abspath(path), str(raw.get("era", "")), blocks, tuple(kept))


def _block(path: str, base: str, name: str, given) -> dict:
    key = f"corrections.{name}"
    if not isinstance(given, dict):
        raise ConfigError(f"{path}: {name} must be a mapping", key)
    names, others = BLOCKS[name]
    allowed = set(names) | set(others) | ({"file"} if name != "theory" else set())
    for k in given:
        if k not in allowed:
            raise ConfigError(f"{path}: unknown key {k!r} in {name}; known: {', '.join(sorted(allowed))}", f"{key}.{k}")
    out = dict(given)
    if name == "theory":
        return out
    if "file" not in given:
        raise ConfigError(f"{path}: {name} needs a file", f"{key}.file")
    f = str(given["file"])
    if "://" not in f and not os.path.isabs(f):
        f = os.path.join(base, f)
    if "://" not in f and not os.path.exists(f):
        raise ConfigError(f"{path}: {name}.file {given['file']!r} not found ({f})", f"{key}.file")
    ref = ref_for(f)
    out["file"] = ref
    cset = load(ref).cset
    known = set(cset) | set(cset.compound)
    wanted = [given[k] for k in names if k in given]
    if name == "jes":
        wanted = list((given.get("sources") or {}).values())
    for k in names:
        if k not in given:
            raise ConfigError(f"{path}: {name} needs {k!r} (a correction name in {f})", f"{key}.{k}")
    for corr in wanted:
        if corr not in known:
            raise ConfigError(f"{path}: {name}: no correction {corr!r} in {f}; it has: {', '.join(sorted(known))}", key)
    return out


def _ref_to_dict(v):
    return {"path": v.path, "sha256": v.sha256} if isinstance(v, FileRef) else v
