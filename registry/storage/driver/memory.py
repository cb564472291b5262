"""The memory backend: a real StorageDriver in the process (like Distribution's ``inmemory``).

Files are bytearrays keyed by path, each with the time it last changed; directories exist
while a file lies under them. Nothing survives the process: for tests and throwaway registries.
Safe to use from several threads (the blob layer writes from worker threads).
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator
from typing import BinaryIO

from registry.storage.driver.base import FileInfo, PathNotFound, check_path

__all__ = ["MemoryDriver"]


class _File:
    __slots__ = ("data", "modified")

    def __init__(self, data: bytearray, modified: float) -> None:
        self.data, self.modified = data, modified


class _MemWriter:
    """A FileWriter on one file of a :class:`MemoryDriver`; ``cancel`` removes it."""

    def __init__(self, driver: MemoryDriver, path: str, offset: int | None) -> None:
        self._driver, self._path = driver, path
        with driver._lock:
            file = driver._files.get(path)
            if file is None:
                file = driver._files[path] = _File(bytearray(), driver._clock())
            if offset is not None:
                del file.data[offset:]
                file.modified = driver._clock()
        self._file = file

    @property
    def size(self) -> int:
        return len(self._file.data)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        with self._driver._lock:
            self._file.data += data
            self._file.modified = self._driver._clock()
        return len(data)

    def truncate(self, size: int) -> None:
        with self._driver._lock:
            del self._file.data[size:]
            self._file.modified = self._driver._clock()

    def commit(self) -> None:
        pass

    def cancel(self) -> None:
        with self._driver._lock:
            if self._driver._files.get(self._path) is self._file:
                del self._driver._files[self._path]

    def close(self) -> None:
        pass


class MemoryDriver:
    """A StorageDriver in memory. ``clock`` gives the modification times (``time.time``)."""

    name = "memory"
    remote = False

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._files: dict[str, _File] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def get_content(self, path: str) -> bytes:
        with self._lock:
            file = self._files.get(check_path(path))
            if file is None:
                raise PathNotFound(path)
            return bytes(file.data)

    def put_content(self, path: str, data: bytes) -> None:
        with self._lock:
            self._files[check_path(path)] = _File(bytearray(data), self._clock())

    def reader(self, path: str, offset: int = 0) -> BinaryIO:
        """A snapshot of the file's bytes from ``offset`` (later writes do not show)."""
        f = io.BytesIO(self.get_content(path))
        f.seek(offset)
        return f

    def writer(self, path: str, offset: int | None = None) -> _MemWriter:
        """Append to ``path`` (created if missing); ``offset`` first truncates it to that size."""
        return _MemWriter(self, check_path(path), offset)

    def stat(self, path: str) -> FileInfo | None:
        """A file's size and time; a directory's time is its newest file's."""
        path = check_path(path)
        with self._lock:
            file = self._files.get(path)
            if file is not None:
                return FileInfo(len(file.data), file.modified)
            prefix = path.rstrip("/") + "/"
            times = [f.modified for p, f in self._files.items() if p.startswith(prefix)]
        return FileInfo(0, max(times), is_dir=True) if times else None

    def list(self, path: str) -> list[str]:
        prefix = check_path(path).rstrip("/") + "/"
        with self._lock:
            return sorted({p[len(prefix):].split("/", 1)[0] for p in self._files if p.startswith(prefix)})

    def walk(self, path: str) -> Iterator[tuple[str, FileInfo]]:
        """Every file under ``path`` (recursively, sorted), with its stat, read at one moment."""
        prefix = check_path(path).rstrip("/") + "/"
        with self._lock:
            found = sorted(
                (p, FileInfo(len(f.data), f.modified)) for p, f in self._files.items() if p.startswith(prefix)
            )
        yield from found

    def move(self, source: str, dest: str) -> None:
        check_path(dest)
        with self._lock:
            file = self._files.pop(check_path(source), None)
            if file is None:
                raise PathNotFound(source)
            file.modified = self._clock()  # like a rename's ctime
            self._files[dest] = file

    def delete(self, path: str) -> None:
        """Remove a file or a whole directory; missing paths are fine."""
        prefix = check_path(path).rstrip("/") + "/"
        with self._lock:
            self._files.pop(path, None)
            for p in [p for p in self._files if p.startswith(prefix)]:
                del self._files[p]

    def url_for(self, path: str, expires: int) -> str | None:
        """None: clients read blobs through the registry."""
        return None
