import pickle

import uproot

from jetdask.engine.planning import plan
from jetdask.fileset import parse_fileset


def test_plan_real_files_and_report_unreadable(tmp_path, pfnano_path, nano_dy_path):
    broken = tmp_path / "broken.root"
    with open(nano_dy_path, "rb") as f:
        broken.write_bytes(f.read(5000))
    fs = parse_fileset({"pf": [pfnano_path], "dy": [nano_dy_path, str(broken), str(tmp_path / "missing.root")]})
    p = plan(fs, chunk_size=7)
    n_dy = uproot.open(nano_dy_path)["Events"].num_entries
    dy = [c for c in p.chunks if c.dataset == "dy"]
    assert [(c.entry_start, c.entry_stop) for c in dy][0][0] == 0
    assert sum(c.num_entries for c in dy) == n_dy
    assert all(c.num_entries <= 7 for c in p.chunks)
    assert {c.file_uuid for c in dy} == {str(uproot.open(nano_dy_path).file.uuid)}
    reasons = {f.path: f.reason for f in p.failures}
    assert set(reasons) == {str(broken), str(tmp_path / "missing.root")}
    assert "no such file" in reasons[str(tmp_path / "missing.root")]
    # ids stable between two plans
    assert [c.id for c in plan(fs, chunk_size=7).chunks] == [c.id for c in p.chunks]


def test_errors_pickle_with_context():
    from jetdask.errors import ChunkError, ConfigError, FileAccessError, MissingColumnError
    for e in [ConfigError("bad", "k"), FileAccessError("/a.root", "truncated", True),
              MissingColumnError("Jet_x", "/a.root", "did you mean Jet_pt"),
              ChunkError("id", "DY: a.root [0, 10)", "KeyError", "boom", "", "deterministic", [(1, 2, 3)])]:
        e2 = pickle.loads(pickle.dumps(e))
        assert str(e2) == str(e) and type(e2) is type(e)
