"""Compact binary encoding of a chunk's :class:`~jetdask.result.Result` (no pickle).

A blob is ``b"JDR1"`` followed by a zlib stream of::

    u32 little-endian header length | header (JSON) | raw array buffers

The header holds each histogram in its UHI form (the serialization ``hist``
itself reads and writes, :mod:`uhi.io`), counters and saved array paths; every
numpy array of the UHI form (bin contents, variances, variable edges, sparse
indices) is replaced by ``{"$array": i}`` and stored as raw little-endian
bytes, described in the header by dtype and shape. A histogram whose bins are
mostly empty is stored sparse (:func:`uhi.io.to_sparse`: indices of the
non-empty bins plus their contents), the indices in the smallest unsigned type
that holds them. Double, Int64 and Weight storages on every axis type
(Regular with flow and transforms, Variable, Integer, StrCategory,
IntCategory, Boolean, growth) round-trip bit for bit, because the UHI form
does (a negative zero in an empty bin reads back as zero); Mean storages
round-trip as UHI keeps them (mean and variance: the internal sum of squared
deltas to the last bits, and lost in bins of one entry), so their merged sums
are not exact.

Decoding returns the UHI dicts with dense numpy arrays (:func:`decode`), which
:mod:`jetdask.engine.partial` adds bin by bin without building ``Hist``
objects, or a :class:`Result` (:func:`decode_result`).
"""
from __future__ import annotations

import json
import struct
import zlib
from typing import Any

import hist
import numpy as np
import uhi.io

from ..result import Result

MAGIC = b"JDR1"
LEVEL = 1          # zlib level: 1 is within a few % of 6 on histogram data at a third of the time
SPARSE_BELOW = 0.5  # store sparse when the non-empty bins take less than this fraction of dense bytes


def encode(result: Result, level: int = LEVEL) -> bytes:
    """Binary blob of ``result``'s histograms, counters and array paths."""
    return encode_ir({k: h._to_uhi_() for k, h in result.hists.items()}, result.counters,
                     result.array_files, level)


def encode_ir(hists: dict[str, dict], counters: dict, array_files: dict, level: int = LEVEL) -> bytes:
    """Binary blob of histograms already in UHI form (see :func:`decode`)."""
    specs: list[list] = []
    buffers: list[bytes] = []

    def put(arr) -> dict:
        a = np.asarray(arr)
        if a.dtype.kind not in "biuf":
            raise TypeError(f"cannot store an array of dtype {a.dtype} in a result blob")
        a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
        specs.append([a.dtype.str, list(a.shape)])
        buffers.append(a.tobytes())
        return {"$array": len(specs) - 1}

    packed = {name: _pack(_compact(ir), put) for name, ir in hists.items()}
    header = json.dumps({"v": 1, "hists": packed, "counters": {k: _plain(v) for k, v in counters.items()},
                         "array_files": array_files, "arrays": specs}, separators=(",", ":")).encode()
    body = b"".join([struct.pack("<I", len(header)), header, *buffers])
    return MAGIC + zlib.compress(body, level)


def decode(blob: bytes) -> tuple[dict[str, dict], dict, dict]:
    """``(hists as dense UHI dicts, counters, array_files)`` of a blob."""
    if bytes(blob[:4]) != MAGIC:
        raise ValueError("not a jetdask result blob (bad magic)")
    body = zlib.decompress(blob[4:])
    (n,) = struct.unpack_from("<I", body)
    header = json.loads(body[4:4 + n])
    arrays = []
    offset = 4 + n
    for dtype, shape in header["arrays"]:
        dt = np.dtype(dtype)
        count = int(np.prod(shape, dtype=np.int64))
        arrays.append(np.frombuffer(body, dt, count, offset).reshape(shape))
        offset += count * dt.itemsize
    hists = {name: uhi.io.from_sparse(_unpack(ir, arrays)) for name, ir in header["hists"].items()}
    return hists, header["counters"], header["array_files"]


def decode_result(blob: bytes) -> Result:
    hists, counters, array_files = decode(blob)
    return Result({k: hist.Hist(ir) for k, ir in hists.items()}, counters, {}, array_files)


# -- helpers -------------------------------------------------------------------------------
def _compact(ir: dict) -> dict:
    """Drop the writer's version stamps (per blob noise) and go sparse where it saves bytes."""
    ir = dict(ir)
    info = {lib: {k: v for k, v in d.items() if k != "version"} for lib, d in ir.get("writer_info", {}).items()}
    info = {lib: d for lib, d in info.items() if d}
    if info:
        ir["writer_info"] = info
    else:
        ir.pop("writer_info", None)
    storage = ir["storage"]
    arrays = [np.asarray(v) for k, v in storage.items() if k in uhi.io.ARRAY_KEYS]
    if not ir["axes"] or not arrays or storage["type"] == "weighted_mean":
        return ir
    dense = sum(a.nbytes for a in arrays)
    nonzero = np.count_nonzero(np.any([a != 0 for a in arrays], axis=0))
    per_bin = sum(a.itemsize for a in arrays) + len(ir["axes"]) * _index_dtype(arrays[0].shape).itemsize
    if nonzero * per_bin < SPARSE_BELOW * dense:
        ir = uhi.io.to_sparse(ir)
        st = dict(ir["storage"])
        st["index"] = np.asarray(st["index"]).astype(_index_dtype(arrays[0].shape))
        ir["storage"] = st
    return ir


def _index_dtype(shape) -> np.dtype:
    top = max(shape) if len(shape) else 0
    for dt in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dt).max:
            return np.dtype(dt)
    return np.dtype(np.uint64)


def _pack(ir: dict, put) -> dict:
    """Arrays of the storage and the axes (only there: metadata may use any key) to references."""
    out = {k: _plain(v) for k, v in ir.items() if k not in ("axes", "storage")}
    out["axes"] = [{k: put(v) if k in uhi.io.ARRAY_KEYS else _plain(v) for k, v in ax.items()} for ax in ir["axes"]]
    out["storage"] = {k: put(v) if k in uhi.io.ARRAY_KEYS else v for k, v in ir["storage"].items()}
    return out


def _unpack(ir: dict, arrays: list) -> dict:
    def get(v):
        return arrays[v["$array"]] if isinstance(v, dict) else v
    ir["axes"] = [{k: get(v) if k in uhi.io.ARRAY_KEYS else v for k, v in ax.items()} for ax in ir["axes"]]
    ir["storage"] = {k: get(v) if k in uhi.io.ARRAY_KEYS else v for k, v in ir["storage"].items()}
    return ir


def _plain(v: Any) -> Any:
    """numpy scalars and arrays as JSON values (counters, metadata), recursively."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v
