"""Blob HEAD, GET (zero-copy ``sendfile``, single ``Range``) and DELETE (unlinks)."""

from __future__ import annotations

import asyncio
from typing import BinaryIO

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter

from registry.errors import BLOB_UNKNOWN, RANGE_INVALID
from registry.handlers.base import Registry, require_digest
from registry.ranges import RangeError, parse_range
from registry.routes import Route
from registry.storage.blobs import BlobNotFound

__all__ = ["BlobResponse", "delete_blob", "get_blob"]

SENDFILE_BYTES = "sendfile_bytes"


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
    try:
        file = registry.blobs.open(digest)
    except BlobNotFound:
        raise BLOB_UNKNOWN(detail=str(digest)) from None
    if span is None:
        return BlobResponse(file, 0, size, 200, headers)
    start, end = span
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return BlobResponse(file, start, end - start + 1, 206, headers)


async def delete_blob(request: web.Request, registry: Registry, target: Route) -> web.Response:
    digest = require_digest(target.reference)
    if not await registry.blobs.unlink(target.name, digest):
        raise BLOB_UNKNOWN(detail=str(digest))
    return web.Response(status=202, headers={"Docker-Content-Digest": str(digest), "Content-Length": "0"})
