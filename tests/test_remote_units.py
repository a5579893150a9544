"""Remote-file units (pure): error classes, patterns, replica order, the fileset replica syntax."""
from __future__ import annotations

import errno
import pickle

import pytest

from jetdask.chunk import Chunk
from jetdask.engine.task import replica_order
from jetdask.errors import FileAccessError, TransientError, TransientFileError
from jetdask.nanoaod import io, remote
from jetdask.nanoaod.remote import PERMANENT, TRANSIENT, XRootDStatusError, classify, classify_status

# (XrdCl status code, server kXR_* errNo, expected)
STATUS_TABLE = [
    (101, 0, TRANSIENT),      # invalid address: the name does not resolve (now)
    (102, 0, TRANSIENT),      # socket error
    (103, 0, TRANSIENT),      # socket timeout
    (104, 0, TRANSIENT),      # socket disconnected
    (107, 0, TRANSIENT),      # stream disconnected
    (108, 0, TRANSIENT),      # connection error
    (206, 0, TRANSIENT),      # operation expired (server down: what the real server gives)
    (207, 0, TRANSIENT),      # operation interrupted
    (306, 0, TRANSIENT),      # redirect limit: a redirect loop
    (400, 3024, TRANSIENT),   # kXR_Overloaded: server busy
    (400, 3012, TRANSIENT),   # kXR_ServerError
    (400, 3007, TRANSIENT),   # kXR_IOError
    (400, 3014, TRANSIENT),   # kXR_noserver
    (400, 3020, TRANSIENT),   # kXR_inProgress
    (400, 3011, PERMANENT),   # kXR_NotFound: no such file
    (400, 3010, PERMANENT),   # kXR_NotAuthorized: permission denied
    (400, 3016, PERMANENT),   # kXR_isDirectory
    (400, 3005, PERMANENT),   # kXR_FSError (e.g. listing a file as a directory)
    (400, 3030, PERMANENT),   # kXR_AuthFailed
    (204, 0, PERMANENT),      # errAuthFailed (no valid proxy)
    (304, 0, PERMANENT),      # errNotFound
    (305, 0, PERMANENT),      # checksum error
    (302, 0, PERMANENT),      # invalid redirect URL
    (400, 0, PERMANENT),      # an error response without a number
    (999, 0, PERMANENT),      # unknown codes are not retried without end
]


@pytest.mark.parametrize("code,xerrno,want", STATUS_TABLE)
def test_status_table(code, xerrno, want):
    assert classify_status(code, xerrno) == want
    assert classify(XRootDStatusError("root://h//f.root", "[ERROR] x", code, xerrno)) == want


EXC_TABLE = [
    (FileNotFoundError(errno.ENOENT, "no such file"), PERMANENT),
    (PermissionError(errno.EACCES, "denied"), PERMANENT),
    (OSError("expected Chunk of length 403, received 15 bytes"), PERMANENT),   # not a ROOT file
    (ValueError("corrupt basket"), PERMANENT),
    (TimeoutError("timed out"), TRANSIENT),
    (ConnectionResetError(errno.ECONNRESET, "reset"), TRANSIENT),
    (OSError(errno.ECONNREFUSED, "refused"), TRANSIENT),
    (OSError(errno.EHOSTUNREACH, "no route"), TRANSIENT),
    (OSError(errno.EIO, "I/O error"), PERMANENT),
]


@pytest.mark.parametrize("err,want", EXC_TABLE, ids=[repr(e)[:40] for e, _ in EXC_TABLE])
def test_exception_table(err, want):
    assert classify(err) == want


def test_io_turns_classes_into_jetdask_errors():
    expired = XRootDStatusError("root://h//f.root", "[ERROR] Operation expired\n", 206)
    err = io._classify("root://h//f.root", expired, (0, 100))
    assert isinstance(err, TransientFileError) and isinstance(err, TransientError) and err.transient
    assert err.reason == "[ERROR] Operation expired" and err.entries == (0, 100)
    assert "[0, 100)" in str(err) and "root://h//f.root" in str(err)
    again = pickle.loads(pickle.dumps(err))   # crosses the worker/client boundary
    assert type(again) is TransientFileError and str(again) == str(err)
    missing = XRootDStatusError("root://h//f.root", "[ERROR] Server responded with an error: [3011] no such", 400, 3011)
    err = io._classify("root://h//f.root", missing)
    assert type(err) is FileAccessError and not err.transient


PATTERNS = [
    ("root://host//store/a.root", False),
    ("root://host//store/dir/", True),
    ("root://host//store/*/nano_*.root", True),
    ("root://host:1094//store/f?.root", True),
    ("/local/dir/*.root", False),          # local globs are expanded when the fileset is read
    ("https://host/a*.root", False),
]


@pytest.mark.parametrize("url,want", PATTERNS)
def test_is_pattern(url, want):
    assert remote.is_pattern(url) == want


def test_replica_order_puts_recent_failures_last():
    urls = ("root://a//f.root", "root://b//f.root", "root://c//f.root")
    assert replica_order(urls, {}, 1000.0) == list(urls)
    assert replica_order(urls, {"root://a//f.root": 990.0}, 1000.0) == [urls[1], urls[2], urls[0]]
    # an old failure no longer counts
    assert replica_order(urls, {"root://a//f.root": 1000.0 - 1e4}, 1000.0) == list(urls)


def test_chunk_id_ignores_urls_and_replicas():
    a = Chunk("DY", "root://a//f.root", "Events", 0, 10, "uuid-1")
    b = Chunk("DY", "/data/f.root", "Events", 0, 10, "uuid-1", {}, ("root://b//f.root",))
    assert a.id == b.id and a == b
    assert b.urls == ("/data/f.root", "root://b//f.root")
    assert Chunk.from_dict(b.to_dict()).replicas == b.replicas


def test_fileset_replica_forms_round_trip():
    from jetdask.fileset import load_fileset
    raw = {
        "A": {"files": [["root://a//f1.root", "root://b//f1.root"],
                        {"path": "root://a//f2.root", "replicas": ["root://b//f2.root"], "tree": "T"},
                        "root://a//f3.root"]},
        "B": {"files": {"root://a//g.root": {"tree": "Events", "replicas": ["root://c//g.root"]},
                        "root://a//h.root": "Events"}},
        "C": {"files": {"root://a//k.root": "Events"}},          # coffea form, kept as is
    }
    fs = load_fileset(raw)
    a = fs["A"].files
    assert a[0].urls == ("root://a//f1.root", "root://b//f1.root") and a[0].tree == "Events"
    assert a[1].urls == ("root://a//f2.root", "root://b//f2.root") and a[1].tree == "T"
    assert a[2].replicas == ()
    assert fs["B"].files[0].replicas == ("root://c//g.root",) and fs["B"].files[1].replicas == ()
    assert fs.to_dict()["C"]["files"] == {"root://a//k.root": "Events"}
    assert load_fileset(fs.to_dict()) == fs


@pytest.mark.parametrize("bad", [[[]], [["root://a//f.root", 3]], [{"path": "x.root", "replicas": 5}]])
def test_fileset_bad_replicas_name_the_entry(bad):
    from jetdask.errors import ConfigError
    from jetdask.fileset import load_fileset
    with pytest.raises(ConfigError, match=r"fileset\.A\.files\[0\]"):
        load_fileset({"A": {"files": bad}})
