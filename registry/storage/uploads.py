"""Blob uploads: bytes streamed to a temporary file, hashed on the way, committed by rename.

An upload session is a file ``uploads/<id>/data`` plus, in memory, the running sha256 of its
acknowledged bytes and, in the state store, its repository and acknowledged offset. Each
append streams the request body in large batches to a worker thread that writes and hashes
it, fsyncs, and only then acknowledges the new offset. An append that fails midway (short
body, disconnected client) is rolled back: the file is truncated and the hash state restored,
so the offset stays where it was acknowledged.

``finish`` checks the digest (sha256 from the running hash, sha512 by re-reading the file)
and renames the file into its content-addressed place only if it matches; a mismatch
discards the upload. After a restart a session is rebuilt from the store: the file is cut back
to the acknowledged offset and re-hashed (streaming) from disk.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from functools import partial

from registry.metadata import Metadata
from registry.reference import Digest
from registry.storage.driver import FileWriter, StorageDriver
from registry.storage.driver.base import off_loop
from registry.storage.errors import ChunkOutOfOrder, DigestMismatch, SizeMismatch, UploadUnknown
from registry.storage.paths import blob_path, upload_data_path, upload_dir

__all__ = ["BATCH", "CHUNK_MIN_LENGTH", "Session", "Uploads"]

BATCH = 1 << 20  # bytes handed to the worker thread at a time
# The chunk size advertised to clients (``OCI-Chunk-Min-Length``): a hint, not a rule. Every
# acknowledged chunk costs an fsync and a store write, so chunks below a batch waste both;
# smaller ones are still accepted.
CHUNK_MIN_LENGTH = BATCH
READ = 1 << 20


@dataclass
class Session:
    id: str
    repository: str
    offset: int = 0
    hasher: hashlib._Hash = field(default_factory=hashlib.sha256)
    persistent: bool = True
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def _write_and_hash(writer: FileWriter, hasher: hashlib._Hash, chunks: list[bytes]) -> None:
    for chunk in chunks:
        writer.write(chunk)
        hasher.update(chunk)


async def _pump(body: AsyncIterable[bytes], writer: FileWriter, hasher: hashlib._Hash) -> int:
    """Copy ``body`` to ``writer`` and ``hasher``, handing the worker thread about BATCH bytes
    at a time as a list of the chunks received (never joined: no copy on the event loop);
    returns the bytes copied."""
    total = pending = 0
    chunks: list[bytes] = []
    async for chunk in body:
        chunks.append(chunk)
        pending += len(chunk)
        if pending >= BATCH:
            await asyncio.to_thread(_write_and_hash, writer, hasher, chunks)
            total += pending
            chunks, pending = [], 0
    if chunks:
        await asyncio.to_thread(_write_and_hash, writer, hasher, chunks)
        total += pending
    return total


def _move(driver: StorageDriver, path: str, target: str) -> None:
    driver.move(path, target)


def _place_if_missing(driver: StorageDriver, path: str, target: str) -> None:
    if driver.stat(target) is None:
        driver.move(path, target)


def _cut(driver: StorageDriver, path: str, size: int) -> None:
    driver.writer(path, size).close()


def _create_empty(driver: StorageDriver, path: str) -> None:
    driver.writer(path, 0).close()


def _move_and_clean(driver: StorageDriver, path: str, target: str, directory: str) -> None:
    """Rename a finished upload's bytes to ``target`` and remove its directory."""
    driver.move(path, target)
    driver.delete(directory)


def _hash_file(
    driver: StorageDriver, path: str, algorithm: str, limit: int | None = None
) -> hashlib._Hash:
    hasher = hashlib.new(algorithm)
    remaining = limit
    with driver.reader(path) as f:
        while remaining is None or remaining > 0:
            data = f.read(READ if remaining is None else min(READ, remaining))
            if not data:
                break
            hasher.update(data)
            if remaining is not None:
                remaining -= len(data)
    return hasher


