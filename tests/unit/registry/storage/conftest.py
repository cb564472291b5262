"""Every test of the storage layer runs once per backend: the ``driver`` fixture is
parametrised over the filesystem driver (the default) and the in-memory one."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.storage.driver import FilesystemDriver, MemoryDriver, StorageDriver

BACKENDS = ["filesystem", "memory"]


@pytest.fixture(params=BACKENDS)
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> StorageDriver:
    if request.param == "memory":
        return MemoryDriver()
    return FilesystemDriver(tmp_path / "registry")
