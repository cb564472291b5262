"""OCI image layouts written by hand (``oci:DIR:TAG`` for skopeo): one image of given layers,
or an index of one image per platform."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from tests.support.registry import OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, canonical, descriptor

__all__ = ["image_layout", "index_layout"]


def _put(root: Path, *blobs: bytes) -> None:
    where = root / "blobs" / "sha256"
    where.mkdir(parents=True, exist_ok=True)
    for data in blobs:
        (where / hashlib.sha256(data).hexdigest()).write_bytes(data)


def _manifest(root: Path, layers: Sequence[bytes], arch: str) -> bytes:
    """Store an image of gzipped ``layers`` for linux/``arch``; its manifest's bytes."""
    config = canonical(
        {"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    )
    manifest = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [descriptor(OCI_LAYER + "+gzip", layer) for layer in layers],
        }
    )
    _put(root, config, *layers, manifest)
    return manifest


def _finish(root: Path, media_type: str, top: bytes, tag: str) -> Path:
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    ref = {**descriptor(media_type, top), "annotations": {"org.opencontainers.image.ref.name": tag}}
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [ref]}))
    return root


def image_layout(root: Path, layers: Sequence[bytes], tag: str = "1", arch: str = "amd64") -> Path:
    """A layout at ``root`` of one image (gzipped ``layers``, linux/``arch``) tagged ``tag``."""
    return _finish(root, OCI_MANIFEST, _manifest(root, layers, arch), tag)


def index_layout(root: Path, images: dict[str, Sequence[bytes]], tag: str = "1") -> tuple[Path, list[str]]:
    """A layout at ``root`` of an image index tagged ``tag`` naming one image per
    architecture of ``images`` (arch -> layers); with the children's digests, in order.
    Copy it with ``skopeo copy --all``."""
    children = []
    manifests = []
    for arch, layers in images.items():
        body = _manifest(root, layers, arch)
        platform = {"architecture": arch, "os": "linux"}
        manifests.append({**descriptor(OCI_MANIFEST, body), "platform": platform})
        children.append("sha256:" + hashlib.sha256(body).hexdigest())
    index = canonical({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})
    _put(root, index)
    return _finish(root, OCI_INDEX, index, tag), children
