"""Fixtures the integration tests share (the session server itself is in tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.support.registry import RegistryClient
from tests.support.server import Dockyard


@pytest.fixture
def reg(dockyard: Dockyard) -> RegistryClient:
    """An HTTP client of the session server's registry, acting as the test admin."""
    return RegistryClient(dockyard)
