"""Blob HEAD, GET (zero-copy ``sendfile``, single ``Range``; from a remote driver streamed or
redirected to a pre-signed URL) and DELETE (unlinks)."""

from __future__ import annotations

import asyncio
from typing import BinaryIO

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter

from registry.errors import BLOB_UNKNOWN, RANGE_INVALID
from registry.handlers.base import Registry, log, require_digest
from registry.ranges import RangeError, parse_range
from registry.reference import Digest
from registry.routes import Route
from registry.storage.blobs import BlobNotFound

__all__ = ["BlobResponse", "delete_blob", "get_blob"]

SENDFILE_BYTES = "sendfile_bytes"
READ = 1 << 20  # bytes read from a remote driver at a time


class BlobResponse(web.StreamResponse):
    """Sends ``count`` bytes of an open file from ``offset`` with ``loop.sendfile``."""

    def __init__(self, file: BinaryIO, offset: int, count: int, status: int, headers: dict[str, str]) -> None:
        super().__init__(status=status, headers=headers)
        self._file, self._offset, self._count = file, offset, count
        self.content_length = count

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        try:
            writer = await super().prepare(request)
            if request.method == "HEAD" or self._count == 0:
                return writer
            transport = request.transport
            if transport is None:
                raise ConnectionResetError("connection lost")
            await asyncio.get_running_loop().sendfile(transport, self._file, self._offset, self._count)
            self[SENDFILE_BYTES] = self._count  # not seen by aiohttp's writer (dockyard.accesslog)
            await super().write_eof()
            return writer
        finally:
            self._file.close()


async def get_blob(request: web.Request, registry: Registry, target: Route) -> web.StreamResponse:
    digest = require_digest(target.reference)
    size = registry.blobs.linked_size(target.name, digest)
    if size is None and registry.pull_through is not None and await registry.pull_through.blob(
        target.name, str(digest)
    ):
        size = registry.blobs.linked_size(target.name, digest)
    if size is None:
        raise BLOB_UNKNOWN(detail=str(digest))
    headers = {
        "Docker-Content-Digest": str(digest),
        "ETag": f'"{digest}"',
        "Accept-Ranges": "bytes",
        "Content-Type": "application/octet-stream",
        "Cache-Control": "max-age=31536000",
    }
    try:
        span = parse_range(request.headers.get("Range"), size)
    except RangeError as exc:
        raise RANGE_INVALID(detail=str(exc), headers={"Content-Range": f"bytes */{size}"}) from None
    if registry.blobs.remote:
        return await _remote_blob(request, registry, target.name, digest, size, span, headers)
    try:
        file = registry.blobs.open(digest)
    except BlobNotFound:
        raise _lost(target.name, digest) from None
    if span is None:
        return BlobResponse(file, 0, size, 200, headers)
    start, end = span
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return BlobResponse(file, start, end - start + 1, 206, headers)


def _lost(repository: str, digest: Digest) -> Exception:
    """BLOB_UNKNOWN for a blob the metadata links but the storage no longer holds (removed
    behind the registry's back), said in the log: never a 500 or a truncated body."""
    log.error("blob missing from storage", extra={"repository": repository, "digest": str(digest)})
    return BLOB_UNKNOWN(detail=f"{digest}: not in storage")


async def _remote_blob(
    request: web.Request, registry: Registry, repository: str, digest: Digest, size: int,
    span: tuple[int, int] | None, headers: dict[str, str],
) -> web.StreamResponse:
    """A blob on a remote driver (S3): a 307 to a pre-signed URL when redirects are on (after
    a stat, so that a lost object is BLOB_UNKNOWN here rather than the storage's 404), else the
    bytes streamed from one ranged GET, every read in a worker thread. HEAD stats the object."""
    blobs = registry.blobs
    if request.method == "HEAD" or registry.redirect_expiry is not None:
        if await asyncio.to_thread(blobs.stat, digest) is None:
            raise _lost(repository, digest)
    start, end = (0, size - 1) if span is None else span
    if span is not None:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    count = end - start + 1 if size else 0
    if request.method == "HEAD":
        head = web.StreamResponse(status=200 if span is None else 206, headers=headers)
        head.content_length = count
        return head
    url = None if registry.redirect_expiry is None else blobs.url_for(digest, int(registry.redirect_expiry))
    if url is not None:
        return web.Response(status=307, headers={
            "Location": url, "Docker-Content-Digest": str(digest), "Content-Length": "0",
        })
    try:
        file = await asyncio.to_thread(blobs.open, digest, start)
    except BlobNotFound:
        raise _lost(repository, digest) from None
    response = web.StreamResponse(status=200 if span is None else 206, headers=headers)
    response.content_length = count
    try:
        await response.prepare(request)
        left = count
        while left > 0:
            data = await asyncio.to_thread(file.read, min(READ, left))
            if not data:  # the object changed size under us: cut the connection, never pad
                log.error("blob shorter in storage than recorded", extra={
                    "repository": repository, "digest": str(digest), "missing": left,
                })
                raise ConnectionResetError("blob shorter in storage than recorded")
            await response.write(data)
            left -= len(data)
        await response.write_eof()
    finally:
        await asyncio.to_thread(file.close)
    return response


async def delete_blob(request: web.Request, registry: Registry, target: Route) -> web.Response:
    digest = require_digest(target.reference)
    if not await registry.blobs.unlink(target.name, digest):
        raise BLOB_UNKNOWN(detail=str(digest))
    return web.Response(status=202, headers={"Docker-Content-Digest": str(digest), "Content-Length": "0"})
