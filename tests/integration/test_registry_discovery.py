"""OCI conformance, content discovery: tags and catalog pagination, the referrers API."""

from __future__ import annotations

import uuid

import pytest

from tests.support.registry import OCI_INDEX, OCI_MANIFEST, RegistryClient, canonical, descriptor, sha256


@pytest.fixture
def name() -> str:
    return f"discover/{uuid.uuid4().hex[:10]}"


def _tag_all(reg: RegistryClient, name: str, tags: list[str]) -> str:
    digest, body = reg.push_image(name, tags[0], [b"tagged layer"])
    for tag in tags[1:]:
        assert reg.push_manifest(name, tag, body).status_code == 201
    return digest


def test_tags_list_returns_every_tag_in_lexical_order(reg: RegistryClient, name: str) -> None:
    tags = ["v2", "latest", "v10", "A1", "v1"]
    _tag_all(reg, name, tags)
    r = reg.get(f"/v2/{name}/tags/list")
    assert r.status_code == 200
    assert r.json() == {"name": name, "tags": sorted(tags)}
    assert "Link" not in r.headers


def test_tags_list_pages_with_n_and_last_and_links_to_the_next_page(reg: RegistryClient, name: str) -> None:
    tags = [f"t{i:02d}" for i in range(7)]
    _tag_all(reg, name, tags)
    seen: list[str] = []
    path = f"/v2/{name}/tags/list?n=3"
    pages = 0
    while path:
        r = reg.get(path)
        assert r.status_code == 200
        page = r.json()["tags"]
        assert len(page) <= 3
        seen += page
        pages += 1
        link = r.headers.get("Link")
        path = link[1:link.index(">")] if link else ""
        if link:
            assert link.endswith('rel="next"')
    assert seen == tags
    assert pages == 3


def test_last_excludes_the_tag_itself(reg: RegistryClient, name: str) -> None:
    _tag_all(reg, name, ["a", "b", "c", "d"])
    assert reg.get(f"/v2/{name}/tags/list", params={"last": "b"}).json()["tags"] == ["c", "d"]
    assert reg.get(f"/v2/{name}/tags/list", params={"n": 1, "last": "b"}).json()["tags"] == ["c"]
    assert reg.get(f"/v2/{name}/tags/list", params={"n": 0}).json()["tags"] == []
    assert reg.get(f"/v2/{name}/tags/list", params={"last": "d"}).json()["tags"] == []


def test_tags_of_an_unknown_repository_answer_404_name_unknown(reg: RegistryClient, name: str) -> None:
    r = reg.get(f"/v2/{name}/tags/list")
    assert (r.status_code, r.json()["errors"][0]["code"]) == (404, "NAME_UNKNOWN")


@pytest.mark.parametrize("n", ["-1", "abc", "1.5"])
def test_a_malformed_page_size_answers_400(reg: RegistryClient, name: str, n: str) -> None:
    _tag_all(reg, name, ["v1"])
    r = reg.get(f"/v2/{name}/tags/list", params={"n": n})
    assert (r.status_code, r.json()["errors"][0]["code"]) == (400, "PAGINATION_NUMBER_INVALID")


def test_the_catalog_lists_repositories_with_the_same_pagination(reg: RegistryClient) -> None:
    prefix = f"catalog{uuid.uuid4().hex[:8]}"
    names = [f"{prefix}/r{i}" for i in range(5)]
    for repo in names:
        reg.push_blob(repo, b"catalog member")
    r = reg.get("/v2/_catalog", params={"n": 2, "last": f"{prefix}/"})
    assert r.json()["repositories"] == names[:2]
    link = r.headers["Link"]
    assert link.endswith('rel="next"')
    r = reg.get(link[1:link.index(">")])
    assert r.json()["repositories"] == names[2:4]
    everything = reg.get("/v2/_catalog").json()["repositories"]
    assert [n for n in everything if n.startswith(prefix)] == names


def _artifact(reg: RegistryClient, name: str, subject: dict, artifact_type: str) -> tuple[str, bytes]:
    payload = uuid.uuid4().bytes
    reg.push_blob(name, payload)
    reg.push_blob(name, b"{}")
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": descriptor("application/vnd.oci.empty.v1+json", b"{}"),
        "layers": [descriptor("application/octet-stream", payload)],
        "subject": subject,
        "annotations": {"org.example.kind": artifact_type},
    }
    body = canonical(doc)
    r = reg.push_manifest(name, sha256(body), body)
    assert r.status_code == 201, r.text
    assert r.headers["OCI-Subject"] == subject["digest"]
    return sha256(body), body


def test_referrers_lists_manifests_whose_subject_is_the_digest(reg: RegistryClient, name: str) -> None:
    digest, body = reg.push_image(name, "v1", [b"subject image"])
    subject = {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(body)}
    sig, sig_body = _artifact(reg, name, subject, "application/vnd.example.signature")
    sbom, _ = _artifact(reg, name, subject, "application/vnd.example.sbom")
    r = reg.get(f"/v2/{name}/referrers/{digest}")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == OCI_INDEX
    index = r.json()
    assert index["schemaVersion"] == 2 and index["mediaType"] == OCI_INDEX
    found = {m["digest"]: m for m in index["manifests"]}
    assert set(found) == {sig, sbom}
    assert found[sig] == {
        "mediaType": OCI_MANIFEST,
        "digest": sig,
        "size": len(sig_body),
        "artifactType": "application/vnd.example.signature",
        "annotations": {"org.example.kind": "application/vnd.example.signature"},
    }
    assert "OCI-Filters-Applied" not in r.headers


def test_referrers_filter_by_artifact_type_and_say_so(reg: RegistryClient, name: str) -> None:
    digest, body = reg.push_image(name, "v1", [b"filtered subject"])
    subject = {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(body)}
    sig, _ = _artifact(reg, name, subject, "application/vnd.example.signature")
    _artifact(reg, name, subject, "application/vnd.example.sbom")
    wanted = "application/vnd.example.signature"
    r = reg.get(f"/v2/{name}/referrers/{digest}", params={"artifactType": wanted})
    assert r.headers["OCI-Filters-Applied"] == "artifactType"
    assert [m["digest"] for m in r.json()["manifests"]] == [sig]


def test_a_manifest_may_name_a_subject_the_registry_does_not_hold(reg: RegistryClient, name: str) -> None:
    absent = sha256(uuid.uuid4().bytes)
    subject = {"mediaType": OCI_MANIFEST, "digest": absent, "size": 123}
    ref, _ = _artifact(reg, name, subject, "application/vnd.example.early")
    r = reg.get(f"/v2/{name}/referrers/{absent}")
    assert [m["digest"] for m in r.json()["manifests"]] == [ref]


def test_referrers_of_an_unknown_digest_is_an_empty_index(reg: RegistryClient, name: str) -> None:
    r = reg.get(f"/v2/{name}/referrers/{sha256(uuid.uuid4().bytes)}")
    assert r.status_code == 200
    assert r.json() == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}


def test_referrers_of_a_malformed_digest_answers_400(reg: RegistryClient, name: str) -> None:
    r = reg.get(f"/v2/{name}/referrers/sha256:nothex")
    assert (r.status_code, r.json()["errors"][0]["code"]) == (400, "DIGEST_INVALID")