class Uploads:
    """Upload sessions over a driver and the metadata (see module docstring)."""

    def __init__(self, driver: StorageDriver, meta: Metadata) -> None:
        self.driver = driver
        self.meta = meta
        self._sessions: dict[str, Session] = {}
        self._placing: dict[str, int] = {}  # digest -> finishes renaming it into place now

    async def start(self, repository: str, persistent: bool = True) -> Session:
        """A new empty upload. Non-persistent ones (monolithic pushes) are not in the store."""
        session = Session(uuid.uuid4().hex, repository, persistent=persistent)
        # Known and busy before its directory exists: garbage collection walking the uploads
        # meanwhile must not take the new directory for an orphan (with zero grace it would).
        self._sessions[session.id] = session
        try:
            async with session.lock:
                await asyncio.to_thread(_create_empty, self.driver, upload_data_path(session.id))
                if persistent:
                    await self.meta.start_upload(session.id, repository)
        except BaseException:
            self._sessions.pop(session.id, None)
            raise
        return session

    async def get(self, repository: str, upload_id: str) -> Session:
        """The session ``upload_id`` of ``repository``, rebuilt from disk after a restart.

        A session held in memory is checked against the store (one point read), so that
        with several worker processes one never appends to a session another one moved on.
        """
        session = self._sessions.get(upload_id)
        if session is not None and session.repository != repository:
            raise UploadUnknown(upload_id)
        if session is not None and (not session.persistent or session.lock.locked()):
            return session
        if len(upload_id) != 32 or not upload_id.isalnum():
            raise UploadUnknown(upload_id)
        row = self.meta.upload(upload_id)
        if row is None or row.repository != repository:
            self._sessions.pop(upload_id, None)
            raise UploadUnknown(upload_id)
        if session is not None and session.offset == row.offset:
            return session
        self._sessions.pop(upload_id, None)
        path = upload_data_path(upload_id)
        info = await off_loop(self.driver, self.driver.stat, path)
        size = None if info is None else info.size
        if size is None or size < row.offset:
            await self.meta.end_upload(upload_id)
            raise UploadUnknown(upload_id)
        session = self._sessions.get(upload_id)  # another request may have rebuilt it meanwhile
        if session is None:
            session = Session(upload_id, repository, row.offset)
            self._sessions[upload_id] = session
            async with session.lock:
                if size > row.offset:  # bytes never acknowledged: cut them off
                    await off_loop(self.driver, _cut, self.driver, path, row.offset)
                session.hasher = await asyncio.to_thread(_hash_file, self.driver, path, "sha256", row.offset)
        return session

    async def append(
        self,
        session: Session,
        body: AsyncIterable[bytes],
        start: int | None = None,
        length: int | None = None,
        ack: bool = True,
    ) -> int:
        """Append ``body`` (a chunk starting at ``start`` of ``length`` bytes if given).

        Returns the new acknowledged offset. Raises ChunkOutOfOrder, or SizeMismatch / the
        body's own error after rolling the append back. ``ack=False`` (the body of a finishing
        PUT, which ``finish`` follows at once) skips recording the offset in the store.
        """
        async with session.lock:
            self._check_alive(session)
            if start is not None and start != session.offset:
                raise ChunkOutOfOrder(session.offset)
            before = session.hasher.copy()
            path = upload_data_path(session.id)
            writer = await off_loop(self.driver, self.driver.writer, path, session.offset)
            try:
                n = await _pump(body, writer, session.hasher)
                if length is not None and n != length:
                    raise SizeMismatch(f"body has {n} bytes, {length} declared")
                await asyncio.to_thread(writer.commit)
            except BaseException:
                writer.truncate(session.offset)
                session.hasher = before
                raise
            finally:
                writer.close()
            if n:
                session.offset += n
                if session.persistent and ack:
                    await self.meta.ack_upload(session.id, session.offset)
            return session.offset

    async def finish(self, session: Session, digest: Digest) -> int:
        """Commit the upload as ``digest`` (linked to its repository); returns the blob size.

        Raises DigestMismatch (and discards the upload) if the bytes hash differently.
        """
        async with session.lock:
            self._check_alive(session)
            path = upload_data_path(session.id)
            if digest.algorithm == "sha256":
                actual = session.hasher.hexdigest()
            else:
                hasher = await asyncio.to_thread(_hash_file, self.driver, path, digest.algorithm)
                actual = hasher.hexdigest()
            if actual != digest.hex:
                await self._discard(session)
                raise DigestMismatch(f"uploaded content has digest {digest.algorithm}:{actual}")
            target = blob_path(digest)
            upload_id = session.id if session.persistent else None
            try:
                if self.meta.blob_size(str(digest)) is None:
                    # New content: rename (and fsync the directory) before taking the store's
                    # writer lock, so that no other write waits on this disk work. GC leaves
                    # the row-less file alone while it is young or ``placing`` says so.
                    directory = upload_dir(session.id)
                    key = str(digest)
                    self._placing[key] = self._placing.get(key, 0) + 1
                    try:
                        await asyncio.to_thread(_move_and_clean, self.driver, path, target, directory)
                        await self.meta.add_blob(
                            session.repository, key, session.offset, upload_id,
                            placed=lambda: self.driver.stat(target) is not None,
                        )
                    finally:
                        self._placing[key] -= 1
                        if not self._placing[key]:
                            del self._placing[key]
                else:
                    # Known content: rename into place inside the transaction (GC deletes a
                    # row and its file in one). On a remote driver the same bytes are usually
                    # there already and need no copy (a server-side copy of the whole blob
                    # under the store's writer lock): a stat, and a move only if they are not.
                    mover = _place_if_missing if self.driver.remote else _move
                    await self.meta.add_blob(
                        session.repository, str(digest), session.offset, upload_id,
                        place=partial(mover, self.driver, path, target),
                    )
                    await asyncio.to_thread(self.driver.delete, upload_dir(session.id))
            except UploadUnknown:
                await self._discard(session)
                raise
            self._sessions.pop(session.id, None)
            return session.offset

    def _check_alive(self, session: Session) -> None:
        """Raise UploadUnknown if ``session`` was cancelled, finished or collected while the
        caller waited for its lock (writing on would recreate a file the hash does not match)."""
        if self._sessions.get(session.id) is not session:
            raise UploadUnknown(session.id)

    def placing(self, digest: str) -> bool:
        """Whether a finishing upload in this process is renaming ``digest`` into place and has
        not linked it yet (garbage collection must not take the row-less file meanwhile)."""
        return digest in self._placing

    def busy(self, upload_id: str) -> bool:
        """Whether a request is appending to or finishing ``upload_id`` in this process now
        (a monolithic upload lives only during its one request, so it always is)."""
        session = self._sessions.get(upload_id)
        return session is not None and (session.lock.locked() or not session.persistent)

    async def drop(self, upload_id: str) -> None:
        """Forget an abandoned upload and delete its bytes (garbage collection; its store row
        is already gone). A request that still holds the session then gets UploadUnknown."""
        session = self._sessions.get(upload_id)
        if session is not None:
            async with session.lock:
                if self._sessions.get(upload_id) is session:
                    del self._sessions[upload_id]
        await off_loop(self.driver, self.driver.delete, upload_dir(upload_id))

    async def cancel(self, session: Session) -> None:
        async with session.lock:
            await self._discard(session)

    async def _discard(self, session: Session) -> None:
        self._sessions.pop(session.id, None)
        await off_loop(self.driver, self.driver.delete, upload_dir(session.id))
        if session.persistent:
            await self.meta.end_upload(session.id)
