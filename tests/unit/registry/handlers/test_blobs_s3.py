"""Blob pushes and pulls through the real handlers over the S3 driver on a real S3 server
(SeaweedFS): chunked uploads across requests, streamed and ranged GETs, 307 redirects to a
pre-signed URL (``blob_redirect``), and a blob deleted from the bucket behind the registry's
back answered BLOB_UNKNOWN, never a 500 or a short body."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from dockyard.store import Store
from registry.handlers import Registry
from registry.reference import parse_digest
from registry.storage.driver.s3 import MIN_PART, S3Driver
from registry.storage.paths import blob_path
from tests.support.seaweed import SeaweedS3, s3_driver
from tests.unit.registry.handlers.conftest import _serve, push_blob, sha256


@pytest.fixture
def s3(seaweed: SeaweedS3) -> S3Driver:
    return s3_driver(seaweed, seaweed.bucket("dockyard-handlers"), f"h/{uuid.uuid4().hex}")


@pytest.fixture
async def on_s3(store: Store, s3: S3Driver) -> AsyncIterator[tuple[TestClient, Registry]]:
    async for pair in _serve(store, s3, read_only=False):
        yield pair


async def test_a_chunked_upload_across_requests_is_pulled_back_whole_and_in_ranges(on_s3) -> None:
    client, _ = on_s3
    data = os.urandom(MIN_PART + 4321)
    r = await client.post("/v2/shop/web/blobs/uploads/")
    assert r.status == 202
    location = r.headers["Location"]
    cut = MIN_PART + 1000  # two PATCH requests: the second resumes on a server-side copy
    for start, end in ((0, cut), (cut, len(data))):
        r = await client.patch(location, data=data[start:end], headers={
            "Content-Range": f"{start}-{end - 1}", "Content-Type": "application/octet-stream",
        })
        assert r.status == 202, await r.text()
        assert r.headers["Range"] == f"0-{end - 1}"
        location = r.headers["Location"]
    digest = sha256(data)
    sep = "&" if "?" in location else "?"
    r = await client.put(f"{location}{sep}digest={digest}")
    assert r.status == 201, await r.text()
    r = await client.get(f"/v2/shop/web/blobs/{digest}")
    assert r.status == 200 and await r.read() == data
    r = await client.get(f"/v2/shop/web/blobs/{digest}", headers={"Range": "bytes=10-19"})
    assert r.status == 206 and await r.read() == data[10:20]
    assert r.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    r = await client.head(f"/v2/shop/web/blobs/{digest}")
    assert r.status == 200 and int(r.headers["Content-Length"]) == len(data)


async def test_with_redirects_a_get_is_a_307_to_a_presigned_url_that_serves_the_blob(on_s3) -> None:
    client, registry = on_s3
    registry.redirect_expiry = 600
    digest = await push_blob(client, "shop/web", b"layer bytes")
    r = await client.get(f"/v2/shop/web/blobs/{digest}", allow_redirects=False)
    assert r.status == 307
    assert r.headers["Docker-Content-Digest"] == digest
    url = r.headers["Location"]
    assert "X-Amz-Signature=" in url or "Signature=" in url
    async with aiohttp.ClientSession() as plain, plain.get(url) as answer:
        assert answer.status == 200 and await answer.read() == b"layer bytes"


@pytest.mark.parametrize("redirect", [False, True])
async def test_a_blob_deleted_from_the_bucket_is_blob_unknown_and_logged(
    on_s3, s3: S3Driver, redirect: bool, caplog: pytest.LogCaptureFixture
) -> None:
    client, registry = on_s3
    registry.redirect_expiry = 600 if redirect else None
    digest = await push_blob(client, "shop/web", b"soon gone")
    s3.client.delete_object(Bucket=s3.bucket, Key=s3.key(blob_path(parse_digest(digest))))
    with caplog.at_level(logging.ERROR, logger="dockyard.registry"):
        for method in ("GET", "HEAD"):
            r = await client.request(method, f"/v2/shop/web/blobs/{digest}", allow_redirects=False)
            assert r.status == 404, method
            if method == "GET":
                assert (await r.json())["errors"][0]["code"] == "BLOB_UNKNOWN"
    assert sum("blob missing from storage" in rec.getMessage() for rec in caplog.records) == 2
