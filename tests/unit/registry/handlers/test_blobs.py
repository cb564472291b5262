"""Blob pushes (monolithic, chunked, mounted) and pulls through the HTTP layer, in process."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from registry.handlers import Registry
from registry.reference import parse_digest
from tests.unit.registry.handlers.conftest import error_codes, push_blob, sha256


async def test_a_monolithic_push_is_pulled_back_whole_and_in_ranges(client: TestClient) -> None:
    digest = await push_blob(client, "shop/web", b"0123456789")
    r = await client.get(f"/v2/shop/web/blobs/{digest}")
    assert r.status == 200 and await r.read() == b"0123456789"
    assert r.headers["Docker-Content-Digest"] == digest
    assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    r = await client.get(f"/v2/shop/web/blobs/{digest}", headers={"Range": "bytes=2-4"})
    assert r.status == 206 and await r.read() == b"234"
    assert r.headers["Content-Range"] == "bytes 2-4/10"
    r = await client.head(f"/v2/shop/web/blobs/{digest}")
    assert r.status == 200 and r.headers["Content-Length"] == "10"


async def test_a_chunked_push_acknowledges_each_chunk_and_commits_on_put(
    served: tuple[TestClient, Registry],
) -> None:
    client, registry = served
    r = await client.post("/v2/shop/web/blobs/uploads/")
    assert r.status == 202 and r.headers["Range"] == "0-0"
    location = r.headers["Location"]
    r = await client.patch(location, data=b"hello ", headers={"Content-Range": "0-5"})
    assert r.status == 202 and r.headers["Range"] == "0-5"
    r = await client.patch(location, data=b"again", headers={"Content-Range": "0-4"})
    assert r.status == 416 and await error_codes(r) == ["RANGE_INVALID"]
    assert r.headers["Range"] == "0-5"
    r = await client.get(location)
    assert r.status == 204 and r.headers["Range"] == "0-5"
    digest = sha256(b"hello world")
    r = await client.put(f"{location}?digest={digest}", data=b"world")
    assert r.status == 201 and r.headers["Location"] == f"/v2/shop/web/blobs/{digest}"
    assert await (await client.get(f"/v2/shop/web/blobs/{digest}")).read() == b"hello world"
    parsed = parse_digest(digest)
    assert parsed is not None
    info = registry.blobs.stat(parsed)  # the bytes are in the memory driver, once
    assert info is not None and info.size == 11
    assert registry.blobs.driver.list("uploads") == []
    assert (await client.get(location)).status == 404


async def test_a_wrong_digest_is_refused_and_nothing_is_stored(served: tuple[TestClient, Registry]) -> None:
    client, registry = served
    wrong = sha256(b"other bytes")
    r = await client.post(f"/v2/r/blobs/uploads/?digest={wrong}", data=b"these bytes")
    assert r.status == 400 and await error_codes(r) == ["DIGEST_INVALID"]
    assert (await client.head(f"/v2/r/blobs/{wrong}")).status == 404
    assert registry.blobs.files() == {}


async def test_a_mount_links_a_blob_of_another_repository(client: TestClient) -> None:
    digest = await push_blob(client, "a", b"shared layer")
    assert (await client.head(f"/v2/b/blobs/{digest}")).status == 404
    r = await client.post(f"/v2/b/blobs/uploads/?mount={digest}&from=a")
    assert r.status == 201 and r.headers["Docker-Content-Digest"] == digest
    assert await (await client.get(f"/v2/b/blobs/{digest}")).read() == b"shared layer"
    r = await client.post(f"/v2/c/blobs/uploads/?mount={sha256(b'nobody has it')}&from=a")
    assert r.status == 202  # nothing to mount: an upload starts instead


async def test_deleting_a_blob_unlinks_it_from_that_repository_only(client: TestClient) -> None:
    digest = await push_blob(client, "a", b"layer")
    await push_blob(client, "b", b"layer")
    r = await client.delete(f"/v2/a/blobs/{digest}")
    assert r.status == 202
    assert (await client.get(f"/v2/a/blobs/{digest}")).status == 404
    assert (await client.get(f"/v2/b/blobs/{digest}")).status == 200
    r = await client.delete(f"/v2/a/blobs/{digest}")
    assert r.status == 404 and await error_codes(r) == ["BLOB_UNKNOWN"]


async def test_bad_requests_get_their_oci_error_codes(client: TestClient) -> None:
    r = await client.get("/v2/r/blobs/sha256:nothex")
    assert r.status == 400 and await error_codes(r) == ["DIGEST_INVALID"]
    r = await client.get("/v2/Bad_Name/blobs/" + sha256(b"x"))
    assert r.status == 400 and await error_codes(r) == ["NAME_INVALID"]
    r = await client.patch("/v2/r/blobs/uploads/" + "0" * 32, data=b"x")
    assert r.status == 404 and await error_codes(r) == ["BLOB_UPLOAD_UNKNOWN"]
    r = await client.request("PATCH", "/v2/r/blobs/" + sha256(b"x"))
    assert r.status == 405 and await error_codes(r) == ["UNSUPPORTED"]
    r = await client.get("/v2/r/nothing/here")
    assert r.status == 404 and await error_codes(r) == ["NOT_FOUND"]
