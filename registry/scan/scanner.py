"""``scan_image``: catalog an image's layers and match the packages, one call, no disk writes.

The caller gives a :class:`BlobOpener` (``open(digest) -> binary stream``; the registry's
``BlobStore`` fits through :func:`blob_store_opener`), the manifest (bytes or parsed JSON) and a
:class:`~registry.scan.vulndb.data.VulnDB` (or None to catalog only). It is synchronous and CPU
bound: run it in a thread from asyncio. Failures raise ``ScanFailed``/``UnsupportedImage``.
"""

from __future__ import annotations

import json
from typing import Any, BinaryIO, Protocol

import registry.scan.analysers as analysers
import registry.scan.catalog as catalog
import registry.scan.layers as layers
import registry.scan.match as match
from registry.scan.model import ScanFailed, ScanResult, UnsupportedImage

__all__ = ["BlobOpener", "blob_store_opener", "catalog_layers", "layer_digests", "scan_image"]

_MANIFESTS = {
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
}
_INDEXES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}
_IMAGE_CONFIGS = {
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
}
_LAYER_PREFIXES = ("application/vnd.oci.image.layer.v1.tar", "application/vnd.docker.image.rootfs.diff.tar")


class BlobOpener(Protocol):
    def open(self, digest: str) -> BinaryIO:
        """A readable stream of the blob; raises LookupError/OSError when it is missing."""
        ...


def blob_store_opener(store: Any) -> BlobOpener:
    """Adapt a ``registry.storage.blobs.BlobStore`` (``open(Digest)``) to ``BlobOpener``."""
    from registry.reference import parse_digest

    class _Opener:
        def open(self, digest: str) -> BinaryIO:
            parsed = parse_digest(digest)
            if parsed is None:
                raise LookupError(digest)
            return store.open(parsed)  # type: ignore[no-any-return]

    return _Opener()


def layer_digests(manifest: bytes | dict[str, Any]) -> list[str]:
    """The layer digests of an image manifest, bottom first. Indexes, artifacts and foreign or
    unknown layer types raise UnsupportedImage."""
    try:
        doc = json.loads(manifest) if isinstance(manifest, bytes | str) else manifest
    except ValueError:
        raise UnsupportedImage("the manifest is not JSON") from None
    if not isinstance(doc, dict):
        raise UnsupportedImage("the manifest is not a JSON object")
    media = doc.get("mediaType") or ("application/vnd.oci.image.manifest.v1+json" if "layers" in doc else "")
    if media in _INDEXES or "manifests" in doc:
        raise UnsupportedImage("an image index: scan one of its platform manifests")
    if media not in _MANIFESTS or not isinstance(doc.get("layers"), list):
        raise UnsupportedImage(f"not an image manifest ({media or 'no mediaType'})")
    config = doc.get("config") if isinstance(doc.get("config"), dict) else {}
    if config.get("mediaType") and config["mediaType"] not in _IMAGE_CONFIGS:
        raise UnsupportedImage(f"an artifact, not an image (config {config['mediaType']})")
    out = []
    for layer in doc["layers"]:
        if not isinstance(layer, dict) or not isinstance(layer.get("digest"), str):
            raise UnsupportedImage("a layer without a digest")
        lm = layer.get("mediaType", "")
        if (lm and not lm.startswith(_LAYER_PREFIXES)) or "foreign" in lm or "nondistributable" in lm:
            raise UnsupportedImage(f"layer type {lm} is not scanned")
        out.append(layer["digest"])
    return out


def catalog_layers(blobs: list[BinaryIO], limits: layers.Limits | None = None) -> ScanResult:
    """Catalog layer streams given bottom first (no matching)."""
    lim = limits or layers.Limits()
    fs: layers.Filesystem = {}
    budget = [lim.max_captured_bytes]
    for i, blob in enumerate(blobs):
        layers.apply_layer(fs, blob, i, lim, analysers.analyse, budget)
    layers.check_symlinks(fs, lim)
    os_info, packages, notes = catalog.catalog(fs, lim)
    return ScanResult(os_info, tuple(packages), (), tuple(notes))


def scan_image(
    opener: BlobOpener, manifest: bytes | dict[str, Any], db: Any | None, limits: layers.Limits | None = None
) -> ScanResult:
    """Catalog the image ``manifest`` names (its layers through ``opener``) and match it
    against ``db`` (a ``VulnDB``; None: catalog only)."""
    digests = layer_digests(manifest)
    lim = limits or layers.Limits()
    fs: layers.Filesystem = {}
    budget = [lim.max_captured_bytes]
    for i, digest in enumerate(digests):
        try:
            blob = opener.open(digest)
        except (LookupError, OSError) as e:
            raise ScanFailed(f"layer {digest} is not stored: {e}") from None
        with blob:
            layers.apply_layer(fs, blob, i, lim, analysers.analyse, budget)
    layers.check_symlinks(fs, lim)
    os_info, packages, notes = catalog.catalog(fs, lim)
    findings = match.match(packages, os_info, db.candidates) if db is not None else []
    return ScanResult(os_info, tuple(packages), tuple(findings), tuple(notes))
