"""Manifests, tags and the catalog through the HTTP layer, in process; and read-only mode."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from registry.ecr import data as registry_data
from registry.handlers import Registry
from tests.unit.registry.handlers.conftest import (
    OCI_MANIFEST,
    error_codes,
    manifest,
    push_blob,
    push_image,
    sha256,
)


async def test_a_manifest_put_by_tag_is_got_by_tag_and_by_digest(client: TestClient) -> None:
    digest, body = await push_image(client, "shop/web", "v1", b"layer one")
    for ref in ("v1", digest):
        r = await client.get(f"/v2/shop/web/manifests/{ref}", headers={"Accept": OCI_MANIFEST})
        assert r.status == 200 and await r.read() == body
        assert r.headers["Content-Type"] == OCI_MANIFEST and r.headers["Docker-Content-Digest"] == digest
    index = "application/vnd.oci.image.index.v1+json"
    r = await client.get("/v2/shop/web/manifests/v1", headers={"Accept": index})
    assert r.status == 404 and await error_codes(r) == ["MANIFEST_UNKNOWN"]


async def test_a_manifest_naming_a_missing_blob_is_refused(client: TestClient) -> None:
    await push_blob(client, "r", b"config")
    body = manifest(b"config", b"never pushed")
    r = await client.put("/v2/r/manifests/v1", data=body, headers={"Content-Type": OCI_MANIFEST})
    assert r.status == 400 and await error_codes(r) == ["MANIFEST_BLOB_UNKNOWN"]
    r = await client.put("/v2/r/manifests/v1", data=b"{not json", headers={"Content-Type": OCI_MANIFEST})
    assert r.status == 400 and await error_codes(r) == ["MANIFEST_INVALID"]
    assert (await client.get("/v2/r/manifests/v1")).status == 404


async def test_tags_list_pages_with_n_and_last_and_a_link(client: TestClient) -> None:
    for tag in ("c", "a", "b"):
        await push_image(client, "r", tag, b"same layer")
    r = await client.get("/v2/r/tags/list")
    assert await r.json() == {"name": "r", "tags": ["a", "b", "c"]}
    r = await client.get("/v2/r/tags/list?n=2")
    assert (await r.json())["tags"] == ["a", "b"]
    assert r.headers["Link"] == '</v2/r/tags/list?n=2&last=b>; rel="next"'
    assert (await (await client.get("/v2/r/tags/list?n=2&last=b")).json())["tags"] == ["c"]
    r = await client.get("/v2/r/tags/list?n=-1")
    assert r.status == 400 and await error_codes(r) == ["PAGINATION_NUMBER_INVALID"]
    r = await client.get("/v2/unknown/tags/list")
    assert r.status == 404 and await error_codes(r) == ["NAME_UNKNOWN"]
    assert (await (await client.get("/v2/_catalog")).json()) == {"repositories": ["r"]}


async def test_deleting_a_tag_keeps_the_manifest_and_deleting_the_manifest_drops_its_tags(
    client: TestClient,
) -> None:
    digest, _ = await push_image(client, "r", "v1", b"layer")
    r = await client.put("/v2/r/manifests/v2", data=(await (await client.get("/v2/r/manifests/v1")).read()),
                         headers={"Content-Type": OCI_MANIFEST})
    assert r.status == 201
    assert (await client.delete("/v2/r/manifests/v1")).status == 202
    assert (await client.get("/v2/r/manifests/v1")).status == 404
    assert (await client.get(f"/v2/r/manifests/{digest}")).status == 200
    assert (await client.delete(f"/v2/r/manifests/{digest}")).status == 202
    assert (await client.get("/v2/r/manifests/v2")).status == 404
    r = await client.delete(f"/v2/r/manifests/{digest}")
    assert r.status == 404 and await error_codes(r) == ["MANIFEST_UNKNOWN"]


async def test_a_read_only_registry_answers_reads_and_refuses_writes_with_unsupported(
    client: TestClient, read_only_client: TestClient
) -> None:
    digest, body = await push_image(client, "r", "v1", b"layer")
    ro = read_only_client
    assert await (await ro.get("/v2/r/manifests/v1")).read() == body
    assert (await (await ro.get("/v2/r/tags/list")).json())["tags"] == ["v1"]
    assert (await ro.head(f"/v2/r/manifests/{digest}")).status == 200
    layer = sha256(b"layer")
    assert await (await ro.get(f"/v2/r/blobs/{layer}")).read() == b"layer"
    writes = [
        ("POST", f"/v2/r/blobs/uploads/?digest={sha256(b'x')}"),
        ("PUT", "/v2/r/manifests/v2"),
        ("DELETE", "/v2/r/manifests/v1"),
        ("DELETE", f"/v2/r/blobs/{layer}"),
        ("PATCH", "/v2/r/blobs/uploads/" + "0" * 32),
    ]
    for method, path in writes:
        r = await ro.request(method, path, data=b"x")
        assert r.status == 405 and await error_codes(r) == ["UNSUPPORTED"], (method, path)
        assert "read-only" in (await r.json())["errors"][0]["detail"]
    assert (await ro.get("/v2/r/manifests/v1")).status == 200
    assert (await ro.get(f"/v2/r/blobs/{layer}")).status == 200


async def test_a_put_by_digest_with_tag_parameters_sets_every_tag_and_names_them_in_oci_tag(
    client: TestClient,
) -> None:
    digest, body = await push_image(client, "r", "first", b"layer")
    r = await client.put(f"/v2/r/manifests/{digest}?tag=v1&tag=latest&tag=v1", data=body,
                         headers={"Content-Type": OCI_MANIFEST})
    assert r.status == 201, await r.text()
    assert r.headers.getall("OCI-Tag") == ["v1", "latest"]
    assert (await (await client.get("/v2/r/tags/list")).json())["tags"] == ["first", "latest", "v1"]
    for tag in ("v1", "latest"):
        assert (await client.get(f"/v2/r/manifests/{tag}")).headers["Docker-Content-Digest"] == digest


async def test_one_invalid_tag_parameter_sets_none_of_them(client: TestClient) -> None:
    digest, body = await push_image(client, "r", "first", b"layer")
    r = await client.put(f"/v2/r/manifests/{digest}?tag=ok&tag=-bad", data=body,
                         headers={"Content-Type": OCI_MANIFEST})
    assert r.status == 400 and await error_codes(r) == ["TAG_INVALID"]
    assert "OCI-Tag" not in r.headers
    assert (await (await client.get("/v2/r/tags/list")).json())["tags"] == ["first"]


async def test_a_put_by_tag_answers_no_oci_tag_header(client: TestClient) -> None:
    _, body = await push_image(client, "r", "first", b"layer")
    headers = {"Content-Type": OCI_MANIFEST}
    r = await client.put("/v2/r/manifests/second?tag=third", data=body, headers=headers)
    assert r.status == 201 and "OCI-Tag" not in r.headers
    assert (await (await client.get("/v2/r/tags/list")).json())["tags"] == ["first", "second"]


async def test_an_immutable_tag_is_not_moved_by_a_put_but_pushes_by_digest_and_repeats_work(
    served: tuple[TestClient, Registry],
) -> None:
    client, registry = served
    first, body = await push_image(client, "shop/fixed", "v1", b"layer one")
    await registry_data.update(registry.meta.store, "shop/fixed", tag_mutability="IMMUTABLE")
    again = await client.put("/v2/shop/fixed/manifests/v1", data=body, headers={"Content-Type": OCI_MANIFEST})
    assert again.status == 201  # the same image under the same tag: nothing moves
    await push_blob(client, "shop/fixed", b"layer two")
    other = manifest(b'{"architecture":"amd64"}', b"layer two")
    headers = {"Content-Type": OCI_MANIFEST}
    refused = await client.put("/v2/shop/fixed/manifests/v1", data=other, headers=headers)
    assert refused.status == 400
    error = (await refused.json())["errors"][0]
    assert error["code"] == "TAG_INVALID"
    assert error["message"] == (
        "The image tag 'v1' already exists in the 'shop/fixed' repository and cannot be overwritten because"
        " the repository is immutable."
    )
    by_digest = await client.put(
        f"/v2/shop/fixed/manifests/{sha256(other)}", data=other, headers={"Content-Type": OCI_MANIFEST}
    )
    assert by_digest.status == 201
    assert registry.meta.manifest_by_tag("shop/fixed", "v1").digest == first


async def test_with_create_on_push_off_a_push_to_an_unknown_repository_is_name_unknown(
    served: tuple[TestClient, Registry],
) -> None:
    client, registry = served
    registry.create_on_push = False
    r = await client.post("/v2/nowhere/blobs/uploads/")
    assert r.status == 404
    assert await error_codes(r) == ["NAME_UNKNOWN"]
