"""Real clients against the registry: docker push/pull, skopeo copies in both formats and back
out to an ``oci:`` layout, an oras artifact found through the referrers API, and images
pushed by one client pulled byte-identical by another. Every test runs once per storage
driver: on the session server (local disk) and on ``s3_dockyard`` (blobs in a SeaweedFS
bucket, blob GETs redirected to pre-signed URLs, which docker, skopeo and oras follow)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.images import build_image, busybox_image
from tests.support.registry import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    RegistryClient,
    docker_pull,
    docker_push,
    docker_rmi,
    oras_registry,
    sha256,
    skopeo_copy,
    skopeo_ref,
)
from tests.support.server import Dockyard

ACCEPT = ", ".join([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST])


@pytest.fixture(params=["disk", "s3"])
def dockyard(request: pytest.FixtureRequest, dockyard: Dockyard) -> Dockyard:
    """The registry under test: the session server, then the one on S3."""
    return dockyard if request.param == "disk" else request.getfixturevalue("s3_dockyard")


@pytest.fixture
def pushed(dockyard: Dockyard) -> Iterator[list[str]]:
    """Names of images a test tags for the registry; removed from the local engine after it."""
    names: list[str] = []
    yield names
    if names:
        docker_rmi(*names)


@pytest.fixture(scope="module")
def image(docker_engine: str) -> Iterator[str]:
    """A locally built three-layer image (busybox base, a RUN layer, a COPY layer)."""
    tag = f"dockyard-test/multilayer:{uuid.uuid4().hex[:8]}"
    busybox_image()
    build_image(
        tag,
        "FROM dockyard-test/busybox:latest\nRUN echo built > /built.txt\nCOPY payload.bin /payload.bin\n",
        {"payload.bin": hashlib.sha256(tag.encode()).digest() * 4096},
    )
    yield tag
    docker_rmi(tag)


def _image_id(ref: str) -> str:
    return subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", ref], capture_output=True, text=True, check=True
    ).stdout.strip()


def _manifest(reg: RegistryClient, name: str, ref: str) -> tuple[dict, bytes]:
    r = reg.get(f"/v2/{name}/manifests/{ref}", headers={"Accept": ACCEPT})
    assert r.status_code == 200, r.text
    return r.json(), r.content


def _layers_match_blobs(
    reg: RegistryClient, name: str, manifest: dict, blob_dir: Path, config: bool = True
) -> None:
    """Every blob of ``manifest`` in the registry equals the file named by its digest hex
    (the config too unless ``config`` is false: a conversion to OCI rewrites it)."""
    for desc in [manifest["config"]] * config + manifest["layers"]:
        served = reg.get(f"/v2/{name}/blobs/{desc['digest']}", allow_redirects=True).content
        assert sha256(served) == desc["digest"]
        assert (blob_dir / desc["digest"].split(":")[1]).read_bytes() == served


def test_docker_pushes_and_pulls_a_multi_layer_image(
    dockyard: Dockyard, image: str, pushed: list[str]
) -> None:
    name = f"clients/docker-{uuid.uuid4().hex[:6]}"
    remote = docker_push(dockyard, image, f"{name}:v1")
    pushed.append(remote)
    reg = RegistryClient(dockyard)
    manifest, _ = _manifest(reg, name, "v1")
    assert manifest["mediaType"] == DOCKER_MANIFEST
    assert len(manifest["layers"]) == 3
    assert manifest["config"]["digest"] == _image_id(image)
    docker_rmi(remote)
    docker_pull(dockyard, f"{name}:v1")
    assert _image_id(remote) == _image_id(image)


@pytest.mark.parametrize("fmt, media_type", [("v2s2", DOCKER_MANIFEST), ("oci", OCI_MANIFEST)])
def test_skopeo_copies_a_docker_archive_in_and_back_out_to_an_oci_layout(
    dockyard: Dockyard, image: str, tmp_path: Path, fmt: str, media_type: str
) -> None:
    archive = tmp_path / "image.tar"
    subprocess.run(["docker", "save", "-o", str(archive), image], check=True, capture_output=True)
    name = f"clients/skopeo-{fmt}-{uuid.uuid4().hex[:6]}"
    skopeo_copy(dockyard, f"docker-archive:{archive}", skopeo_ref(dockyard, f"{name}:v1"), "--format", fmt)
    reg = RegistryClient(dockyard)
    manifest, _ = _manifest(reg, name, "v1")
    assert manifest["mediaType"] == media_type
    assert len(manifest["layers"]) == 3
    layout = tmp_path / "layout"
    skopeo_copy(dockyard, skopeo_ref(dockyard, f"{name}:v1"), f"oci:{layout}:v1")
    index = json.loads((layout / "index.json").read_text())
    assert [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]] == ["v1"]
    out_digest = index["manifests"][0]["digest"]
    out = json.loads((layout / "blobs/sha256" / out_digest.split(":")[1]).read_bytes())
    assert [d["digest"] for d in out["layers"]] == [d["digest"] for d in manifest["layers"]]
    _layers_match_blobs(reg, name, manifest, layout / "blobs/sha256", config=fmt == "oci")


def test_an_image_pushed_by_docker_is_pulled_byte_identical_by_skopeo(
    dockyard: Dockyard, image: str, tmp_path: Path, pushed: list[str]
) -> None:
    name = f"clients/cross-{uuid.uuid4().hex[:6]}"
    pushed.append(docker_push(dockyard, image, f"{name}:v1"))
    reg = RegistryClient(dockyard)
    manifest, body = _manifest(reg, name, "v1")
    out = tmp_path / "dir"
    skopeo_copy(dockyard, skopeo_ref(dockyard, f"{name}:v1"), f"dir:{out}")
    assert (out / "manifest.json").read_bytes() == body
    _layers_match_blobs(reg, name, manifest, out)


def test_an_image_pushed_by_skopeo_is_pulled_by_docker_with_the_same_layers(
    dockyard: Dockyard, image: str, tmp_path: Path, pushed: list[str]
) -> None:
    archive = tmp_path / "image.tar"
    subprocess.run(["docker", "save", "-o", str(archive), image], check=True, capture_output=True)
    name = f"clients/reverse-{uuid.uuid4().hex[:6]}"
    skopeo_copy(dockyard, f"docker-archive:{archive}", skopeo_ref(dockyard, f"{name}:v1"), "--format", "v2s2")
    pushed.append(docker_pull(dockyard, f"{name}:v1"))
    assert _image_id(pushed[0]) == _image_id(image)
    _, body = _manifest(RegistryClient(dockyard), name, "v1")
    out = tmp_path / "again"
    skopeo_copy(dockyard, skopeo_ref(dockyard, f"{name}:v1"), f"dir:{out}")
    assert (out / "manifest.json").read_bytes() == body


def test_oras_pushes_an_artifact_with_a_subject_found_through_referrers(
    dockyard: Dockyard, image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pushed: list[str]
) -> None:
    import oras.oci

    name = f"clients/oras-{uuid.uuid4().hex[:6]}"
    pushed.append(docker_push(dockyard, image, f"{name}:v1"))
    reg = RegistryClient(dockyard)
    _, body = _manifest(reg, name, "v1")
    subject = oras.oci.Subject(mediaType=DOCKER_MANIFEST, digest=sha256(body), size=len(body))
    monkeypatch.chdir(tmp_path)
    Path("sbom.json").write_text(json.dumps({"packages": ["busybox"], "id": name}))
    Path("config.json").write_text("{}")
    provider = oras_registry(dockyard, name)
    target = f"{dockyard.registry}/{name}:sbom"
    r = provider.push(
        target, files=["sbom.json:application/vnd.example.sbom+json"], subject=subject,
        manifest_config="config.json:application/vnd.example.sbom.config", quiet=True,
    )
    assert r.status_code == 201
    artifact_digest = r.headers["Docker-Content-Digest"]
    assert r.headers["OCI-Subject"] == sha256(body)
    referrers = reg.get(f"/v2/{name}/referrers/{sha256(body)}").json()
    assert [m["digest"] for m in referrers["manifests"]] == [artifact_digest]
    assert referrers["manifests"][0]["artifactType"] == "application/vnd.example.sbom.config"
    out = tmp_path / "pulled"
    files = provider.pull(target=f"{dockyard.registry}/{name}@{artifact_digest}", outdir=str(out))
    assert [Path(f).read_bytes() for f in files] == [Path("sbom.json").read_bytes()]
