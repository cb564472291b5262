"""The blob store: content-addressed blobs on a driver, and their links in the metadata.

The one layer between the handlers (and GC) and the storage driver: callers name blobs by
digest and repository, never by path (``registry.storage.paths`` is this layer's). It reads
(``open``, ``stat``), links (``mount``, ``unlink``) and deletes blobs, lists what the storage
holds (``files``, ``upload_dirs``) for garbage collection, and owns the upload sessions
(``uploads``). Which repository may read a blob lives in the metadata (``registry.metadata``).
"""

from __future__ import annotations

from typing import BinaryIO

from registry.metadata import Metadata
from registry.reference import Digest, parse_digest
from registry.storage.driver import FileInfo, PathNotFound, StorageDriver
from registry.storage.paths import BLOBS_ROOT, blob_path, upload_dir, uploads_root
from registry.storage.uploads import Uploads

__all__ = ["BlobNotFound", "BlobStore"]


class BlobNotFound(LookupError):
    """The blob's bytes are not in storage."""


class BlobStore:
    """Blobs of every repository over one driver and the metadata."""

    def __init__(self, driver: StorageDriver, meta: Metadata) -> None:
        self.driver = driver
        self.meta = meta
        self.uploads = Uploads(driver, meta)

    # -- reads ---------------------------------------------------------------------------

    def linked_size(self, repository: str, digest: Digest | str) -> int | None:
        """The size of ``digest`` if ``repository`` may read it (it is linked there), else None."""
        return self.meta.linked_blob_size(repository, str(digest))

    @property
    def remote(self) -> bool:
        """Whether the driver waits on a network (S3): call it from a worker thread."""
        return self.driver.remote

    def open(self, digest: Digest, offset: int = 0) -> BinaryIO:
        """The blob's bytes from ``offset`` (a real file on the filesystem backend, so that it
        can be sent with ``sendfile``; a stream on S3). Raises BlobNotFound."""
        try:
            return self.driver.reader(blob_path(digest), offset)
        except PathNotFound:
            raise BlobNotFound(str(digest)) from None

    def url_for(self, digest: Digest, expires: int) -> str | None:
        """A URL the client may fetch the blob from directly (pre-signed), or None."""
        return self.driver.url_for(blob_path(digest), expires)

    def stat(self, digest: Digest) -> FileInfo | None:
        """Size and modification time of the blob's bytes, or None if not in storage."""
        return self.driver.stat(blob_path(digest))

    # -- links ---------------------------------------------------------------------------

    def holders(self, digest: Digest | str) -> list[str]:
        """The repositories that link ``digest`` (candidates for an automatic mount)."""
        return self.meta.repositories_linking(str(digest))

    async def mount(self, repository: str, digest: Digest | str) -> bool:
        """Link an existing blob into ``repository``; False if it is gone (collected)."""
        return await self.meta.link_blob(repository, str(digest))

    async def unlink(self, repository: str, digest: Digest | str) -> bool:
        """Remove ``repository``'s link to ``digest``; False if it had none. The bytes stay
        until garbage collection finds them unreferenced."""
        return await self.meta.unlink_blob(repository, str(digest))

    # -- what garbage collection needs -----------------------------------------------------

    def files(self) -> dict[str, FileInfo]:
        """Every blob file in storage whose path is a valid digest's, by digest (blocking)."""
        out: dict[str, FileInfo] = {}
        for path, info in self.driver.walk(BLOBS_ROOT):
            parts = path.split("/")
            if len(parts) != 4:
                continue
            digest = parse_digest(f"{parts[1]}:{parts[3]}")
            if digest is not None and blob_path(digest) == path:
                out[str(digest)] = info
        return out

    def upload_dirs(self) -> dict[str, float]:
        """Each upload directory in storage with the newest time of it and its files (blocking)."""
        out: dict[str, float] = {}
        for upload_id in self.driver.list(uploads_root()):
            directory = upload_dir(upload_id)
            info = self.driver.stat(directory)
            if info is None or not info.is_dir:
                continue
            times = [info.modified] + [f.modified for _, f in self.driver.walk(directory)]
            out[upload_id] = max(times)
        return out

    def delete(self, digest: Digest | str) -> None:
        """Delete the blob's bytes (garbage collection, inside its store transaction)."""
        parsed = parse_digest(str(digest))
        if parsed is None:
            raise ValueError(f"invalid digest {digest!r}")
        self.driver.delete(blob_path(parsed))

    def delete_upload(self, upload_id: str) -> None:
        """Delete an upload directory's bytes (no session bookkeeping: see ``Uploads.drop``)."""
        self.driver.delete(upload_dir(upload_id))
