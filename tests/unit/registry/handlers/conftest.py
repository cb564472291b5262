"""The registry's HTTP layer in process: the real handlers, dispatch and error middleware on an
aiohttp test server, over a memory driver and a temporary state store (no auth installed, so
every repository is open)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from dockyard.store import Store
from registry.handlers import Registry, mount
from registry.metadata import Metadata
from registry.part import MIGRATIONS
from registry.storage.blobs import BlobStore
from registry.storage.driver import MemoryDriver

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def manifest(config: bytes, *layers: bytes) -> bytes:
    """An OCI image manifest naming ``config`` and ``layers`` (canonical JSON bytes)."""
    def desc(media_type: str, data: bytes) -> dict[str, Any]:
        return {"mediaType": media_type, "digest": sha256(data), "size": len(data)}

    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": desc("application/vnd.oci.image.config.v1+json", config),
        "layers": [desc("application/vnd.oci.image.layer.v1.tar", layer) for layer in layers],
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store.open(tmp_path / "state.db", MIGRATIONS)
    yield store
    store.close()


@pytest.fixture
def driver() -> MemoryDriver:
    return MemoryDriver()


async def _serve(
    store: Store, driver: MemoryDriver, read_only: bool
) -> AsyncIterator[tuple[TestClient, Registry]]:
    meta = Metadata(store)
    registry = Registry(meta, BlobStore(driver, meta), read_only)
    app = web.Application()
    mount(app, registry)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client, registry
    finally:
        await client.close()


@pytest.fixture
async def served(store: Store, driver: MemoryDriver) -> AsyncIterator[tuple[TestClient, Registry]]:
    """A writable registry's client and layers."""
    async for pair in _serve(store, driver, read_only=False):
        yield pair


@pytest.fixture
async def client(served: tuple[TestClient, Registry]) -> TestClient:
    return served[0]


@pytest.fixture
async def read_only_client(store: Store, driver: MemoryDriver) -> AsyncIterator[TestClient]:
    """A read-only registry over the same store and storage as ``served``."""
    async for client, _ in _serve(store, driver, read_only=True):
        yield client


async def push_blob(client: TestClient, name: str, data: bytes) -> str:
    """A monolithic push (``POST ?digest=``); returns the digest."""
    digest = sha256(data)
    r = await client.post(f"/v2/{name}/blobs/uploads/?digest={digest}", data=data)
    assert r.status == 201, await r.text()
    return digest


async def push_image(client: TestClient, name: str, tag: str, *layers: bytes) -> tuple[str, bytes]:
    config = b'{"architecture":"amd64"}'
    for blob in (config, *layers):
        await push_blob(client, name, blob)
    body = manifest(config, *layers)
    r = await client.put(f"/v2/{name}/manifests/{tag}", data=body, headers={"Content-Type": OCI_MANIFEST})
    assert r.status == 201, await r.text()
    return r.headers["Docker-Content-Digest"], body


async def error_codes(r: Any) -> list[str]:
    return [e["code"] for e in (await r.json())["errors"]]
