"""One way to replace a file: whole or not at all, nothing left behind on failure."""
from __future__ import annotations

import json
import os

import pytest

from jetdask.atomicwrite import atomic_path, write_bytes, write_json, write_text


def test_written_whole_and_replacing(tmp_path):
    path = tmp_path / "a.json"
    write_json(path, {"x": 1}, indent=1)
    assert json.loads(path.read_text()) == {"x": 1}
    write_text(path, "new")
    write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert path.read_text() == "new" and (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert sorted(os.listdir(tmp_path)) == ["a.json", "b.bin"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.json"
    write_json(path, [1, 2, 3])
    with pytest.raises(TypeError):
        write_json(path, {"not serialisable": object()})
    with pytest.raises(RuntimeError, match="midway"):
        with atomic_path(path) as tmp:
            with open(tmp, "w") as f:
                f.write("[1, 2")
            raise RuntimeError("midway")
    assert json.loads(path.read_text()) == [1, 2, 3]
    assert os.listdir(tmp_path) == ["out.json"]


def test_a_reader_sees_the_old_file_until_the_new_one_is_complete(tmp_path):
    path = tmp_path / "out.txt"
    write_text(path, "old")
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write("new, half")
        assert path.read_text() == "old" and os.path.dirname(tmp) == str(tmp_path) and tmp.endswith(".tmp")
    assert path.read_text() == "new, half"
