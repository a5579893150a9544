"""Remote files over XRootD: error classes, the uproot source, client settings, listings.

Errors are classified by the XRootD client's status (``code``, and for a server
error response its ``errNo``, the protocol's ``kXR_*`` number), or by ``errno``
for plain OS errors, never by message text:

* transient (worth retrying, or trying another replica): the server cannot be
  reached or did not answer in time (socket errors, operation expired, invalid
  address/DNS), it is busy or failing (``kXR_Overloaded``, ``kXR_ServerError``,
  ``kXR_IOError``, ``kXR_noserver``, ``kXR_inProgress``), or a redirect loop;
* permanent: the file is missing, access is denied, the path is a directory,
  authentication failed, and anything this table does not know (it is reported
  rather than retried without end). Errors uproot raises on bytes it received
  (not a ROOT file, corrupt baskets) carry no status and are permanent too.

uproot reads ``root://`` URLs here through :class:`XRootDSource`: uproot's
vector-read source, whose failures keep the client's status
(:class:`XRootDStatusError`) instead of uproot's plain ``OSError`` text. An open costs few
round trips: the server is asked for its vector-read limits once per process (not once per
file), while the file's first ``HEAD`` and last ``TAIL`` bytes come in one vector read sent
right after the open (the size comes with the open's answer), which holds the header, and in
files ROOT wrote, the keys, the streamers and the TTree's metadata that uproot then reads one
after the other (:meth:`XRootDSource.opened` lets go of them). Ranges read ahead
(:mod:`jetdask.nanoaod.readahead`) are served without asking again.
"""
from __future__ import annotations

import errno as _errno
import fnmatch
import logging
import os
import threading

import uproot.source.chunk
import uproot.source.futures
import uproot.source.xrootd

from .. import config
from . import readahead

log = logging.getLogger(__name__)

TRANSIENT, PERMANENT = "transient", "permanent"

# XrdCl status codes (XrdCl/XrdClStatus.hh)
_TRANSIENT_CODES = {
    1: "retry",
    5: "poller error",
    101: "invalid address (name lookup)",
    102: "socket error", 103: "socket timeout", 104: "socket disconnected", 105: "poller error",
    106: "socket option error", 107: "stream disconnected", 108: "connection error", 109: "invalid session",
    202: "handshake failed", 206: "operation expired", 207: "operation interrupted",
    208: "threshold exceeded", 301: "no more free stream ids", 306: "redirect limit (redirect loop)",
}
ERR_ERROR_RESPONSE = 400   # the server answered with an error: its kXR_* number is in errNo

# server error numbers (XProtocol/XProtocol.hh)
_TRANSIENT_SERVER = {
    3007: "kXR_IOError", 3008: "kXR_NoMemory", 3012: "kXR_ServerError", 3014: "kXR_noserver",
    3017: "kXR_Cancelled", 3020: "kXR_inProgress", 3024: "kXR_Overloaded", 3029: "kXR_noReplicas",
    3033: "kXR_TooManyErrs", 3034: "kXR_ReqTimedOut", 3035: "kXR_TimerExpired",
}

# errno of plain OS errors (local files, fsspec); anything else is permanent
_TRANSIENT_ERRNO = {_errno.ECONNREFUSED, _errno.ECONNRESET, _errno.ECONNABORTED, _errno.ETIMEDOUT,
                    _errno.EHOSTUNREACH, _errno.ENETUNREACH, _errno.ENETDOWN, _errno.EPIPE,
                    _errno.EAGAIN, _errno.EBUSY, _errno.ESTALE}


def classify_status(code: int, errno: int = 0) -> str:
    """``TRANSIENT`` or ``PERMANENT`` for an XRootD client status (``code``, ``errNo``)."""
    if code == ERR_ERROR_RESPONSE:
        return TRANSIENT if errno in _TRANSIENT_SERVER else PERMANENT
    return TRANSIENT if code in _TRANSIENT_CODES else PERMANENT


def classify(err: BaseException) -> str:
    """``TRANSIENT`` or ``PERMANENT`` for any exception met while opening or reading a file."""
    if isinstance(err, XRootDStatusError):
        return classify_status(err.code, err.xrd_errno)
    if isinstance(err, FileNotFoundError):
        return PERMANENT
    if isinstance(err, (TimeoutError, ConnectionError)):
        return TRANSIENT
    if isinstance(err, OSError) and err.errno in _TRANSIENT_ERRNO:
        return TRANSIENT
    return PERMANENT


class XRootDStatusError(OSError):
    """An XRootD operation failed; keeps the client's status fields."""

    def __init__(self, url: str, message: str, code: int, xrd_errno: int = 0, status: int = 1):
        super().__init__(url, message, code, xrd_errno, status)
        self.url = url
        self.message = message.strip()
        self.code = int(code)
        self.xrd_errno = int(xrd_errno)
        self.status = int(status)

    @classmethod
    def from_status(cls, url: str, st) -> "XRootDStatusError":
        return cls(url, st.message, st.code, st.errno, st.status)

    def __str__(self) -> str:
        return self.message


