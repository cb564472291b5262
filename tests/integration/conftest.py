"""Fixtures the integration tests share (the session server itself is in tests/conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.images import build_image, busybox_image
from tests.support.registry import RegistryClient, docker_rmi
from tests.support.registry_auth import DockerLogin
from tests.support.seaweed import ACCESS_KEY, SECRET_KEY, SeaweedS3
from tests.support.server import Dockyard


@pytest.fixture
def reg(dockyard: Dockyard) -> RegistryClient:
    """An HTTP client of the session server's registry, acting as the test admin."""
    return RegistryClient(dockyard)


@pytest.fixture
def docker() -> Iterator[DockerLogin]:
    login = DockerLogin()
    try:
        yield login
    finally:
        login.close()


@pytest.fixture(scope="module")
def images() -> Iterator[tuple[str, str]]:
    """Two local images with content of their own."""
    tags = [f"dockyard-test/ecr-{uuid.uuid4().hex[:8]}:latest" for _ in range(2)]
    for tag in tags:
        build_image(
            tag, f"FROM {busybox_image()}\nCOPY marker /marker\n", {"marker": uuid.uuid4().bytes * 64}
        )
    yield tags[0], tags[1]
    docker_rmi(*tags)


S3_BUCKET = "dockyard-integration"


def s3_env(seaweed: SeaweedS3, bucket: str = S3_BUCKET, **extra: str) -> dict[str, str]:
    """The settings of a ``dockyard up`` that keeps its blobs in ``bucket`` on ``seaweed``."""
    return {
        "DOCKYARD_BLOB_URL": f"s3://{bucket}/registry", "DOCKYARD_S3_ENDPOINT": seaweed.endpoint,
        "DOCKYARD_S3_ACCESS_KEY_ID": ACCESS_KEY, "DOCKYARD_S3_SECRET_ACCESS_KEY": SECRET_KEY,
        "DOCKYARD_S3_REGION": "us-east-1", **extra,
    }


@pytest.fixture(scope="session")
def s3_dockyard(
    tmp_path_factory: pytest.TempPathFactory, docker_engine: str, seaweed: SeaweedS3
) -> Iterator[Dockyard]:
    """A second ``dockyard up`` whose blobs live in a SeaweedFS bucket, with blob GETs answered
    by 307 redirects to pre-signed URLs (``blob_redirect``), shared by the registry tests that
    run once per storage driver (``on_each_driver``)."""
    seaweed.bucket(S3_BUCKET)
    env = s3_env(seaweed, DOCKYARD_BLOB_REDIRECT="true")
    server = Dockyard(tmp_path_factory.mktemp("dockyard-s3") / "data", env=env).start()
    try:
        yield server
    finally:
        server.stop()
