import json

import pytest

from registry.manifest import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    ManifestError,
    parse_manifest,
)

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64


def _image(media_type: str = OCI_MANIFEST, **extra: object) -> dict:
    return {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": D1, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": D2, "size": 10}],
        **extra,
    }


def _parse(doc: object, content_type: str | None = OCI_MANIFEST) -> object:
    return parse_manifest(json.dumps(doc).encode(), content_type)


def test_an_image_manifest_needs_its_config_and_layers() -> None:
    m = _parse(_image())
    assert m.media_type == OCI_MANIFEST
    assert [b.digest for b in m.blobs] == [D1, D2]
    assert m.children == ()
    assert m.artifact_type == "application/vnd.oci.image.config.v1+json"


def test_an_artifact_type_and_subject_are_kept_for_referrers() -> None:
    subject = {"mediaType": OCI_MANIFEST, "digest": D3, "size": 5}
    m = _parse(_image(artifactType="application/vnd.example", subject=subject, annotations={"k": "v"}))
    assert m.artifact_type == "application/vnd.example"
    assert m.subject is not None and m.subject.digest == D3
    assert m.annotations == {"k": "v"}


def test_an_index_needs_its_child_manifests() -> None:
    doc = {"schemaVersion": 2, "mediaType": OCI_INDEX,
           "manifests": [{"mediaType": OCI_MANIFEST, "digest": D3, "size": 100}]}
    m = _parse(doc, OCI_INDEX)
    assert [c.digest for c in m.children] == [D3]
    assert m.blobs == ()


def test_docker_manifests_and_lists_are_accepted() -> None:
    assert _parse(_image(DOCKER_MANIFEST), DOCKER_MANIFEST).media_type == DOCKER_MANIFEST
    doc = {"schemaVersion": 2, "mediaType": DOCKER_LIST,
           "manifests": [{"mediaType": DOCKER_MANIFEST, "digest": D3, "size": 100}]}
    assert _parse(doc, DOCKER_LIST).media_type == DOCKER_LIST


def test_the_media_type_comes_from_the_body_when_content_type_is_absent() -> None:
    assert _parse(_image(), None).media_type == OCI_MANIFEST


def test_foreign_layers_need_not_be_present() -> None:
    doc = _image(DOCKER_MANIFEST)
    doc["layers"].append({"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                          "digest": D3, "size": 1, "urls": ["https://example.com/layer"]})
    assert [b.digest for b in _parse(doc, DOCKER_MANIFEST).blobs] == [D1, D2]


@pytest.mark.parametrize("mutate", [
    lambda d: d.update(schemaVersion=1),
    lambda d: d.update(mediaType=OCI_INDEX),
    lambda d: d.pop("config"),
    lambda d: d["layers"][0].update(digest="sha256:bad"),
    lambda d: d["layers"][0].update(size=-1),
    lambda d: d["layers"][0].update(size=True),
    lambda d: d["layers"][0].pop("mediaType"),
    lambda d: d.update(layers="nope"),
    lambda d: d.update(annotations={"k": 1}),
    lambda d: d.update(subject={"digest": D3}),
    lambda d: d.update(manifests=[]),
])
def test_invalid_image_manifests_raise(mutate) -> None:
    doc = _image()
    mutate(doc)
    with pytest.raises(ManifestError):
        _parse(doc)


@pytest.mark.parametrize("body, content_type", [
    (b"not json", OCI_MANIFEST),
    (b"[]", OCI_MANIFEST),
    (b"\xff\xfe", OCI_MANIFEST),
    (json.dumps(_image()).encode(), "application/x-unknown"),
    (json.dumps(_image()).encode(), "application/vnd.docker.distribution.manifest.v1+prettyjws"),
])
def test_bodies_that_are_not_manifests_raise(body: bytes, content_type: str) -> None:
    with pytest.raises(ManifestError):
        parse_manifest(body, content_type)
