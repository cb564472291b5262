"""Storage drivers: the :class:`StorageDriver` seam (``base``) and one backend per module.

* ``filesystem``: :class:`FilesystemDriver`, the one a registry runs on (fsync, writeback,
  durable renames);
* ``memory``: :class:`MemoryDriver`, a real in-process backend (tests, throwaway registries).

Every backend passes the same suite (``tests/unit/registry/storage``).
"""

from registry.storage.driver.base import FileInfo, FileWriter, PathNotFound, StorageDriver
from registry.storage.driver.filesystem import FilesystemDriver
from registry.storage.driver.memory import MemoryDriver

__all__ = ["FileInfo", "FileWriter", "FilesystemDriver", "MemoryDriver", "PathNotFound", "StorageDriver"]
