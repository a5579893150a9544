"""jetdask.nanoaod.uproot_speedups: the patched uproot opens files exactly as uproot does."""
from __future__ import annotations

import json
import subprocess
import sys
import types

import numpy as np
import pytest

from jetdask.nanoaod import io, uproot_speedups

# what a file's tree looks like to a reader: every branch's name, type, interpretation,
# baskets, entries; the first entries of a few branches
DESCRIBE = r"""
import json, sys
{prelude}
import uproot
out = {{}}
for path in sys.argv[1:]:
    with uproot.open(path) as f:
        t = f["Events"]
        out[path] = {{
            "classnames": {{k: v for k, v in f.classnames().items()}},
            "entries": t.num_entries,
            "clusters": [int(x) for x in t.common_entry_offsets()],
            "branches": [[b.name, b.typename, repr(b.interpretation), b.num_baskets, int(b.num_entries),
                          [int(x) for x in b.entry_offsets], b.title] for b in t.branches],
            "values": {{n: repr(t[n].array(library="np", entry_stop=5).tolist())
                       for n in [b.name for b in t.branches][::97]}},
        }}
print(json.dumps(out))
"""


def _describe(paths, patched: bool) -> dict:
    prelude = "import jetdask.nanoaod.io" if patched else ""
    code = DESCRIBE.format(prelude=prelude)
    out = subprocess.run([sys.executable, "-c", code, *map(str, paths)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_all_patches_apply_on_this_uproot():
    assert uproot_speedups.APPLIED == {"branch_names": True, "classname": True, "classname_regularize": True}


def test_patched_open_reads_what_uproot_reads(real_data, small_sample):
    """Real PFNano/NanoAOD files and a synthetic one: same branches, types, baskets, values."""
    from jetdask.fileset import load_fileset
    ds = load_fileset(small_sample)
    synthetic = ds[sorted(ds.datasets)[0]].files[0].path
    paths = [real_data / "pfnano.root", real_data / "nano_dy.root", real_data / "nano_dimuon.root", synthetic]
    plain, patched = _describe(paths, patched=False), _describe(paths, patched=True)
    assert plain == patched
    assert all(len(v["branches"]) > 100 for v in patched.values())


@pytest.mark.parametrize("data,expected", [
    (b"\x00", 0),
    (b"TBranch\x00rest", 7),
    (b"x" * 63 + b"\x00", 63),          # last byte of the first window
    (b"x" * 64 + b"\x00", 64),          # first byte after it
    (b"x" * 5000 + b"\x00" + b"y", 5000),
    (b"no terminator", -1),
    (b"", -1),
])
def test_find_terminator(data, expected):
    assert uproot_speedups.find_terminator(np.frombuffer(data, dtype=np.uint8)) == expected


def test_string_without_terminator_keeps_uproots_error():
    """A damaged buffer keeps uproot's own error (the patch falls back to it)."""
    import uproot.source.chunk as chunk_mod
    from uproot.source.cursor import Cursor
    raw = np.frombuffer(b"TBranchWithoutEnd", dtype=np.uint8)
    chunk = chunk_mod.Chunk.wrap(types.SimpleNamespace(file_path="damaged.root"), raw)
    with pytest.raises(OSError, match="(?s)no terminator.*damaged.root"):
        Cursor(0).classname(chunk, {})


def test_io_still_memoizes_branch_names():
    assert io._BATCHED is uproot_speedups.APPLIED["branch_names"]
