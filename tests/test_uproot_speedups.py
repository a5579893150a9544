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
    prelude = "import jetdask.nanoaod.uproot_speedups as s; s.apply()" if patched else "import jetdask.nanoaod.io"
    code = DESCRIBE.format(prelude=prelude)
    out = subprocess.run([sys.executable, "-c", code, *map(str, paths)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_all_patches_apply_on_this_uproot():
    assert uproot_speedups.apply() == {"branch_names": True, "classname": True, "classname_regularize": True}
    assert uproot_speedups.apply() == uproot_speedups.APPLIED      # once: a second call changes nothing


def test_importing_jetdask_leaves_uproot_as_it_is():
    code = ("import uproot.behaviors.TBranch as b, uproot.model as m, uproot.source.cursor as c\n"
            "before = (b._keys_deep, m.classname_regularize, c.Cursor.classname)\n"
            "import jetdask, jetdask.nanoaod.io, jetdask.engine.runner, jetdask.cli\n"
            "from jetdask.nanoaod import uproot_speedups as s\n"
            "assert (b._keys_deep, m.classname_regularize, c.Cursor.classname) == before\n"
            "assert not any(s.APPLIED.values())\n"
            "s.apply()\n"
            "assert b._keys_deep is not before[0] and all(s.APPLIED.values())\n")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.cluster
def test_a_run_s_workers_apply_them():
    """Applied on a worker by the run's plugin (and by a file's inspection), not by importing jetdask."""
    from distributed import Client, LocalCluster

    from jetdask.engine.workerside import RunPlugin
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        def applied():
            import jetdask.nanoaod.io  # noqa: F401 - imported, as a chunk task does
            from jetdask.nanoaod import uproot_speedups
            return dict(uproot_speedups.APPLIED)
        assert not any(next(iter(client.run(applied).values())).values())
        client.register_plugin(RunPlugin("jetdask-run-test", b""), name="jetdask-run-test")
        assert all(next(iter(client.run(applied).values())).values())


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


def test_io_reads_all_branches_at_once_only_with_the_memo(pfnano_path, monkeypatch):
    """One TTree.arrays call per chunk when the branch names are memoized, branch by branch otherwise:
    the same arrays either way."""
    import awkward as ak
    t = io.open_tree(pfnano_path, cache=False)
    branches = [b for b in t.keys() if b.startswith("Jet_")][:8]
    calls = []
    monkeypatch.setattr(type(t), "arrays", lambda self, *a, **k: calls.append(1) or {})
    monkeypatch.setitem(uproot_speedups.APPLIED, "branch_names", True)
    io.read_arrays(t, branches, 0, 100, pfnano_path)
    assert calls == [1]
    monkeypatch.undo()
    monkeypatch.setitem(uproot_speedups.APPLIED, "branch_names", False)
    one_by_one = io.read_arrays(t, branches, 0, 100, pfnano_path)
    monkeypatch.setitem(uproot_speedups.APPLIED, "branch_names", True)
    uproot_speedups.apply()
    at_once = io.read_arrays(t, branches, 0, 100, pfnano_path)
    assert list(at_once) == list(one_by_one) == branches
    assert all(ak.array_equal(at_once[b], one_by_one[b]) for b in branches)
