"""The pull-through cache's single flight, and what it answers where no rule applies."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.store import Store
from registry.metadata import Metadata, StoredManifest
from registry.part import MIGRATIONS
from registry.pullthrough.cache import PullThrough
from registry.storage.blobs import BlobStore
from registry.storage.driver import MemoryDriver

# the data module's SQL on both state backends (tests/conftest.py: state_backend)
pytestmark = pytest.mark.usefixtures("state_backend")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store.open(tmp_path / "state.db", MIGRATIONS)
    yield store
    store.close()


@pytest.fixture
def cache(store: Store) -> PullThrough:
    meta = Metadata(store)
    return PullThrough(meta, BlobStore(MemoryDriver(), meta))


async def test_concurrent_asks_share_one_flight_and_a_leaving_waiter_does_not_cancel_it(cache):
    started = 0
    release = asyncio.Event()

    async def fetch() -> str:
        nonlocal started
        started += 1
        await release.wait()
        return "fetched"

    waiters = [asyncio.create_task(cache._single(("blob", "d"), fetch)) for _ in range(5)]
    await asyncio.sleep(0)
    waiters[0].cancel()  # a client that went away
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*waiters[1:]) == ["fetched"] * 4
    assert started == 1
    assert cache._flights == {}  # done: the next ask starts anew
    assert await cache._single(("blob", "d"), fetch) == "fetched" and started == 2


async def test_a_failed_flight_fails_every_waiter_and_is_forgotten(cache):
    async def fetch() -> str:
        await asyncio.sleep(0)
        raise LookupError("upstream down")

    results = await asyncio.gather(*(cache._single(("m",), fetch) for _ in range(3)), return_exceptions=True)
    assert [type(r) for r in results] == [LookupError] * 3
    assert cache._flights == {}


async def test_without_a_rule_the_registry_answers_alone(cache):
    held = StoredManifest("sha256:" + "a" * 64, "application/vnd.oci.image.manifest.v1+json", b"{}")
    assert await cache.manifest("shop/web", "v1", held) is held
    assert await cache.manifest("shop/web", "v1", None) is None
    assert await cache.blob("shop/web", "sha256:" + "b" * 64) is False
