"""Fileset specs: which files belong to which dataset, with per-dataset metadata.

Accepted forms (JSON or YAML, or the same structure as a Python dict):

* coffea style: ``{"DY": {"files": {"a.root": "Events"}, "metadata": {"is_data": false}}}``
  (``files`` may also be a list of paths, or of ``{"path": ..., "tree": ...}``);
* plain lists: ``{"DY": ["a.root", "b.root"]}``;
* ``{"datasets": {...}}`` wrapping either of the above.

Replicas: one file at several places (sites, a redirector and a direct URL) is
one entry listing its URLs, tried in order: ``["root://a//f.root",
"root://b//f.root"]`` as an item of a list of files, or ``{"path": URL,
"replicas": [URL, ...], "tree": ...}``; in the coffea form the value may be
``{"tree": "Events", "replicas": [URL, ...]}`` instead of the tree name.
Directories and globs on an XRootD server (``root://host//store/dir/``,
``root://host//store/*/nano_*.root``) are kept as given here and listed once
when the run is planned.

Metadata keys jetdask itself reads: ``is_data`` (bool, default False), ``xsec``
(pb), ``lumi`` (pb^-1), ``tree`` (default ``Events``); any other key is kept for
the analysis, except one that is a near miss of a known key (``is_dta``), which is
an error suggesting the known key. Unknown keys at the other levels (beside
``datasets``, in a dataset, in a file entry) are errors naming the key and the closest
known one. The known keys of each level are the tables below (one line to extend).
Paths may be local files, ``root://`` URLs (XRootD, needs the ``xrootd`` extra) or any
fsspec URL. Relative local paths are taken relative to the directory of the fileset
file (``jetdask sample`` writes them so, and a sample directory can be moved).
"""
from __future__ import annotations

import dataclasses
import glob
import json
import os
from typing import Any, Mapping

from .errors import ConfigError
from .suggest import did_you_mean

DEFAULT_TREE = "Events"

# known keys per level of a fileset (extend here)
TOP_KEYS = {"datasets"}                                   # {"datasets": {...}} wrapper
DATASET_KEYS = {"files", "metadata", "treename", "tree"}  # {"DY": {"files": ..., "metadata": ...}}
FILE_KEYS = {"path", "tree", "replicas"}                  # {"files": [{"path": ..., "tree": ...}]}
METADATA_KEYS = {"is_data", "xsec", "lumi", "tree", "energy", "synthetic",   # read by jetdask (engine, plots);
                 "primary_dataset", "channels", "channel"}              # other keys go to the analysis


@dataclasses.dataclass(frozen=True)
class FileSpec:
    path: str
    tree: str = DEFAULT_TREE
    replicas: tuple[str, ...] = ()   # other URLs of the same file, tried after ``path``

    @property
    def urls(self) -> tuple[str, ...]:
        return (self.path,) + tuple(self.replicas)

    def to_item(self):
        """The fileset list item of this file (a plain path when it has no replicas)."""
        if not self.replicas and self.tree == DEFAULT_TREE:
            return self.path
        d = {"path": self.path, "tree": self.tree}
        if self.replicas:
            d["replicas"] = list(self.replicas)
        return d


@dataclasses.dataclass(frozen=True)
class Dataset:
    name: str
    files: tuple[FileSpec, ...]
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def is_data(self) -> bool:
        return bool(self.metadata.get("is_data", False))

    def to_dict(self) -> dict:
        """This dataset in the fileset format (coffea form unless a file has replicas)."""
        if any(f.replicas for f in self.files):
            files = [f.to_item() for f in self.files]
        else:
            files = {f.path: f.tree for f in self.files}
        return {"files": files, "metadata": dict(self.metadata)}


