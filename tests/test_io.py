"""jetdask.nanoaod.io: chunk reads equal uproot's own, on real and synthetic files."""
from __future__ import annotations

import awkward as ak
import pytest
import uproot

from jetdask.errors import FileAccessError
from jetdask.fileset import load_fileset
from jetdask.nanoaod import io


def _branch_by_branch(path, branches, start, stop):
    with uproot.open(path, array_cache=None) as f:
        t = f["Events"]
        return {b: t[b].array(entry_start=start, entry_stop=stop, library="ak") for b in branches}


def _check_equal(path, branches, ranges):
    tree = io.open_tree(path, cache=False)
    try:
        for start, stop in ranges:
            got = io.read_arrays(tree, branches, start, stop, path)
            want = _branch_by_branch(path, branches, start, stop)
            assert list(got) == list(branches)
            for b in branches:
                assert ak.to_list(got[b]) == ak.to_list(want[b]), (b, start, stop)
                assert got[b].type == want[b].type, b
    finally:
        io._close(tree)


@pytest.mark.parametrize("name", ["pfnano.root", "nano_dy.root", "nano_dimuon.root"])
def test_read_arrays_equals_uproot_on_real_files(name, real_data):
    path = str(real_data / name)
    with uproot.open(path) as f:
        t = f["Events"]
        n = t.num_entries
        keys = t.keys()
    # a mix of jagged, flat, boolean and integer branches, including the DeepJet inputs of PFNano
    wanted = [k for k in keys if k.startswith(("Jet_pt", "Jet_eta", "Muon_pt", "nJet", "HLT_IsoMu24", "run",
                                               "event", "Jet_DeepJet_Cpfcan_BtagPf_trackSip2dSig_0",
                                               "Jet_FlavSplit", "PFCands_pt"))]
    assert len(wanted) >= 4
    _check_equal(path, wanted, [(0, n), (1, n - 1), (n // 2, n // 2 + 1)])


def test_read_arrays_equals_uproot_on_synthetic_chunks(small_sample):
    ds = load_fileset(small_sample)
    f = ds[sorted(ds.datasets)[0]].files[0]
    with uproot.open(f.path) as fh:
        keys = fh["Events"].keys()
    wanted = [k for k in keys if k.startswith(("Jet_", "Muon_pt", "nMuon"))][:40]
    # chunks inside one basket, across a basket edge, and the whole file
    _check_equal(f.path, wanted, [(0, 200), (900, 1300), (0, 3000), (2999, 3000)])


def test_branch_listing_memoized_per_tree(pfnano_path):
    """The name listing uproot does on each TTree.arrays call is computed once per tree."""
    from jetdask.nanoaod import uproot_speedups
    if not uproot_speedups.apply()["branch_names"]:
        pytest.skip("this uproot has no branch-name listing to memoize")
    from uproot.behaviors import TBranch as tbranch
    tree = io.open_tree(pfnano_path, cache=False)
    try:
        first = tbranch._keys_deep(tree)
        assert tbranch._keys_deep(tree) is first
        assert set(tree.keys()) <= set(first)
        other = io.open_tree(pfnano_path, cache=False)
        assert tbranch._keys_deep(other) is not first  # per tree object, not per path
        io._close(other)
    finally:
        io._close(tree)


def test_missing_branch_names_the_file(pfnano_path):
    tree = io.open_tree(pfnano_path, cache=False)
    try:
        with pytest.raises(FileAccessError) as exc:
            io.read_arrays(tree, ["Jet_pt", "No_such_branch"], 0, 5, pfnano_path)
        assert pfnano_path in str(exc.value) and "No_such_branch" in str(exc.value)
    finally:
        io._close(tree)


def _clear():
    io.clear_cache()
    io._opening.clear()


def _open_at_once(path: str, n: int):
    """``io.open_tree(path)`` in ``n`` threads started together: (trees, errors)."""
    import threading
    start, got, errors = threading.Barrier(n), [], []

    def opener():
        start.wait()
        try:
            got.append(io.open_tree(path))
        except Exception as err:  # noqa: BLE001 - collected for the assertions
            errors.append(err)
    threads = [threading.Thread(target=opener) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return got, errors


def test_threads_opening_one_file_at_once_open_it_once(real_data, monkeypatch):
    """Inspections off the worker's thread, chunks and opens ahead may ask for the same file at
    once: one of them opens it, the others wait for that open and get the same tree."""
    import time
    path = str(real_data / "nano_dy.root")
    real_open, calls = io._open, []

    def slow_open(p, tree):
        calls.append(p)
        time.sleep(0.3)              # the others arrive while it is under way
        return real_open(p, tree)
    monkeypatch.setattr(io, "_open", slow_open)
    _clear()
    try:
        got, errors = _open_at_once(path, 4)
        assert not errors
        assert calls == [path]
        assert len(got) == 4 and all(t is got[0] for t in got)
        assert got[0].num_entries > 0
        assert not io._opening
    finally:
        _clear()


def test_threads_waiting_for_an_open_that_failed_report_their_own_error(tmp_path):
    """The waiters of a failed open open the file again and raise the error, naming the file;
    nothing is left registered as opening."""
    path = str(tmp_path / "missing.root")
    _clear()
    got, errors = _open_at_once(path, 3)
    assert not got and len(errors) == 3
    assert all(isinstance(e, FileAccessError) and path in str(e) for e in errors)
    assert not io._opening and not io.cached_paths()
