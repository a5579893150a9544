"""Helpers shared by the synthetic POG-file builders: variables, validation, gzip writing."""
from __future__ import annotations

import gzip
import os

from correctionlib import schemav2 as cs


def real(name: str, description: str | None = None) -> cs.Variable:
    return cs.Variable(name=name, type="real", description=description)


def integer(name: str, description: str | None = None) -> cs.Variable:
    return cs.Variable(name=name, type="int", description=description)


def string(name: str, description: str | None = None) -> cs.Variable:
    return cs.Variable(name=name, type="string", description=description)


def multibinning(inputs: list[str], edges: list, content: list, flow="clamp") -> cs.MultiBinning:
    return cs.MultiBinning(nodetype="multibinning", inputs=inputs, edges=[[float(e) for e in x] for x in edges],
                           content=[float(c) for c in content], flow=flow)


def category(input_name: str, items: dict, default=None) -> cs.Category:
    return cs.Category(nodetype="category", input=input_name,
                       content=[cs.CategoryItem(key=k, value=v) for k, v in items.items()], default=default)


def write_cset(path: str, cset: cs.CorrectionSet) -> str:
    """Validate ``cset`` (schema v2 and correctionlib's loader) and write it gzipped, reproducibly."""
    import correctionlib

    text = cset.model_dump_json(exclude_unset=True)
    cs.CorrectionSet.model_validate_json(text)            # the schema's own validation
    correctionlib.CorrectionSet.from_string(text)         # and the C++ loader
    from ...atomicwrite import atomic_path
    with atomic_path(path) as tmp, open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(text.encode())
    return os.fspath(path)
