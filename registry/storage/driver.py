"""The storage driver seam: a few path-based methods, and a filesystem backend.

Like Distribution's ``storagedriver``, a driver knows paths and bytes, nothing of digests or
repositories. Paths are ``/``-separated, relative to the driver's root, and never contain
``..``. Blocking calls (``FileWriter.write``/``commit``, ``move``, ``reader``) are cheap
on a local disk for small objects; the blob layer runs the long ones in a worker thread.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import BinaryIO, Protocol

__all__ = ["FileWriter", "FilesystemDriver", "PathNotFound", "StorageDriver"]


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


class _FsWriter:
    """A FileWriter on a local file; ``commit`` fsyncs the file."""

    def __init__(self, path: Path, offset: int | None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        if offset is not None:
            os.ftruncate(fd, offset)
        self._size = os.lseek(fd, 0, os.SEEK_END)
        self._file = os.fdopen(fd, "wb", buffering=0)
        self._path = path

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
        return len(data)

    def truncate(self, size: int) -> None:
        os.ftruncate(self._file.fileno(), size)
        self._file.seek(size)
        self._size = size

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