def is_xrootd(path: str) -> bool:
    return path.startswith(("root://", "roots://"))


def is_pattern(path: str) -> bool:
    """A ``root://`` URL naming a directory (trailing ``/``) or a glob, to be listed at planning."""
    if not is_xrootd(path):
        return False
    rest = path.split("://", 1)[1]
    rest = rest.split("/", 1)[1] if "/" in rest else ""
    return rest.endswith("/") or any(c in rest for c in "*?[")


# -- client settings ------------------------------------------------------------------
_CLIENT_KEYS = {"connection-window": "ConnectionWindow", "connection-retry": "ConnectionRetry",
                "timeout-resolution": "TimeoutResolution", "stream-error-window": "StreamErrorWindow"}
_configured = False
_config_lock = threading.Lock()


def configure_client() -> None:
    """Apply ``jetdask.xrootd`` to this process' XRootD client, once.

    An ``XRD_<NAME>`` environment variable set by the user wins over the config.
    """
    global _configured
    if _configured:
        return
    with _config_lock:
        if _configured:
            return
        from XRootD import client
        for key, value in (config.get("xrootd") or {}).items():
            name = _CLIENT_KEYS.get(key.replace("_", "-"))
            if name is None or value is None or f"XRD_{name.upper()}" in os.environ:
                continue
            client.EnvPutInt(name, int(value))
        _configured = True


def uproot_options() -> dict:
    """Options for ``uproot.open`` of a ``root://`` URL (see docs/howto/xrootd.md)."""
    configure_client()
    return {"handler": XRootDSource, "timeout": int(config.get("open-timeout")), "use_threads": False}


# -- the uproot source -----------------------------------------------------------------
class _Resource(uproot.source.xrootd.XRootDResource):
    def _xrd_error(self, status):
        try:
            self._file.close(timeout=self._xrd_timeout())
        except Exception as err:  # noqa: BLE001 - closing a file on a server that is gone fails too
            log.debug("jetdask: closing %s failed: %r", self._file_path, err)
        raise XRootDStatusError.from_status(self._file_path, status)


_limits: dict[str, tuple[int, int]] = {}   # data server -> its vector-read limits (this process)


def _server_config(resource: _Resource) -> tuple[int, int]:
    """Vector-read limits of the data server (uproot's defaults when it is the local disk), asked
    once per server and process."""
    from XRootD import client
    from XRootD.client.flags import QueryCode
    defaults = (1024, 2097136)
    last = client.URL(resource.file.get_property("LastURL"))
    if last.protocol == "file" and last.hostid == "localhost":
        return defaults
    server = resource.file.get_property("DataServer")
    if not server:
        return defaults
    server = client.URL(server)
    base = f"{server.protocol}://{server.hostid}/"
    if base in _limits:
        return _limits[base]
    st, answer = client.FileSystem(base).query(
        QueryCode.CONFIG, "readv_iov_max readv_ior_max", timeout=resource._xrd_timeout())
    if st.error:
        raise XRootDStatusError.from_status(resource._file_path, st)
    iov, ior = map(int, answer.split(b"\n", 1))
    _limits[base] = (iov, ior)
    return iov, ior


HEAD = 64 * 1024      # bytes of a file's start read with its end when it is opened
TAIL = 512 * 1024     # bytes of its end: ROOT writes the keys, streamers and a tree's metadata last


def _ask_ends(resource: _Resource):
    """Ask for the start and the end of the open file in one vector read, without waiting for it
    (the server's limits may be asked meanwhile); returns a function that waits for the answer and
    gives its ``(offset, bytes)``: nothing when that read fails (uproot's own reads then report
    the error)."""
    f = resource.file
    st, info = f.stat()                     # the open's answer: no round trip
    if st.error or not info.size:
        return list
    size = int(info.size)
    ranges = [(0, min(size, HEAD))]
    if size > HEAD:
        ranges.append((max(HEAD, size - TAIL), size))
    done, got = threading.Event(), []

    def answered(status, response, hostlist):
        if not status.error and response is not None:
            got.extend((int(c.offset), c.buffer) for c in response.chunks)
        done.set()

    timeout = resource._xrd_timeout()
    st = f.vector_read(chunks=[(a, b - a) for a, b in ranges], timeout=timeout, callback=answered)
    if st.error:
        return list

    def wait() -> list[tuple[int, bytes]]:
        # the client answers every request, at the latest when it times out; the bound is a guard
        return got if done.wait((timeout or 60) + 30) else []
    return wait


