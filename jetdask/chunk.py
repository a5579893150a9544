"""The unit of work: a half-open entry range ``[entry_start, entry_stop)`` of one tree.

A :class:`Chunk` is an immutable value. Its :attr:`Chunk.id` is a hash of the
dataset name, the file's UUID, the tree name and the entry range, so it is
stable across runs and machines and does not change when the same file is read
through another URL (a redirector or a mirror). The URL, the other URLs of the
same file (``replicas``, tried in order when ``path`` fails) and the dataset
metadata travel with the chunk but are not part of its identity.
"""
from __future__ import annotations

import dataclasses
import hashlib
from typing import Any, Mapping


@dataclasses.dataclass(frozen=True)
class Chunk:
    """A half-open entry range ``[entry_start, entry_stop)`` of one file's tree, in a data set.

    The file is named by its path (and replicas) for reading and by its UUID for identity, so
    :attr:`id` does not change with the URL a file is read from.
    """
    dataset: str
    path: str = dataclasses.field(compare=False)
    tree: str
    entry_start: int
    entry_stop: int
    file_uuid: str
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict, compare=False, hash=False, repr=False)
    replicas: tuple[str, ...] = dataclasses.field(default=(), compare=False, hash=False, repr=False)

    def __post_init__(self):
        if not (0 <= self.entry_start < self.entry_stop):
            raise ValueError(f"invalid entry range [{self.entry_start}, {self.entry_stop}) for {self.path}")

    @property
    def id(self) -> str:
        """Stable id: a hash of data set, file UUID, tree and entry range."""
        key = f"{self.dataset}\0{self.file_uuid}\0{self.tree}\0{self.entry_start}\0{self.entry_stop}"
        return hashlib.sha1(key.encode()).hexdigest()[:16]

    @property
    def urls(self) -> tuple[str, ...]:
        """Every URL of the file, in the order they are tried."""
        return (self.path,) + tuple(self.replicas)

    @property
    def num_entries(self) -> int:
        """Number of events (entries) in the chunk."""
        return self.entry_stop - self.entry_start

    @property
    def where(self) -> str:
        """Human-readable location used in every error message."""
        return f"{self.dataset}: {self.path} [{self.entry_start}, {self.entry_stop})"

    def split(self, parts: int = 2) -> list["Chunk"]:
        """Split into ``parts`` contiguous chunks of (almost) equal size."""
        n = self.num_entries
        parts = max(1, min(parts, n))
        edges = [self.entry_start + (n * i) // parts for i in range(parts + 1)]
        return [dataclasses.replace(self, entry_start=a, entry_stop=b) for a, b in zip(edges[:-1], edges[1:])]

    def to_dict(self) -> dict:
        """The chunk as plain JSON-able values (as the ledger stores it)."""
        d = {"id": self.id, "dataset": self.dataset, "path": self.path, "tree": self.tree,
             "entry_start": self.entry_start, "entry_stop": self.entry_stop, "file_uuid": self.file_uuid}
        if self.replicas:
            d["replicas"] = list(self.replicas)
        return d

    @classmethod
    def from_dict(cls, d: Mapping, metadata: Mapping | None = None) -> "Chunk":
        """The chunk that :meth:`to_dict` wrote, with the data set's ``metadata``."""
        return cls(d["dataset"], d["path"], d["tree"], int(d["entry_start"]), int(d["entry_stop"]),
                   d["file_uuid"], dict(metadata or {}), tuple(d.get("replicas") or ()))
