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


def test_an_emptied_repository_is_removed_from_the_catalog_by_dockyard_registry_rm_repo(
    fresh_dockyard,
) -> None:
    import hashlib
    import json
    import subprocess

    from tests.support.registry import skopeo_ref
    from tests.support.registry_auth import ensure_admin

    server = fresh_dockyard.start()
    reg = RegistryClient(server)
    layer = uuid.uuid4().bytes * 64
    reg.push_image("shop/old", "v1", [layer])
    reg.push_image("shop/forced", "v1", [uuid.uuid4().bytes])
    reg.push_image("shop/kept", "v1", [b"kept"])
    catalog = reg.get("/v2/_catalog").json()["repositories"]
    assert catalog == ["shop/forced", "shop/kept", "shop/old"]

    data = ["--data-dir", str(server.data_dir)]
    refused = server.cli("registry", "rm-repo", "shop/old", *data)
    assert refused.returncode == 1 and "holds 1 manifests and 1 tags" in refused.stderr
    assert "--force" in refused.stderr
    creds = ":".join(ensure_admin(server))
    subprocess.run(["skopeo", "delete", "--tls-verify=false", f"--creds={creds}",
                    skopeo_ref(server, "shop/old:v1")], check=True, capture_output=True, timeout=120)
    assert reg.get("/v2/shop/old/tags/list").json()["tags"] == []
    removed = server.cli("registry", "rm-repo", "shop/old", *data)
    assert removed.returncode == 0, removed.stderr
    assert "removed repository shop/old (empty)" in removed.stdout and str(server.data_dir) in removed.stdout
    forced = server.cli("registry", "rm-repo", "shop/forced", "--force", *data)
    assert forced.returncode == 0 and "1 manifests, 1 tags" in forced.stdout
    assert reg.get("/v2/_catalog").json()["repositories"] == ["shop/kept"]
    assert reg.get("/v2/shop/old/tags/list").status_code == 404
    again = server.cli("registry", "rm-repo", "shop/old", *data)
    assert again.returncode == 1 and "no repository shop/old" in again.stderr

    # its blobs are garbage now, the kept repository's are not
    gc = server.cli("registry", "gc", "--grace", "0", "--json", *data)
    assert gc.returncode == 0, gc.stderr
    deleted = json.loads(gc.stdout)["blobs_deleted"]
    assert "sha256:" + hashlib.sha256(layer).hexdigest() in deleted
    assert reg.get("/v2/shop/kept/manifests/v1").status_code == 200