@dataclasses.dataclass(frozen=True)
class Fileset:
    """A validated fileset: data sets by name, each with its files and metadata (see :func:`load_fileset`)."""
    datasets: Mapping[str, Dataset]

    def __iter__(self):
        return iter(self.datasets.values())

    def __len__(self):
        return len(self.datasets)

    def __getitem__(self, name: str) -> Dataset:
        return self.datasets[name]

    @property
    def n_files(self) -> int:
        """Number of files over all data sets."""
        return sum(len(d.files) for d in self)

    def to_dict(self) -> dict:
        """The fileset in the fileset format (JSON-able)."""
        return {d.name: d.to_dict() for d in self}


def _is_url(path: str) -> bool:
    return "://" in path


def _resolve(path: str, base: str | None) -> str:
    if _is_url(path) or os.path.isabs(path) or base is None:
        return path
    return os.path.normpath(os.path.join(base, path))


def _urls(raw, key: str, base: str | None) -> tuple[str, ...]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, (list, tuple)) or not raw or not all(isinstance(u, str) and u for u in raw):
        raise ConfigError("replicas must be a list of non-empty paths or URLs", key)
    return tuple(_resolve(u, base) for u in raw)


def _parse_files(raw, key: str, tree: str, base: str | None) -> list[FileSpec]:
    out: list[FileSpec] = []
    if isinstance(raw, str):
        raw = [raw]
    if isinstance(raw, Mapping):
        items = list(raw.items())
        for i, (path, t) in enumerate(items):
            if not isinstance(path, str) or not path:
                raise ConfigError("file path must be a non-empty string", f"{key}[{i}]")
            replicas = ()
            if isinstance(t, Mapping):
                _check_keys(t, {"tree", "replicas"}, f"{key}[{path!r}]")
                if t.get("replicas"):
                    replicas = _urls(t["replicas"], f"{key}[{path!r}].replicas", base)
                t = t.get("tree")
            if t is None:
                t = tree
            if not isinstance(t, str):
                raise ConfigError(f"tree name must be a string, got {type(t).__name__}", f"{key}[{path!r}]")
            out.append(FileSpec(_resolve(path, base), t, replicas))
    elif isinstance(raw, (list, tuple)):
        for i, item in enumerate(raw):
            if isinstance(item, str):
                paths = [item]
                if not _is_url(item) and any(c in item for c in "*?["):
                    paths = sorted(glob.glob(_resolve(item, base)))
                    if not paths:
                        raise ConfigError(f"glob {item!r} matches no file", f"{key}[{i}]")
                out.extend(FileSpec(_resolve(p, base), tree) for p in paths)
            elif isinstance(item, (list, tuple)):
                urls = _urls(item, f"{key}[{i}]", base)
                out.append(FileSpec(urls[0], tree, urls[1:]))
            elif isinstance(item, Mapping) and "path" in item:
                _check_keys(item, FILE_KEYS, f"{key}[{i}]")
                replicas = _urls(item["replicas"], f"{key}[{i}].replicas", base) if item.get("replicas") else ()
                out.append(FileSpec(_resolve(str(item["path"]), base), str(item.get("tree", tree)), replicas))
            else:
                raise ConfigError("expected a path, a list of replica URLs or {path:, tree:, replicas:}",
                                  f"{key}[{i}]")
    else:
        raise ConfigError(f"expected a list or mapping of files, got {type(raw).__name__}", key)
    if not out:
        raise ConfigError("dataset has no files", key)
    return _once(out)


def _once(files: list[FileSpec]) -> list[FileSpec]:
    """One entry per path and tree (a glob and a name, or a list, that give a path twice), replicas merged.

    The same file under two *different* paths (a symlink, a copy, two redirectors) is found by
    its UUID when the run is planned, and read once too (:func:`jetdask.engine.planning.split_duplicates`)."""
    seen: dict[tuple[str, str], FileSpec] = {}
    for f in files:
        first = seen.get((f.path, f.tree))
        if first is None:
            seen[(f.path, f.tree)] = f
        else:
            extra = tuple(u for u in f.replicas if u not in first.replicas and u != first.path)
            seen[(f.path, f.tree)] = dataclasses.replace(first, replicas=first.replicas + extra)
    return list(seen.values())


