"""Fixtures the integration tests share (the session server itself is in tests/conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.images import build_image, busybox_image
from tests.support.registry import RegistryClient, docker_rmi
from tests.support.registry_auth import DockerLogin
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
