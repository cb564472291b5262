"""The storage driver seam: a few path-based methods every backend implements.

Like Distribution's ``storagedriver``, a driver knows paths and bytes, nothing of digests or
repositories. Paths are ``/``-separated, relative to the driver's root, and never contain
``..``. Blocking calls (``FileWriter.write``/``commit``, ``move``, ``reader``, ``walk``) are
cheap on a local disk for small objects; the blob layer runs the long ones in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol, TypeVar

__all__ = ["FileInfo", "FileWriter", "PathNotFound", "StorageDriver", "check_path", "off_loop"]

T = TypeVar("T")


class PathNotFound(FileNotFoundError):
    """The path does not exist in the driver."""


@dataclass(frozen=True)
class FileInfo:
    """What ``stat`` knows of a path. ``modified`` (seconds since the epoch) is the last time
    the path's bytes or its name changed: a ``move`` into place counts as a change (on a
    filesystem, the later of mtime and ctime). A directory has size 0."""

    size: int
    modified: float
    is_dir: bool = False


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
    """Bytes under paths. Missing paths raise :class:`PathNotFound` from ``get_content``,
    ``reader`` and ``move``; ``stat`` answers None, ``list`` and ``walk`` nothing, ``delete``
    does nothing. Directories exist while something lies under them (a filesystem may keep
    empty ones)."""

    name: str
    # True when calls wait on a network (S3): the blob layer then keeps every call off the
    # event loop, and blob GETs stream from ``reader`` (or redirect) rather than ``sendfile``
    remote: bool

    def get_content(self, path: str) -> bytes: ...

    def put_content(self, path: str, data: bytes) -> None: ...

    def reader(self, path: str, offset: int = 0) -> BinaryIO: ...

    def writer(self, path: str, offset: int | None = None) -> FileWriter: ...

    def stat(self, path: str) -> FileInfo | None: ...

    def list(self, path: str) -> list[str]: ...

    def walk(self, path: str) -> Iterator[tuple[str, FileInfo]]: ...

    def move(self, source: str, dest: str) -> None: ...

    def delete(self, path: str) -> None: ...

    def url_for(self, path: str, expires: int) -> str | None:
        """A URL a client may GET ``path`` from directly for ``expires`` seconds (a pre-signed
        S3 URL), or None where the backend has none (Distribution's ``RedirectURL``)."""
        ...


def check_path(path: str) -> str:
    """``path`` if it stays under the root; raises ValueError otherwise."""
    if path.startswith("/") or ".." in path.split("/") or "\0" in path:
        raise ValueError(f"invalid storage path {path!r}")
    return path


async def off_loop(driver: StorageDriver, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)``: in a worker thread when ``driver`` is remote (S3: round trips the event
    loop must not wait on), inline on a local one (a stat or an unlink costs less than the
    thread hop)."""
    if driver.remote:
        return await asyncio.to_thread(fn, *args)
    return fn(*args)
