"""OCI conformance, content management: deleting tags, manifests and blobs."""

from __future__ import annotations

import uuid

import pytest

from tests.support.registry import RegistryClient


@pytest.fixture
def name() -> str:
    return f"manage/{uuid.uuid4().hex[:10]}"


def test_deleting_a_tag_removes_only_the_tag(reg: RegistryClient, name: str) -> None:
    digest, body = reg.push_image(name, "v1", [b"kept manifest"])
    assert reg.push_manifest(name, "v2", body).status_code == 201
    assert reg.delete(f"/v2/{name}/manifests/v1").status_code == 202
    assert reg.get(f"/v2/{name}/manifests/v1").status_code == 404
    assert reg.get(f"/v2/{name}/manifests/{digest}").content == body
    assert reg.get(f"/v2/{name}/manifests/v2").status_code == 200
    assert reg.get(f"/v2/{name}/tags/list").json()["tags"] == ["v2"]


def test_deleting_a_manifest_by_digest_removes_it_and_its_tags(reg: RegistryClient, name: str) -> None:
    digest, _ = reg.push_image(name, "v1", [b"deleted manifest"])
    assert reg.delete(f"/v2/{name}/manifests/{digest}").status_code == 202
    for ref in (digest, "v1"):
        r = reg.get(f"/v2/{name}/manifests/{ref}")
        assert (r.status_code, r.json()["errors"][0]["code"]) == (404, "MANIFEST_UNKNOWN")
    assert reg.get(f"/v2/{name}/tags/list").json()["tags"] == []
    r = reg.delete(f"/v2/{name}/manifests/{digest}")
    assert (r.status_code, r.json()["errors"][0]["code"]) == (404, "MANIFEST_UNKNOWN")


def test_deleting_an_unknown_tag_answers_404(reg: RegistryClient, name: str) -> None:
    reg.push_image(name, "v1", [b"some"])
    r = reg.delete(f"/v2/{name}/manifests/nosuch")
    assert (r.status_code, r.json()["errors"][0]["code"]) == (404, "MANIFEST_UNKNOWN")


def test_deleting_a_blob_makes_it_unknown_to_that_repository_only(reg: RegistryClient, name: str) -> None:
    data = uuid.uuid4().bytes
    digest = reg.push_blob(f"{name}/a", data)
    reg.push_blob(f"{name}/b", data)
    assert reg.delete(f"/v2/{name}/a/blobs/{digest}").status_code == 202
    r = reg.get(f"/v2/{name}/a/blobs/{digest}")
    assert (r.status_code, r.json()["errors"][0]["code"]) == (404, "BLOB_UNKNOWN")
    assert reg.get(f"/v2/{name}/b/blobs/{digest}").content == data
    assert reg.delete(f"/v2/{name}/a/blobs/{digest}").status_code == 404