class XRootDSource(uproot.source.xrootd.XRootDSource):
    """uproot's vector-read XRootD source, raising :class:`XRootDStatusError` on failures."""

    ResourceClass = _Resource
    _ends: list = []

    def _open(self):
        self._resource = _Resource(self._file_path, self._timeout)
        if self._use_threads:
            self._executor = uproot.source.futures.ResourceThreadPoolExecutor(
                [uproot.source.xrootd.trivial_resource() for _ in range(self._num_workers)])
        else:
            self._executor = uproot.source.futures.ResourceTrivialExecutor(uproot.source.xrootd.trivial_resource())
        ends = _ask_ends(self._resource)     # in flight while the server's limits are asked
        self._max_num_elements, self._max_element_size = _server_config(self._resource)
        if self._desired_max_num_elements is not None:
            self._max_num_elements = min(self._max_num_elements, self._desired_max_num_elements)
        self.store = readahead.Store(self)
        self._ends = ends()

    def opened(self) -> None:
        """The file's metadata is read: the start and end read at the open are not needed any more."""
        self._ends = []

    def chunk(self, start: int, stop: int):
        for at, data in self._ends:
            if at <= start and stop <= at + len(data):
                return uproot.source.chunk.Chunk(self, start, stop,
                                                 uproot.source.futures.TrivialFuture(data[start - at:stop - at]))
        return super().chunk(start, stop)

    # what the read-ahead store needs of its file
    def readv_limits(self) -> tuple[int, int]:
        return self._max_num_elements, self._max_element_size

    def request_timeout(self) -> int:
        return self._resource._xrd_timeout()

    def status_error(self, status) -> XRootDStatusError:
        return XRootDStatusError.from_status(self._file_path, status)

    def chunks(self, ranges, notifications):
        """The chunks of ``ranges``: those read ahead as they are, the others in vector reads of
        this source's own (one future per request, :class:`readahead.Batch`); each chunk is
        announced on ``notifications`` when its bytes are in."""
        store = getattr(self, "store", None)
        ahead = store.take(ranges) if store is not None and len(store) else {}
        fresh, big = [], []
        for start, stop in ranges:
            if (start, stop) in ahead:
                continue
            if stop - start > self._max_element_size:
                big.append((start, stop))          # split and joined again by uproot's own code
            else:
                fresh.append(readahead.Range(start, stop))
        if fresh:
            self._num_requests += 1
            self._num_requested_bytes += sum(r.size for r in fresh)
            readahead.send(self, fresh, self._read_error)
        self._num_requested_chunks += len(ahead) + len(fresh)
        by_batch: dict = {}
        out = []
        for r in list(ahead.values()) + fresh:
            chunk = uproot.source.chunk.Chunk(self, r.start, r.stop, r)
            by_batch.setdefault(id(r.batch), (r.batch, []))[1].append(chunk)
            out.append(chunk)
        for batch, chunks in by_batch.values():
            batch.add_done_callback(lambda chunks=chunks: [notifications.put(c) for c in chunks])
        if big:
            out.extend(super().chunks(big, notifications))
        return out

    def _read_error(self, status) -> XRootDStatusError:
        """A chunk's own read failed: the file is closed (as uproot does) and the client's status kept."""
        try:
            self._resource._xrd_error(status)
        except XRootDStatusError as err:
            return err
        return self.status_error(status)

    def __exit__(self, exception_type, exception_value, traceback):
        store = getattr(self, "store", None)
        if store is not None:
            store.drop()
        super().__exit__(exception_type, exception_value, traceback)


# -- listings --------------------------------------------------------------------------
def _split_url(url: str):
    from XRootD import client
    u = client.URL(url)
    if not u.is_valid():
        raise XRootDStatusError(url, "not a valid XRootD URL", 302)
    path = u.path if u.path.startswith("/") else "/" + u.path
    return f"{u.protocol}://{u.hostid}/", path


def _list(fs, base: str, directory: str, timeout: int) -> list[tuple[str, bool]]:
    from XRootD.client.flags import DirListFlags, StatInfoFlags
    st, listing = fs.dirlist(directory, DirListFlags.STAT, timeout=timeout)
    if st.error:
        raise XRootDStatusError.from_status(base + directory, st)
    return [(e.name, bool(e.statinfo.flags & StatInfoFlags.IS_DIR)) for e in listing]


def expand(url: str, timeout: int | None = None) -> list[str]:
    """The files a directory URL (``root://host//dir/``) or glob URL names, sorted.

    Globs may be in any path component (``root://host//store/*/nano_*.root``); a
    directory stands for its ``*.root`` files. Raises :class:`XRootDStatusError`.
    """
    from XRootD import client
    configure_client()
    timeout = int(timeout if timeout is not None else config.get("open-timeout"))
    base, path = _split_url(url)
    fs = client.FileSystem(base)
    parts = path.strip("/").split("/") if path.strip("/") else []
    if path.endswith("/") or not parts:
        parts.append("*.root")
    dirs = ["/"]
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if not any(c in part for c in "*?["):
            dirs = [d.rstrip("/") + "/" + part for d in dirs]
            continue
        found = []
        for d in dirs:
            for name, is_dir in _list(fs, base, d, timeout):
                if fnmatch.fnmatchcase(name, part) and is_dir != last:
                    found.append(d.rstrip("/") + "/" + name)
        dirs = found
    return sorted(base + "/" + p.lstrip("/") for p in dirs)
