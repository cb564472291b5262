"""OCI conformance, pull workflow: base check, manifests and blobs by tag and digest, ranges."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from tests.support.registry import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_LIST,
    DOCKER_MANIFEST,
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
    return f"pull/{uuid.uuid4().hex[:10]}"


def test_base_check_answers_200_with_the_api_version(reg: RegistryClient) -> None:
    r = reg.get("/v2/")
    assert r.status_code == 200
    assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_a_pushed_image_is_pulled_by_tag_and_by_digest_with_its_digest_header(
    reg: RegistryClient, name: str
) -> None:
    digest, body = reg.push_image(name, "v1", [b"layer one", b"layer two"])
    for ref in ("v1", digest):
        r = reg.get(f"/v2/{name}/manifests/{ref}", headers={"Accept": OCI_MANIFEST})
        assert r.status_code == 200
        assert r.content == body
        assert r.headers["Docker-Content-Digest"] == digest == sha256(body)
        assert r.headers["Content-Type"] == OCI_MANIFEST
        h = reg.head(f"/v2/{name}/manifests/{ref}")
        assert h.status_code == 200
        assert h.headers["Docker-Content-Digest"] == digest
        assert int(h.headers["Content-Length"]) == len(body)
        assert h.content == b""


def test_blobs_are_pulled_whole_and_by_head_with_their_digest(reg: RegistryClient, name: str) -> None:
    data = b"some blob bytes" * 1000
    digest = reg.push_blob(name, data)
    r = reg.get(f"/v2/{name}/blobs/{digest}")
    assert r.status_code == 200
    assert r.content == data
    assert r.headers["Docker-Content-Digest"] == digest
    h = reg.head(f"/v2/{name}/blobs/{digest}")
    assert h.status_code == 200
    assert int(h.headers["Content-Length"]) == len(data)
    assert h.headers["Docker-Content-Digest"] == digest


def test_a_range_request_answers_206_with_exactly_those_bytes(reg: RegistryClient, name: str) -> None:
    data = bytes(range(256)) * 40
    digest = reg.push_blob(name, data)
    for header, want in (
        ("bytes=10-19", data[10:20]),
        ("bytes=100-", data[100:]),
        ("bytes=-5", data[-5:]),
        ("bytes=10000-99999", data[10000:]),
    ):
        r = reg.get(f"/v2/{name}/blobs/{digest}", headers={"Range": header})
        assert r.status_code == 206, header
        assert r.content == want, header
        start = len(data) - len(want)
        if header == "bytes=10-19":
            start = 10
        assert r.headers["Content-Range"] == f"bytes {start}-{start + len(want) - 1}/{len(data)}"


@pytest.mark.parametrize(
    "header", ["bytes=999999-", "bytes=20-10", "bytes=abc", "items=0-1", "bytes=-0", "bytes=-"]
)
def test_an_unsatisfiable_or_malformed_range_answers_416_not_a_dropped_connection(
    reg: RegistryClient, name: str, header: str
) -> None:
    digest = reg.push_blob(name, b"0123456789")
    r = reg.get(f"/v2/{name}/blobs/{digest}", headers={"Range": header})
    assert r.status_code == 416
    assert r.json()["errors"][0]["code"] == "RANGE_INVALID"
    assert r.headers["Content-Range"] == "bytes */10"


def test_unknown_blobs_and_manifests_answer_404_with_their_codes(reg: RegistryClient, name: str) -> None:
    missing = sha256(uuid.uuid4().bytes)
    r = reg.get(f"/v2/{name}/blobs/{missing}")
    assert (r.status_code, r.json()["errors"][0]["code"]) == (404, "BLOB_UNKNOWN")
    assert reg.head(f"/v2/{name}/blobs/{missing}").status_code == 404
    r = reg.get(f"/v2/{name}/manifests/{missing}")
    assert (r.status_code, r.json()["errors"][0]["code"]) == (404, "MANIFEST_UNKNOWN")
    r = reg.get(f"/v2/{name}/manifests/nosuchtag")
    assert (r.status_code, r.json()["errors"][0]["code"]) == (404, "MANIFEST_UNKNOWN")
    assert reg.head(f"/v2/{name}/manifests/nosuchtag").status_code == 404


def test_a_blob_is_readable_only_through_a_repository_it_is_linked_to(reg: RegistryClient, name: str) -> None:
    digest = reg.push_blob(name, b"private to one repository")
    assert reg.get(f"/v2/{name}/blobs/{digest}").status_code == 200
    assert reg.get(f"/v2/{name}-other/blobs/{digest}").status_code == 404


def test_docker_schema2_manifests_and_lists_round_trip_with_their_media_types(
    reg: RegistryClient, name: str
) -> None:
    config, layer = b'{"architecture":"amd64","os":"linux"}', b"docker layer"
    reg.push_blob(name, config)
    reg.push_blob(name, layer)
    manifest = canonical({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": descriptor(DOCKER_CONFIG, config),
        "layers": [descriptor(DOCKER_LAYER, layer)],
    })
    r = reg.push_manifest(name, "amd64", manifest, DOCKER_MANIFEST)
    assert r.status_code == 201, r.text
    listing = canonical({
        "schemaVersion": 2,
        "mediaType": DOCKER_LIST,
        "manifests": [
            descriptor(DOCKER_MANIFEST, manifest, platform={"architecture": "amd64", "os": "linux"})
        ],
    })
    r = reg.push_manifest(name, "multi", listing, DOCKER_LIST)
    assert r.status_code == 201, r.text
    for tag, body, media_type in (("amd64", manifest, DOCKER_MANIFEST), ("multi", listing, DOCKER_LIST)):
        r = reg.get(f"/v2/{name}/manifests/{tag}", headers={"Accept": f"{DOCKER_MANIFEST}, {DOCKER_LIST}"})
        assert r.status_code == 200
        assert (r.content, r.headers["Content-Type"]) == (body, media_type)


def test_an_oci_index_is_pulled_and_accept_without_its_type_is_refused(
    reg: RegistryClient, name: str
) -> None:
    digest, body = reg.push_image(name, "linux", [b"index child layer"])
    index = canonical({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": digest, "size": len(body)}],
    })
    assert reg.push_manifest(name, "idx", index, OCI_INDEX).status_code == 201
    r = reg.get(f"/v2/{name}/manifests/idx", headers={"Accept": OCI_INDEX})
    assert (r.status_code, r.content, r.headers["Content-Type"]) == (200, index, OCI_INDEX)
    r = reg.get(f"/v2/{name}/manifests/idx", headers={"Accept": DOCKER_MANIFEST})
    assert (r.status_code, r.json()["errors"][0]["code"]) == (404, "MANIFEST_UNKNOWN")
    assert reg.get(f"/v2/{name}/manifests/idx", headers={"Accept": "*/*"}).status_code == 200


def test_sha512_blobs_and_manifests_are_stored_and_pulled(reg: RegistryClient, name: str) -> None:
    data = b"hashed with sha512"
    digest = "sha512:" + hashlib.sha512(data).hexdigest()
    r = reg.post(f"/v2/{name}/blobs/uploads/", params={"digest": digest}, data=data)
    assert r.status_code == 201, r.text
    r = reg.get(f"/v2/{name}/blobs/{digest}")
    assert (r.status_code, r.content, r.headers["Docker-Content-Digest"]) == (200, data, digest)
    config = b"{}"
    reg.push_blob(name, config)
    body = canonical({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor("application/vnd.oci.image.config.v1+json", config),
        "layers": [{"mediaType": OCI_LAYER, "digest": digest, "size": len(data)}],
    })
    manifest_digest = "sha512:" + hashlib.sha512(body).hexdigest()
    r = reg.push_manifest(name, manifest_digest, body)
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == manifest_digest
    r = reg.get(f"/v2/{name}/manifests/{manifest_digest}")
    assert (r.status_code, r.content) == (200, body)
