"""Manifest GET/HEAD (honouring ``Accept``), PUT (validated) and DELETE, by tag or digest."""

from __future__ import annotations

import hashlib

from aiohttp import web

from registry.errors import (
    DIGEST_INVALID,
    MANIFEST_BLOB_UNKNOWN,
    MANIFEST_INVALID,
    MANIFEST_UNKNOWN,
    SIZE_INVALID,
    TAG_INVALID,
)
from registry.handlers.base import Registry, location, require_digest
from registry.manifest import MANIFEST_TYPES, MAX_MANIFEST, Manifest, ManifestError, parse_manifest
from registry.metadata import BlobsMissing, StoredManifest, TagImmutable
from registry.reference import is_tag
from registry.routes import Route

__all__ = ["delete_manifest", "get_manifest", "put_manifest"]


def accepts(accept: str | None, media_type: str) -> bool:
    """Whether ``Accept`` (every such header, joined by commas) admits ``media_type``.

    A header that names no manifest type at all (or a wildcard) admits any; one that names some
    manifest types admits only those (as Distribution does for OCI manifests and indexes).
    """
    if not accept:
        return True
    named = set()
    for part in accept.split(","):
        value = part.split(";")[0].strip()
        if value in ("*/*", "application/*", media_type):
            return True
        named.add(value)
    return not (named & MANIFEST_TYPES)


def _lookup(registry: Registry, target: Route) -> StoredManifest | None:
    ref = target.reference
    if ":" in ref:
        return registry.meta.manifest_by_digest(target.name, str(require_digest(ref)))
    if is_tag(ref):
        return registry.meta.manifest_by_tag(target.name, ref)
    return None


async def get_manifest(request: web.Request, registry: Registry, target: Route) -> web.Response:
    found = _lookup(registry, target)
    if registry.pull_through is not None:  # fills a miss, refreshes a cached tag
        found = await registry.pull_through.manifest(target.name, target.reference, found)
    if found is None:
        raise MANIFEST_UNKNOWN(detail=target.reference)
    if not accepts(",".join(request.headers.getall("Accept", ())), found.media_type):
        raise MANIFEST_UNKNOWN(
            detail=f"manifest is {found.media_type}, which the Accept header does not admit"
        )
    if request.method == "GET":
        await registry.pulled(target.name, found.digest)
    return web.Response(
        body=found.body,
        headers={
            "Content-Type": found.media_type,
            "Docker-Content-Digest": found.digest,
            "ETag": f'"{found.digest}"',
        },
    )


async def _read_body(request: web.Request) -> bytes:
    """The request body, refusing (413 SIZE_INVALID) more than MAX_MANIFEST bytes."""
    too_large = SIZE_INVALID(detail=f"manifests are limited to {MAX_MANIFEST} bytes", status=413)
    if request.content_length is not None and request.content_length > MAX_MANIFEST:
        raise too_large
    buf = bytearray()
    async for chunk in request.content.iter_any():
        buf += chunk
        if len(buf) > MAX_MANIFEST:
            raise too_large
    return bytes(buf)


def _check_references(registry: Registry, name: str, manifest: Manifest) -> None:
    for blob in manifest.blobs:
        size = registry.blobs.linked_size(name, blob.digest)
        if size is None:
            raise MANIFEST_BLOB_UNKNOWN(detail=blob.digest)
        if size != blob.size:
            raise MANIFEST_INVALID(detail=f"blob {blob.digest} has size {size}, not {blob.size}")
    for child in manifest.children:
        if not registry.meta.has_manifest(name, child.digest):
            raise MANIFEST_BLOB_UNKNOWN(detail=child.digest)


def _tag_params(request: web.Request) -> list[str]:
    """The ``tag`` query parameters of a PUT by digest (distribution-spec main: push a manifest
    by digest and tag it at once), each a valid tag, duplicates dropped; any invalid one refuses
    the whole request with TAG_INVALID, so that either every tag is set or none. No limit on
    their number (the spec asks none), beyond the URL's length."""
    tags: list[str] = []
    for tag in request.query.getall("tag", []):
        if not is_tag(tag):
            raise TAG_INVALID(detail=tag[:200], message="invalid tag")
        if tag not in tags:
            tags.append(tag)
    return tags


async def put_manifest(request: web.Request, registry: Registry, target: Route) -> web.Response:
    ref = target.reference
    expected = require_digest(ref) if ":" in ref else None
    if expected is None and not is_tag(ref):
        raise TAG_INVALID(detail=ref, message="invalid tag")
    tags = _tag_params(request) if expected is not None else []
    body = await _read_body(request)
    algorithm = expected.algorithm if expected else "sha256"
    digest = f"{algorithm}:{hashlib.new(algorithm, body).hexdigest()}"
    if expected is not None and str(expected) != digest:
        raise DIGEST_INVALID(detail=f"manifest digest is {digest}")
    try:
        manifest = parse_manifest(body, request.headers.get("Content-Type"))
    except ManifestError as exc:
        raise MANIFEST_INVALID(detail=str(exc)) from None
    registry.check_create(target.name)
    _check_references(registry, target.name, manifest)
    try:
        await registry.meta.put_manifest(target.name, digest, body, manifest, None if expected else ref, tags)
    except BlobsMissing:
        raise MANIFEST_BLOB_UNKNOWN(detail="a blob of the manifest was garbage collected meanwhile") from None
    except TagImmutable as exc:  # what ECR answers docker: "tag invalid: The image tag ..."
        raise TAG_INVALID(detail=exc.tag, message=str(exc)) from None
    registry.pushed(target.name, digest, None if expected else ref)
    headers = {
        "Location": location(target.name, "manifests", digest),
        "Docker-Content-Digest": digest,
        "Content-Length": "0",
    }
    if manifest.subject is not None:
        headers["OCI-Subject"] = manifest.subject.digest
    response = web.Response(status=201, headers=headers)
    for tag in tags:
        response.headers.add("OCI-Tag", tag)
    return response


async def delete_manifest(request: web.Request, registry: Registry, target: Route) -> web.Response:
    ref = target.reference
    headers = {"Content-Length": "0"}
    if ":" in ref:
        digest = str(require_digest(ref))
        deleted = await registry.meta.delete_manifest(target.name, digest)
        headers["Docker-Content-Digest"] = digest
        tag = None
    else:
        found = registry.meta.manifest_by_tag(target.name, ref) if is_tag(ref) else None
        deleted = is_tag(ref) and await registry.meta.delete_tag(target.name, ref)
        digest, tag = (found.digest if found is not None else ""), ref
    if not deleted:
        raise MANIFEST_UNKNOWN(detail=ref)
    registry.image_action("DELETE", target.name, digest, tag)
    return web.Response(status=202, headers=headers)
