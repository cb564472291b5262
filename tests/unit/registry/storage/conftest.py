"""Every test of the storage layer runs once per backend: the ``driver`` fixture is
parametrised over the filesystem driver (the default), the in-memory one and the S3 one on a
real S3 server (SeaweedFS, the session's ``seaweed`` fixture), each test under a prefix of its own."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from registry.storage.driver import FilesystemDriver, MemoryDriver, StorageDriver
from tests.support.seaweed import SeaweedS3, s3_driver

BACKENDS = ["filesystem", "memory", "s3"]
BUCKET = "dockyard-unit"


@pytest.fixture(scope="session")
def s3_bucket(seaweed: SeaweedS3) -> str:
    return seaweed.bucket(BUCKET)


@pytest.fixture(params=BACKENDS)
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> StorageDriver:
    if request.param == "memory":
        return MemoryDriver()
    if request.param == "s3":
        server = request.getfixturevalue("seaweed")
        return s3_driver(server, request.getfixturevalue("s3_bucket"), f"t/{uuid.uuid4().hex}")
    return FilesystemDriver(tmp_path / "registry")
