"""The storage driver seam: a few path-based methods, a filesystem backend and a memory one.

Like Distribution's ``storagedriver``, a driver knows paths and bytes, nothing of digests or
repositories. Paths are ``/``-separated, relative to the driver's root, and never contain
``..``. Blocking calls (``FileWriter.write``/``commit``, ``move``, ``reader``) are cheap
on a local disk for small objects; the blob layer runs the long ones in a worker thread.

:class:`FilesystemDriver` is the one a registry runs on. :class:`MemoryDriver` keeps
everything in a dict, for tests only (like Distribution's ``inmemory``): every backend passes
the same suite (``tests/unit/registry/storage``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import io
import os
import shutil
import threading
from pathlib import Path
from typing import BinaryIO, Protocol

__all__ = ["FileWriter", "FilesystemDriver", "MemoryDriver", "PathNotFound", "StorageDriver"]


class PathNotFound(FileNotFoundError):
    """The path does not exist in the driver."""


class FileWriter(Protocol):
    """Appends to one object. ``commit`` makes the bytes durable; readable only after it."""

    @property
    def size(self) -> int: ...

    def write(self, data: bytes | bytearray | memoryview) -> int: ...

    def truncate(self, size: int) -> None: ...

    def commit(self) -> None: ...

    def cancel(self) -> None: ...

    def close(self) -> None: ...


class StorageDriver(Protocol):
    def get_content(self, path: str) -> bytes: ...

    def put_content(self, path: str, data: bytes) -> None: ...

    def reader(self, path: str, offset: int = 0) -> BinaryIO: ...

    def writer(self, path: str, offset: int | None = None) -> FileWriter: ...

    def stat(self, path: str) -> int | None: ...

    def list(self, path: str) -> list[str]: ...

    def move(self, source: str, dest: str) -> None: ...

    def delete(self, path: str) -> None: ...


def _check(path: str) -> str:
    if path.startswith("/") or ".." in path.split("/") or "\0" in path:
        raise ValueError(f"invalid storage path {path!r}")
    return path


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

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def full_path(self, path: str) -> Path:
        return self.root / _check(path)

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

    def stat(self, path: str) -> int | None:
        try:
            return self.full_path(path).stat().st_size
        except FileNotFoundError:
            return None

    def list(self, path: str) -> list[str]:
        try:
            return sorted(os.listdir(self.full_path(path)))
        except FileNotFoundError:
            return []

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


class _MemWriter:
    """A FileWriter on one bytearray of a :class:`MemoryDriver`; ``cancel`` removes it."""

    def __init__(self, driver: MemoryDriver, path: str, offset: int | None) -> None:
        self._driver, self._path = driver, path
        with driver._lock:
            self._data = driver._files.setdefault(path, bytearray())
            if offset is not None:
                del self._data[offset:]

    @property
    def size(self) -> int:
        return len(self._data)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._data += data
        return len(data)

    def truncate(self, size: int) -> None:
        del self._data[size:]

    def commit(self) -> None:
        pass

    def cancel(self) -> None:
        with self._driver._lock:
            if self._driver._files.get(self._path) is self._data:
                del self._driver._files[self._path]

    def close(self) -> None:
        pass


class MemoryDriver:
    """A StorageDriver in memory, for tests only: files are bytearrays keyed by path,
    directories exist while a file lies under them. Nothing survives the process."""

    name = "memory"

    def __init__(self) -> None:
        self._files: dict[str, bytearray] = {}
        self._lock = threading.Lock()

    def get_content(self, path: str) -> bytes:
        try:
            return bytes(self._files[_check(path)])
        except KeyError:
            raise PathNotFound(path) from None

    def put_content(self, path: str, data: bytes) -> None:
        with self._lock:
            self._files[_check(path)] = bytearray(data)

    def reader(self, path: str, offset: int = 0) -> BinaryIO:
        """A snapshot of the file's bytes from ``offset`` (later writes do not show)."""
        f = io.BytesIO(self.get_content(path))
        f.seek(offset)
        return f

    def writer(self, path: str, offset: int | None = None) -> _MemWriter:
        """Append to ``path`` (created if missing); ``offset`` first truncates it to that size."""
        return _MemWriter(self, _check(path), offset)

    def stat(self, path: str) -> int | None:
        data = self._files.get(_check(path))
        return None if data is None else len(data)

    def list(self, path: str) -> list[str]:
        prefix = _check(path).rstrip("/") + "/"
        with self._lock:
            return sorted({p[len(prefix):].split("/", 1)[0] for p in self._files if p.startswith(prefix)})

    def move(self, source: str, dest: str) -> None:
        _check(dest)
        with self._lock:
            try:
                data = self._files.pop(_check(source))
            except KeyError:
                raise PathNotFound(source) from None
            self._files[dest] = data

    def delete(self, path: str) -> None:
        """Remove a file or a whole directory; missing paths are fine."""
        prefix = _check(path).rstrip("/") + "/"
        with self._lock:
            self._files.pop(path, None)
            for p in [p for p in self._files if p.startswith(prefix)]:
                del self._files[p]
