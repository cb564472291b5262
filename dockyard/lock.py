"""One server per data directory: ``dockyard up`` holds an exclusive ``flock`` on
``<data-dir>/dockyard.lock``, a file holding its pid.

The kernel drops a ``flock`` when its last file descriptor closes, so the lock goes with the
process however it ends (SIGKILL included): no stale lock to clean up. The descriptor is not
inherited by the processes the server starts (Python's descriptors are close-on-exec), so a
surviving child never keeps a dead server's data dir locked.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path

__all__ = ["LOCK_FILE", "DataDirInUse", "DataDirLock", "acquire"]

LOCK_FILE = "dockyard.lock"


class DataDirInUse(Exception):
    """Another process holds the data dir's lock (``pid`` is its pid, 0 when unreadable)."""

    def __init__(self, data_dir: str, pid: int) -> None:
        who = f"dockyard pid {pid}" if pid else "another dockyard process"
        super().__init__(
            f"data dir {data_dir} is in use by {who} (lock {Path(data_dir) / LOCK_FILE}); "
            "stop it first, or give this one another --data-dir"
        )
        self.data_dir, self.pid = data_dir, pid


class DataDirLock:
    """A held lock; :meth:`release` (or process exit) frees it."""

    def __init__(self, fd: int, path: Path) -> None:
        self.fd, self.path = fd, path

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing the only descriptor drops the flock
            self.fd = -1


def _read_pid(fd: int) -> int:
    """The pid written in the lock file; the holder writes it right after locking, so an
    empty file is retried briefly."""
    for _ in range(20):
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        if text.isdigit():
            return int(text)
        time.sleep(0.05)
    return 0


def acquire(data_dir: str) -> DataDirLock:
    """Lock ``data_dir`` for this process and write its pid, or raise :class:`DataDirInUse`."""
    path = Path(data_dir) / LOCK_FILE
    # No O_TRUNC: the file's pid belongs to whoever holds the lock until we hold it.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
            os.close(fd)
            raise
        pid = _read_pid(fd)
        os.close(fd)
        raise DataDirInUse(data_dir, pid) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return DataDirLock(fd, path)
