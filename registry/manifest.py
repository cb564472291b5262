"""Pure parsing and validation of the manifests a registry accepts.

:func:`parse_manifest` takes the PUT body and its ``Content-Type`` and returns a
:class:`Manifest`: its media type, the blobs it needs present (config and layers), the child
manifests it needs present (index / manifest list), its subject and artifact type (for the
referrers API). It raises :class:`ManifestError` for anything invalid; the handler then checks
that each referenced blob or manifest exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dockyard import jsonbound
from registry.reference import is_digest

__all__ = [
    "DOCKER_LIST",
    "DOCKER_MANIFEST",
    "INDEX_TYPES",
    "MANIFEST_TYPES",
    "MAX_MANIFEST",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "Descriptor",
    "Manifest",
    "ManifestError",
    "parse_manifest",
]

MAX_MANIFEST = 4 * 1024 * 1024

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = IMAGE_TYPES | INDEX_TYPES

# Layers a registry need not hold (their ``urls`` say where they live).
_FOREIGN = frozenset({
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
})


class ManifestError(ValueError):
    """The manifest is invalid; ``str()`` says why."""


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None


@dataclass(frozen=True)
class Manifest:
    media_type: str
    blobs: tuple[Descriptor, ...] = ()
    children: tuple[Descriptor, ...] = ()
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)


def _descriptor(value: Any, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise ManifestError(f"{where} is not a descriptor")
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise ManifestError(f"{where} has no mediaType")
    if not isinstance(digest, str) or not is_digest(digest):
        raise ManifestError(f"{where} has an invalid digest")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestError(f"{where} has an invalid size")
    artifact_type = value.get("artifactType")
    annotations = value.get("annotations")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise ManifestError(f"{where} has an invalid artifactType")
    return Descriptor(media_type, digest, size, artifact_type, _annotations(annotations, where))


def _annotations(value: Any, where: str) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ManifestError(f"{where} has invalid annotations")
    return value


def _descriptors(doc: dict[str, Any], key: str, required: bool = True) -> list[Descriptor]:
    value = doc.get(key)
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise ManifestError(f"{key} must be a list")
    return [_descriptor(v, f"{key}[{i}]") for i, v in enumerate(value)]


def parse_manifest(body: bytes, content_type: str | None) -> Manifest:
    """Validate a manifest PUT body (see module docstring); raises ManifestError."""
    try:
        doc = jsonbound.loads(body)
    except jsonbound.JsonError as exc:
        raise ManifestError(str(exc)) from None
    if not isinstance(doc, dict):
        raise ManifestError("manifest is not a JSON object")
    if doc.get("schemaVersion") != 2:
        raise ManifestError("schemaVersion must be 2")
    declared = doc.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise ManifestError("mediaType must be a string")
    content_type = (content_type or "").split(";")[0].strip() or None
    media_type = content_type or declared
    if media_type is None:
        media_type = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    if media_type not in MANIFEST_TYPES:
        raise ManifestError(f"unsupported manifest media type {media_type!r}")
    if declared is not None and declared != media_type:
        raise ManifestError(f"mediaType {declared!r} does not match Content-Type {media_type!r}")
    if media_type in (DOCKER_MANIFEST, DOCKER_LIST) and declared is None:
        raise ManifestError("a Docker manifest must declare its mediaType")
    artifact_type = doc.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise ManifestError("artifactType must be a string")
    subject = _descriptor(doc["subject"], "subject") if doc.get("subject") is not None else None
    annotations = _annotations(doc.get("annotations"), "manifest") or {}
    if media_type in IMAGE_TYPES:
        if "manifests" in doc:
            raise ManifestError("an image manifest has no manifests list")
        config = _descriptor(doc.get("config"), "config")
        layers = _descriptors(doc, "layers", required=media_type == DOCKER_MANIFEST)
        needed = [config, *(d for d in layers if d.media_type not in _FOREIGN)]
        artifact_type = artifact_type or config.media_type
        return Manifest(media_type, tuple(needed), (), subject, artifact_type, annotations)
    if "layers" in doc or "config" in doc:
        raise ManifestError("an index has no config or layers")
    children = _descriptors(doc, "manifests")
    return Manifest(media_type, (), tuple(children), subject, artifact_type, annotations)
