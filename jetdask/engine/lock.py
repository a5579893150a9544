"""One run per directory: an OS lock on ``RUN/run.lock``, and the filesystem the run lives on.

:class:`RunLock` takes ``flock(LOCK_EX | LOCK_NB)`` on ``RUN/run.lock`` and
writes the holder (pid, host, start time, command) into it. The kernel drops
the lock when the process exits, however it exits (crash, ``kill -9``, lost
node on a shared filesystem after the lock lease), so a stale file never
blocks a later run: the file's text is only read to name the holder when the
lock is busy. Only the lock holder writes the ledger; readers (``jetdask
status``, ``jetdask plot``) never take it and open the ledger read-only.

flock is per open file, so a second :class:`RunLock` in the same process is
refused too. On NFS, Linux implements flock with the server's byte-range
locks, so two hosts exclude each other as well.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time

from ..errors import RunLockedError

LOCK_NAME = "run.lock"

# Filesystems with working shared memory for SQLite's WAL index (local disks).
LOCAL_FILESYSTEMS = frozenset({"ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "zfs", "f2fs", "jfs",
                               "reiserfs", "ramfs", "overlay", "bcachefs", "apfs", "hfs"})


class RunLock:
    """Exclusive ownership of a run directory while a run or resubmit goes on (reentrant)."""

    def __init__(self, run_dir: str):
        self.run_dir = os.path.abspath(run_dir)
        self.path = os.path.join(self.run_dir, LOCK_NAME)
        self._fd: int | None = None
        self._depth = 0

    @property
    def held(self) -> bool:
        return self._fd is not None

    @property
    def depth(self) -> int:
        """Nested acquisitions still open (0: not held)."""
        return self._depth

    def acquire(self) -> "RunLock":
        """Take the lock or raise :class:`RunLockedError` naming the holder; nested calls count."""
        if self._fd is not None:
            self._depth += 1
            return self
        os.makedirs(self.run_dir, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise RunLockedError(self.run_dir, holder(self.run_dir)) from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
                "command": " ".join(sys.argv)[:500]}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
        except OSError as err:   # a full disk: the lock holds without its note (the run's writes say why)
            from .diskspace import is_disk_full
            if not is_disk_full(err):
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
                raise
        self._fd, self._depth = fd, 1
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        self._depth -= 1
        if self._depth > 0:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def holder(run_dir: str, tries: int = 20) -> dict:
    """What the lock file says about its holder (it may be written a moment after the lock is taken)."""
    path = os.path.join(run_dir, LOCK_NAME)
    for _ in range(tries):
        try:
            with open(path) as f:
                text = f.read()
            if text:
                return json.loads(text)
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    return {}


def running_holder(run_dir: str) -> dict:
    """The holder named in the lock file if it may still run (the file is emptied on release;
    a holder on this host must still be alive), else ``{}``. Never takes the lock."""
    info = holder(run_dir, tries=1)
    if not info:
        return {}
    if info.get("host") == socket.gethostname():
        try:
            os.kill(int(info.get("pid", 0)), 0)
        except (OSError, ValueError):
            return {}
    return info


def filesystem_type(path: str, mounts: str | None = None) -> str | None:
    """The type of the filesystem that holds ``path`` (``mounts``: the text of ``/proc/mounts``,
    read when not given); ``None`` where unknown."""
    if mounts is None:
        try:
            with open("/proc/mounts") as f:
                mounts = f.read()
        except OSError:
            return None
    real = os.path.realpath(path)
    best, kind = "", None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


def wal_is_safe(path: str, mounts: str | None = None) -> bool:
    """SQLite's WAL needs shared memory between processes: only on local filesystems."""
    return filesystem_type(path, mounts) in LOCAL_FILESYSTEMS