def parse_fileset(raw: Any, base: str | None = None) -> Fileset:
    """Validate a fileset structure (see module docstring) into a :class:`Fileset`."""
    if isinstance(raw, Fileset):
        return raw
    if not isinstance(raw, Mapping):
        raise ConfigError(f"a fileset is a mapping of dataset name to files, got {type(raw).__name__}", "fileset")
    if "datasets" in raw and isinstance(raw["datasets"], Mapping):
        _check_keys(raw, TOP_KEYS, "fileset", what="key beside 'datasets'")
        raw = raw["datasets"]
    if not raw:
        raise ConfigError("fileset has no datasets", "fileset")
    datasets = {}
    for name, spec in raw.items():
        key = f"fileset.{name}"
        if not isinstance(name, str) or not name:
            raise ConfigError("dataset names must be non-empty strings", key)
        if isinstance(spec, Mapping):
            _check_keys(spec, DATASET_KEYS, key)
            if "files" not in spec:
                raise ConfigError("missing 'files'", key)
            metadata = spec.get("metadata") or {}
            if not isinstance(metadata, Mapping):
                raise ConfigError("metadata must be a mapping", f"{key}.metadata")
            metadata = dict(metadata)
            tree = spec.get("tree") or spec.get("treename") or metadata.get("tree", DEFAULT_TREE)
            files = _parse_files(spec["files"], f"{key}.files", tree, base)
        elif isinstance(spec, (str, list, tuple)):
            metadata = {}
            files = _parse_files(spec, f"{key}.files", DEFAULT_TREE, base)
        else:
            raise ConfigError(f"not a dataset: expected a list of files or {{files:, metadata:}}, got "
                              f"{type(spec).__name__} {spec!r}", key)
        _check_metadata(metadata, f"{key}.metadata")
        datasets[name] = Dataset(name, tuple(files), metadata)
    return Fileset(datasets)


def _check_keys(given: Mapping, known: set, key: str, what: str = "key") -> None:
    for k in given:
        if k not in known:
            raise ConfigError(f"unknown {what} {k!r}; known: {', '.join(sorted(known))}{did_you_mean(str(k), known)}",
                              f"{key}.{k}")


def _check_metadata(md: dict, key: str) -> None:
    from .suggest import close_names
    for k in md:
        if k not in METADATA_KEYS and close_names(str(k), METADATA_KEYS, cutoff=0.75):
            raise ConfigError(f"unknown metadata key {k!r}{did_you_mean(str(k), METADATA_KEYS)} (a key of the "
                              "analysis' own must not be a near miss of a jetdask key)", f"{key}.{k}")
    if "is_data" in md and not isinstance(md["is_data"], bool):
        raise ConfigError(f"is_data must be true or false, got {md['is_data']!r}", f"{key}.is_data")
    for k in ("xsec", "lumi"):
        if k in md:
            try:
                v = float(md[k])
            except (TypeError, ValueError):
                raise ConfigError(f"{k} must be a number, got {md[k]!r}", f"{key}.{k}") from None
            if not v > 0:
                raise ConfigError(f"{k} must be positive, got {v}", f"{key}.{k}")


def load_fileset(source) -> Fileset:
    """Load a fileset from a JSON/YAML path, a dict, or a :class:`Fileset`."""
    if isinstance(source, (Fileset, Mapping)):
        return parse_fileset(source)
    path = os.fspath(source)
    if not os.path.exists(path):
        raise ConfigError(f"fileset file {path!r} does not exist", "fileset")
    with open(path) as f:
        text = f.read()
    try:
        if path.endswith((".yaml", ".yml")):
            import yaml
            raw = yaml.safe_load(text)
        else:
            raw = json.loads(text)
    except Exception as err:  # noqa: BLE001 - parse errors from json/yaml, named with the file
        raise ConfigError(f"cannot parse {path}: {err}", "fileset") from None
    return parse_fileset(raw, base=os.path.dirname(os.path.abspath(path)))
