"""The filesystem backend: a StorageDriver on a local directory, the one a registry runs on.

Its fast paths stay behind the seam: a writer starts the disk write of every MiB at once
(``start_writeback``) and fsyncs at ``commit``; ``move`` is an atomic rename with the target
directory fsynced, so a blob renamed into place survives a crash.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from stat import S_ISDIR as stat_is_dir
from typing import BinaryIO

from registry.storage.driver.base import FileInfo, PathNotFound, check_path

__all__ = ["WRITEBACK_STEP", "FilesystemDriver", "start_writeback"]


WRITEBACK_STEP = 1 << 20  # start the disk write of every MiB as soon as it is written


def _load_sync_file_range():  # type: ignore[no-untyped-def]
    """libc's ``sync_file_range`` (Linux), or None where there is none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_sync_file_range = _load_sync_file_range()
_SYNC_FILE_RANGE_WRITE = 2


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing ``length`` bytes at ``offset`` to disk, without
    waiting (``sync_file_range(SYNC_FILE_RANGE_WRITE)``). Not a durability guarantee: the
    fsync at commit still is. It overlaps the disk's work with the upload's, so the commit's
    fsync finds little left to write: on this machine's disk 64 concurrent 4 MiB write+fsync
    went from about 350 MB/s to 650-700 MB/s. A no-op where the call does not exist."""
    if _sync_file_range is not None and length > 0:
        _sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


class _FsWriter:
    """A FileWriter on a local file; ``commit`` fsyncs the file. Every WRITEBACK_STEP bytes
    written start their way to disk at once (``start_writeback``)."""

    def __init__(self, path: Path, offset: int | None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        if offset is not None:
            os.ftruncate(fd, offset)
        self._size = os.lseek(fd, 0, os.SEEK_END)
        self._file = os.fdopen(fd, "wb", buffering=0)
        self._path = path
        self._written_back = self._size  # bytes before this offset were handed to writeback

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data)
        while view:
            n = self._file.write(view)
            assert n is not None
            self._size += n
            view = view[n:]
        if self._size - self._written_back >= WRITEBACK_STEP:
            start_writeback(self._file.fileno(), self._written_back, self._size - self._written_back)
            self._written_back = self._size
        return len(data)

    def truncate(self, size: int) -> None:
        os.ftruncate(self._file.fileno(), size)
        self._file.seek(size)
        self._size = size
        self._written_back = min(self._written_back, size)

    def commit(self) -> None:
        os.fsync(self._file.fileno())

    def cancel(self) -> None:
        self.close()
        self._path.unlink(missing_ok=True)

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FilesystemDriver:
    """A StorageDriver on a local directory. ``move`` is an atomic, durable rename."""

    name = "filesystem"
    remote = False

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def full_path(self, path: str) -> Path:
        """Where ``path`` lies on the local disk (this backend's own; not part of the seam)."""
        return self.root / check_path(path)

    def get_content(self, path: str) -> bytes:
        try:
            return self.full_path(path).read_bytes()
        except FileNotFoundError:
            raise PathNotFound(path) from None

    def put_content(self, path: str, data: bytes) -> None:
        w = self.writer(path + ".tmp", 0)
        try:
            w.write(data)
            w.commit()
        finally:
            w.close()
        self.move(path + ".tmp", path)

    def reader(self, path: str, offset: int = 0) -> BinaryIO:
        try:
            f = open(self.full_path(path), "rb")
        except FileNotFoundError:
            raise PathNotFound(path) from None
        if offset:
            f.seek(offset)
        return f

    def writer(self, path: str, offset: int | None = None) -> _FsWriter:
        """Append to ``path`` (created if missing); ``offset`` first truncates it to that size."""
        return _FsWriter(self.full_path(path), offset)

    def stat(self, path: str) -> FileInfo | None:
        try:
            st = os.stat(self.full_path(path))
        except (FileNotFoundError, NotADirectoryError):
            return None
        is_dir = stat_is_dir(st.st_mode)
        return FileInfo(0 if is_dir else st.st_size, max(st.st_mtime, st.st_ctime), is_dir)

    def list(self, path: str) -> list[str]:
        try:
            return sorted(os.listdir(self.full_path(path)))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def walk(self, path: str) -> Iterator[tuple[str, FileInfo]]:
        """Every file under ``path`` (recursively, sorted), with its stat; files that vanish
        meanwhile are left out."""
        for name in self.list(path):
            child = f"{path.rstrip('/')}/{name}"
            info = self.stat(child)
            if info is None:
                continue
            if info.is_dir:
                yield from self.walk(child)
            else:
                yield child, info

    def move(self, source: str, dest: str) -> None:
        src, dst = self.full_path(source), self.full_path(dest)
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(src, dst)
        except FileNotFoundError:
            raise PathNotFound(source) from None
        _fsync_dir(dst.parent)

    def delete(self, path: str) -> None:
        """Remove a file or a whole directory; missing paths are fine."""
        full = self.full_path(path)
        try:
            if full.is_dir():
                shutil.rmtree(full)
            else:
                full.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise

    def url_for(self, path: str, expires: int) -> str | None:
        """None: clients read blobs through the registry."""
        return None
