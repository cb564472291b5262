"""OCI conformance, push workflow: every upload flavour, mounts, and manifest validation."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.support.registry import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    RegistryClient,
    canonical,
    descriptor,
    sha256,
)


@pytest.fixture
def name() -> str:
    return f"push/{uuid.uuid4().hex[:10]}"


def _start(reg: RegistryClient, name: str) -> str:
    r = reg.post(f"/v2/{name}/blobs/uploads/")
    assert r.status_code == 202, r.text
    assert r.headers["Docker-Upload-UUID"]
    return r.headers["Location"]


def _assert_blob(reg: RegistryClient, name: str, data: bytes) -> None:
    r = reg.get(f"/v2/{name}/blobs/{sha256(data)}")
    assert (r.status_code, r.content) == (200, data)


def test_a_monolithic_post_with_digest_stores_the_blob(reg: RegistryClient, name: str) -> None:
    data = b"monolithic"
    r = reg.post(f"/v2/{name}/blobs/uploads/", params={"digest": sha256(data)}, data=data)
    assert r.status_code == 201
    assert r.headers["Location"] == f"/v2/{name}/blobs/{sha256(data)}"
    assert r.headers["Docker-Content-Digest"] == sha256(data)
    _assert_blob(reg, name, data)


def test_post_then_put_with_the_whole_body_stores_the_blob(reg: RegistryClient, name: str) -> None:
    data = b"post then put"
    location = _start(reg, name)
    r = reg.put(location, params={"digest": sha256(data)}, data=data)
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == f"/v2/{name}/blobs/{sha256(data)}"
    _assert_blob(reg, name, data)


def test_a_streamed_patch_then_put_stores_the_blob(reg: RegistryClient, name: str) -> None:
    data = b"x" * 3_000_000
    location = _start(reg, name)
    r = reg.patch(location, data=(data[i : i + 65536] for i in range(0, len(data), 65536)))
    assert r.status_code == 202, r.text
    assert r.headers["Range"] == f"0-{len(data) - 1}"
    r = reg.put(r.headers["Location"], params={"digest": sha256(data)})
    assert r.status_code == 201, r.text
    _assert_blob(reg, name, data)


def test_chunked_patches_with_content_range_then_put_store_the_blob(reg: RegistryClient, name: str) -> None:
    data = bytes(range(256)) * 100
    location = _start(reg, name)
    for start in range(0, len(data), 10_000):
        chunk = data[start : start + 10_000]
        r = reg.patch(location, data=chunk, headers={
            "Content-Range": f"{start}-{start + len(chunk) - 1}",
            "Content-Type": "application/octet-stream",
        })
        assert r.status_code == 202, r.text
        assert r.headers["Range"] == f"0-{start + len(chunk) - 1}"
        location = r.headers["Location"]
    r = reg.put(location, params={"digest": sha256(data)})
    assert r.status_code == 201, r.text
    _assert_blob(reg, name, data)


def test_a_final_chunk_may_come_with_the_put(reg: RegistryClient, name: str) -> None:
    data = b"first half|second half"
    location = _start(reg, name)
    r = reg.patch(location, data=data[:11], headers={"Content-Range": "0-10"})
    assert r.status_code == 202
    r = reg.put(location, params={"digest": sha256(data)}, data=data[11:], headers={
        "Content-Range": f"11-{len(data) - 1}",
    })
    assert r.status_code == 201, r.text
    _assert_blob(reg, name, data)


def test_a_started_upload_advertises_a_minimum_chunk_length_that_chunks_can_follow(
    reg: RegistryClient, name: str
) -> None:
    r = reg.post(f"/v2/{name}/blobs/uploads/")
    assert r.status_code == 202, r.text
    minimum = int(r.headers["OCI-Chunk-Min-Length"])
    assert minimum == 1024 * 1024
    data = bytes(range(256)) * ((2 * minimum + 1000) // 256)
    location = r.headers["Location"]
    for start in range(0, len(data), minimum):  # two full chunks, then a short last one
        chunk = data[start : start + minimum]
        r = reg.patch(location, data=chunk, headers={"Content-Range": f"{start}-{start + len(chunk) - 1}"})
        assert r.status_code == 202, r.text
        assert "OCI-Chunk-Min-Length" not in r.headers
        location = r.headers["Location"]
    r = reg.put(location, params={"digest": sha256(data)})
    assert r.status_code == 201, r.text
    _assert_blob(reg, name, data)
    mounted = reg.post(f"/v2/{name}-copy/blobs/uploads/", params={"mount": sha256(data), "from": name})
    assert mounted.status_code == 201 and "OCI-Chunk-Min-Length" not in mounted.headers


@pytest.mark.parametrize("bad_start", ["repeated", "gap", "before"])
def test_an_out_of_order_or_repeated_chunk_answers_416_and_keeps_the_upload(
    reg: RegistryClient, name: str, bad_start: str
) -> None:
    data = b"a" * 100 + b"b" * 100
    location = _start(reg, name)
    assert reg.patch(location, data=data[:100], headers={"Content-Range": "0-99"}).status_code == 202
    start = {"repeated": 0, "gap": 150, "before": 50}[bad_start]
    r = reg.patch(location, data=data[start : start + 50], headers={"Content-Range": f"{start}-{start + 49}"})
    assert r.status_code == 416
    assert r.json()["errors"][0]["code"] == "RANGE_INVALID"
    status = reg.get(location)
    assert (status.status_code, status.headers["Range"]) == (204, "0-99")
    assert reg.patch(location, data=data[100:], headers={"Content-Range": "100-199"}).status_code == 202
    assert reg.put(location, params={"digest": sha256(data)}).status_code == 201
    _assert_blob(reg, name, data)


def test_upload_status_answers_204_with_range_and_location(reg: RegistryClient, name: str) -> None:
    location = _start(reg, name)
    reg.patch(location, data=b"12345", headers={"Content-Range": "0-4"})
    r = reg.get(location)
    assert r.status_code == 204
    assert r.headers["Range"] == "0-4"
    assert r.headers["Location"] == location
    assert r.headers["Docker-Upload-UUID"] == location.rsplit("/", 1)[1]


def test_a_cancelled_upload_is_gone(reg: RegistryClient, name: str) -> None:
    location = _start(reg, name)
    reg.patch(location, data=b"abandoned")
    assert reg.delete(location).status_code == 204
    r = reg.get(location)
    assert (r.status_code, r.json()["errors"][0]["code"]) == (404, "BLOB_UPLOAD_UNKNOWN")
    assert reg.put(location, params={"digest": sha256(b"abandoned")}).status_code == 404


def test_a_wrong_digest_stores_nothing_and_ends_the_upload(reg: RegistryClient, name: str) -> None:
    data, claimed = b"actual bytes", sha256(b"other bytes")
    location = _start(reg, name)
    reg.patch(location, data=data)
    r = reg.put(location, params={"digest": claimed})
    assert (r.status_code, r.json()["errors"][0]["code"]) == (400, "DIGEST_INVALID")
    assert reg.get(f"/v2/{name}/blobs/{claimed}").status_code == 404
    assert reg.get(f"/v2/{name}/blobs/{sha256(data)}").status_code == 404
    assert reg.get(location).status_code == 404
    r = reg.post(f"/v2/{name}/blobs/uploads/", params={"digest": claimed}, data=data)
    assert (r.status_code, r.json()["errors"][0]["code"]) == (400, "DIGEST_INVALID")
    assert reg.head(f"/v2/{name}/blobs/{claimed}").status_code == 404


def test_a_blob_is_mounted_from_another_repository(reg: RegistryClient, name: str) -> None:
    data = uuid.uuid4().bytes * 10
    digest = reg.push_blob(f"{name}/source", data)
    r = reg.post(f"/v2/{name}/dest/blobs/uploads/", params={"mount": digest, "from": f"{name}/source"})
    assert r.status_code == 201
    assert r.headers["Location"] == f"/v2/{name}/dest/blobs/{digest}"
    assert r.headers["Docker-Content-Digest"] == digest
    _assert_blob(reg, f"{name}/dest", data)


def test_a_blob_is_mounted_without_from_when_some_readable_repository_has_it(
    reg: RegistryClient, name: str
) -> None:
    data = uuid.uuid4().bytes * 10
    digest = reg.push_blob(f"{name}/elsewhere", data)
    r = reg.post(f"/v2/{name}/auto/blobs/uploads/", params={"mount": digest})
    assert r.status_code == 201
    _assert_blob(reg, f"{name}/auto", data)


def test_a_mount_that_cannot_be_done_starts_an_upload_instead(reg: RegistryClient, name: str) -> None:
    data = uuid.uuid4().bytes
    digest = sha256(data)
    r = reg.post(f"/v2/{name}/blobs/uploads/", params={"mount": digest, "from": f"{name}/nowhere"})
    assert r.status_code == 202
    r = reg.put(r.headers["Location"], params={"digest": digest}, data=data)
    assert r.status_code == 201
    _assert_blob(reg, name, data)


def _image(reg: RegistryClient, name: str, *, push_layer: bool = True) -> dict:
    config, layer = b"{}", uuid.uuid4().bytes
    reg.push_blob(name, config)
    if push_layer:
        reg.push_blob(name, layer)
    return {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": [descriptor(OCI_LAYER, layer)],
    }


def test_a_manifest_put_by_tag_and_by_digest_answers_201_with_location_and_digest(
    reg: RegistryClient, name: str
) -> None:
    body = canonical(_image(reg, name))
    for ref in ("v1", sha256(body)):
        r = reg.push_manifest(name, ref, body)
        assert r.status_code == 201, r.text
        assert r.headers["Docker-Content-Digest"] == sha256(body)
        assert r.headers["Location"] == f"/v2/{name}/manifests/{sha256(body)}"


def test_a_manifest_naming_a_missing_blob_is_refused(reg: RegistryClient, name: str) -> None:
    r = reg.push_manifest(name, "v1", _image(reg, name, push_layer=False))
    assert (r.status_code, r.json()["errors"][0]["code"]) == (400, "MANIFEST_BLOB_UNKNOWN")
    assert reg.get(f"/v2/{name}/manifests/v1").status_code == 404


def test_an_index_naming_a_missing_manifest_is_refused(reg: RegistryClient, name: str) -> None:
    missing = sha256(uuid.uuid4().bytes)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX,
             "manifests": [{"mediaType": OCI_MANIFEST, "digest": missing, "size": 10}]}
    r = reg.push_manifest(name, "idx", index, OCI_INDEX)
    assert (r.status_code, r.json()["errors"][0]["code"]) == (400, "MANIFEST_BLOB_UNKNOWN")


@pytest.mark.parametrize("case", [
    "not json", "json list", "schema 1", "unknown media type", "media type mismatch", "bad layer digest",
    "negative size", "config missing",
])
def test_invalid_manifests_are_refused_with_manifest_invalid(
    reg: RegistryClient, name: str, case: str
) -> None:
    doc = _image(reg, name)
    media_type = OCI_MANIFEST
    body: bytes | None = None
    if case == "not json":
        body = b"{this is not json"
    elif case == "json list":
        body = b"[1, 2]"
    elif case == "schema 1":
        doc["schemaVersion"] = 1
    elif case == "unknown media type":
        media_type = "application/vnd.example.unknown+json"
        doc.pop("mediaType")
    elif case == "media type mismatch":
        media_type = OCI_INDEX
    elif case == "bad layer digest":
        doc["layers"][0]["digest"] = "sha256:xyz"
    elif case == "negative size":
        doc["layers"][0]["size"] = -1
    elif case == "config missing":
        doc.pop("config")
    r = reg.push_manifest(name, "bad", body if body is not None else canonical(doc), media_type)
    assert (r.status_code, r.json()["errors"][0]["code"]) == (400, "MANIFEST_INVALID")
    assert reg.get(f"/v2/{name}/manifests/bad").status_code == 404


def test_a_manifest_put_by_digest_must_hash_to_that_digest(reg: RegistryClient, name: str) -> None:
    body = canonical(_image(reg, name))
    r = reg.push_manifest(name, sha256(body + b" "), body)
    assert (r.status_code, r.json()["errors"][0]["code"]) == (400, "DIGEST_INVALID")


def test_a_manifest_over_4_mib_answers_413_size_invalid(reg: RegistryClient, name: str) -> None:
    doc = _image(reg, name)
    doc["annotations"] = {"padding": "x" * (4 * 1024 * 1024)}
    r = reg.push_manifest(name, "huge", doc)
    assert (r.status_code, r.json()["errors"][0]["code"]) == (413, "SIZE_INVALID")
    doc["annotations"] = {"padding": "x" * (4 * 1024 * 1024 - 1000)}
    body = canonical(doc)
    assert len(body) <= 4 * 1024 * 1024
    assert reg.push_manifest(name, "big", body).status_code == 201
    assert reg.get(f"/v2/{name}/manifests/big").content == body


def test_a_manifest_body_is_kept_byte_for_byte(reg: RegistryClient, name: str) -> None:
    body = json.dumps(_image(reg, name), indent=3).encode() + b"\n"
    r = reg.push_manifest(name, "pretty", body)
    assert r.status_code == 201
    assert reg.get(f"/v2/{name}/manifests/pretty").content == body
