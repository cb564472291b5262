"""Blob uploads: start (or mount, or monolithic), chunk PATCH, status, finishing PUT, cancel."""

from __future__ import annotations

from aiohttp import web
from aiohttp.client_exceptions import ClientPayloadError
from aiohttp.http_exceptions import HttpProcessingError

from registry.errors import (
    BLOB_UPLOAD_INVALID,
    BLOB_UPLOAD_UNKNOWN,
    DIGEST_INVALID,
    RANGE_INVALID,
    SIZE_INVALID,
)
from registry.handlers.base import Registry, location, may_read, require_digest
from registry.ranges import RangeError, parse_content_range
from registry.reference import Digest, is_valid_name
from registry.routes import Route
from registry.storage.errors import ChunkOutOfOrder, DigestMismatch, SizeMismatch, UploadUnknown
from registry.storage.uploads import CHUNK_MIN_LENGTH, Session

__all__ = ["cancel_upload", "finish_upload", "patch_upload", "start_upload", "upload_status"]


def _progress(session: Session, status: int) -> web.Response:
    """An answer that says where the upload is (``Range`` is inclusive; ``0-0`` when empty)."""
    return web.Response(status=status, headers={
        "Location": location(session.repository, "blobs", "uploads", session.id),
        "Range": f"0-{max(session.offset - 1, 0)}",
        "Docker-Upload-UUID": session.id,
        "Content-Length": "0",
    })


def _started(session: Session) -> web.Response:
    """The 202 of a POST that opened an upload, with the spec's optional chunk-size hint."""
    response = _progress(session, 202)
    response.headers["OCI-Chunk-Min-Length"] = str(CHUNK_MIN_LENGTH)
    return response


def _created(name: str, digest: Digest | str) -> web.Response:
    return web.Response(status=201, headers={
        "Location": location(name, "blobs", str(digest)),
        "Docker-Content-Digest": str(digest),
        "Content-Length": "0",
    })


async def _session(registry: Registry, target: Route) -> Session:
    try:
        return await registry.uploads.get(target.name, target.reference)
    except UploadUnknown:
        raise BLOB_UPLOAD_UNKNOWN(detail=target.reference) from None


def _chunk(request: web.Request) -> tuple[int | None, int | None]:
    """``(start, length)`` of the body from ``Content-Range``/``Content-Length`` (None if absent)."""
    header = request.headers.get("Content-Range")
    if header is None:
        return None, request.content_length
    try:
        start, end = parse_content_range(header)
    except RangeError as exc:
        raise RANGE_INVALID(detail=str(exc)) from None
    length = end - start + 1
    if request.content_length is not None and request.content_length != length:
        raise SIZE_INVALID(
            detail=f"Content-Range covers {length} bytes, Content-Length is {request.content_length}"
        )
    return start, length


async def _append(registry: Registry, request: web.Request, session: Session, ack: bool = True) -> None:
    start, length = _chunk(request)
    try:
        await registry.uploads.append(session, request.content.iter_any(), start, length, ack)
    except ChunkOutOfOrder as exc:
        raise RANGE_INVALID(
            detail=f"chunk must start at {exc.offset}",
            headers={
                "Location": location(session.repository, "blobs", "uploads", session.id),
                "Range": f"0-{max(exc.offset - 1, 0)}",
            },
        ) from None
    except SizeMismatch as exc:
        raise SIZE_INVALID(detail=str(exc)) from None
    except (ClientPayloadError, HttpProcessingError) as exc:
        raise BLOB_UPLOAD_INVALID(detail=f"incomplete body: {exc}") from None


async def _mount(request: web.Request, registry: Registry, name: str) -> web.Response | None:
    """Link the ``mount`` blob into ``name`` if the caller may read it somewhere; else None."""
    digest = require_digest(request.query["mount"])
    source = request.query.get("from")
    if source is not None:
        candidates = [source] if is_valid_name(source) else []
    else:  # automatic mount: any repository holding the blob that the caller may read
        candidates = registry.blobs.holders(digest)
    for repository in candidates:
        if registry.blobs.linked_size(repository, digest) is None:
            continue
        if repository == name or may_read(request, registry, repository):
            if await registry.blobs.mount(name, digest):
                return _created(name, digest)
            return None  # collected meanwhile: upload it instead
    return None


async def start_upload(request: web.Request, registry: Registry, target: Route) -> web.Response:
    name = target.name
    registry.check_create(name)
    if "mount" in request.query:
        mounted = await _mount(request, registry, name)
        if mounted is not None:
            return mounted
    elif "digest" in request.query:  # monolithic: the whole blob in this one request
        digest = require_digest(request.query["digest"])
        session = await registry.uploads.start(name, persistent=False)
        try:
            await _append(registry, request, session)
            await registry.uploads.finish(session, digest)
        except DigestMismatch as exc:
            raise DIGEST_INVALID(detail=str(exc)) from None
        except BaseException:
            await registry.uploads.cancel(session)
            raise
        return _created(name, digest)
    session = await registry.uploads.start(name)
    return _started(session)


async def patch_upload(request: web.Request, registry: Registry, target: Route) -> web.Response:
    session = await _session(registry, target)
    await _append(registry, request, session)
    return _progress(session, 202)


async def finish_upload(request: web.Request, registry: Registry, target: Route) -> web.Response:
    digest = require_digest(request.query.get("digest"))
    session = await _session(registry, target)
    if request.body_exists:
        await _append(registry, request, session, ack=False)  # finish follows: no offset to record
    try:
        await registry.uploads.finish(session, digest)
    except DigestMismatch as exc:
        raise DIGEST_INVALID(detail=str(exc)) from None
    return _created(target.name, digest)


async def upload_status(request: web.Request, registry: Registry, target: Route) -> web.Response:
    return _progress(await _session(registry, target), 204)


async def cancel_upload(request: web.Request, registry: Registry, target: Route) -> web.Response:
    await registry.uploads.cancel(await _session(registry, target))
    return web.Response(status=204)
