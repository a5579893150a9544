import json

import pytest

from jetdask.errors import ConfigError
from jetdask.fileset import load_fileset, parse_fileset


def test_coffea_style_and_plain_lists(tmp_path):
    fs = parse_fileset({
        "DY": {"files": {"/a.root": "Events", "b.root": None}, "metadata": {"xsec": 6077.2, "campaign": "X"}},
        "Data": ["/c.root", "/d.root"],
    }, base="/base")
    assert [f.path for f in fs["DY"].files] == ["/a.root", "/base/b.root"]
    assert fs["DY"].metadata["campaign"] == "X" and not fs["DY"].is_data
    assert [f.tree for f in fs["Data"].files] == ["Events", "Events"]
    # round trip through JSON and YAML
    p = tmp_path / "fs.json"
    p.write_text(json.dumps(fs.to_dict()))
    assert load_fileset(p).to_dict() == fs.to_dict()
    y = tmp_path / "fs.yaml"
    y.write_text("DY:\n  files: [x.root]\n  metadata: {is_data: true, lumi: 10}\n")
    fy = load_fileset(y)
    assert fy["DY"].is_data and fy["DY"].files[0].path == str(tmp_path / "x.root")


def test_urls_are_kept():
    fs = parse_fileset({"DY": ["root://eoscms.cern.ch//store/a.root", "s3://bucket/b.root"]}, base="/base")
    assert [f.path for f in fs["DY"].files] == ["root://eoscms.cern.ch//store/a.root", "s3://bucket/b.root"]


@pytest.mark.parametrize("raw, key", [
    ({"DY": {"files": []}}, "fileset.DY.files"),
    ({"DY": {"metadata": {}}}, "fileset.DY"),
    ({"DY": {"files": ["a.root"], "metadata": {"is_data": "yes"}}}, "fileset.DY.metadata.is_data"),
    ({"DY": {"files": ["a.root"], "metadata": {"xsec": "big"}}}, "fileset.DY.metadata.xsec"),
    ({"DY": {"files": ["a.root"], "metdata": {}}}, "fileset.DY.metdata"),
    ({"datasets": {"DY": ["a.root"]}, "version": 2}, "fileset.version"),
    ({"DY": {"files": ["a.root"], "metadata": {"is_dta": True}}}, "fileset.DY.metadata.is_dta"),
    ({"DY": {"files": [{"path": "a.root", "treee": "Events"}]}}, "fileset.DY.files[0].treee"),
    ({"DY": ["a.root"], "version": 2}, "fileset.version"),
    ({"DY": {"files": {"a.root": 3}}}, "fileset.DY.files['a.root']"),
    ([], "fileset"),
])
def test_bad_input_names_the_key(raw, key):
    with pytest.raises(ConfigError) as err:
        parse_fileset(raw)
    assert err.value.key == key
    assert key in str(err.value)


def test_missing_and_unparsable_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_fileset(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="cannot parse"):
        load_fileset(bad)


@pytest.mark.parametrize("raw, suggestion", [
    ({"DY": {"files": ["a.root"], "metdata": {}}}, "'metadata'"),
    ({"DY": {"files": ["a.root"], "metadata": {"is_dta": True}}}, "'is_data'"),
    ({"DY": {"files": ["a.root"], "metadata": {"xsex": 1.0}}}, "'xsec'"),
])
def test_unknown_keys_suggest_the_closest_known_key(raw, suggestion):
    with pytest.raises(ConfigError, match=f"did you mean {suggestion}"):
        parse_fileset(raw)


def test_analysis_metadata_keys_far_from_known_ones_are_kept():
    fs = parse_fileset({"DY": {"files": ["a.root"], "metadata": {"era": "2018", "sample_kind": "dy"}}})
    assert fs["DY"].metadata == {"era": "2018", "sample_kind": "dy"}


def test_key_tables_extend_in_one_line(monkeypatch):
    import jetdask.fileset as fileset_mod
    with pytest.raises(ConfigError, match="checksum"):
        parse_fileset({"DY": {"files": [{"path": "a.root", "checksum": "adler32:0a1b2c3d"}]}})
    monkeypatch.setattr(fileset_mod, "FILE_KEYS", fileset_mod.FILE_KEYS | {"checksum"})
    assert parse_fileset({"DY": {"files": [{"path": "a.root", "checksum": ""}]}})["DY"].files[0].path == "a.root"


def test_relative_paths_follow_the_fileset_file_when_moved(tmp_path):
    """``jetdask sample`` writes paths relative to the fileset file: the directory can move."""
    import shutil
    src = tmp_path / "a"
    src.mkdir()
    (src / "x.root").write_bytes(b"")
    (src / "fileset.json").write_text(json.dumps({"DY": {"files": {"x.root": "Events"}}}))
    moved = tmp_path / "b"
    shutil.move(str(src), str(moved))
    fs = load_fileset(moved / "fileset.json")
    assert fs["DY"].files[0].path == str(moved / "x.root")
