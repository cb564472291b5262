"""The S3 backend: a StorageDriver on a bucket (and key prefix) of any S3-compatible server.

Paths map to keys ``<prefix>/<path>``; directories are key prefixes (they exist while an
object lies under them). The client is botocore's own, called from the blob layer's worker
threads (the seam is blocking; botocore clients are thread-safe): see docs/storage-s3.md for
why botocore rather than aiobotocore, and which S3 features this relies on.

Writers stream: bytes are buffered up to one part (``part_size``, 8 MiB by default, at least
S3's 5 MiB minimum) and sent as a multipart upload part as soon as a part is full, so an
upload of any size holds at most about one part in memory. ``commit`` (and ``close``)
complete the upload, so that the object holds exactly what was written: an upload session's
bytes are durable in the bucket before its offset is acknowledged. A writer opened on an
existing object (the next chunk of a resumable upload, ``writer(path, offset)``) starts a
new multipart upload whose first parts are server-side copies of the object's first
``offset`` bytes (``UploadPartCopy`` with a range; an object under 5 MiB is read back into
the buffer instead, as a copied part that small could not be followed by another).

S3 keeps modification times to the second; the driver records its own clock's time, to the
microsecond, in the object's metadata (``x-amz-meta-dockyard-mtime``), which ``stat`` reads.
``walk`` and a directory's ``stat`` see only listings, which carry the second: ``walk``
answers the start of that second (garbage collection re-checks a file's age with ``stat``
inside its transaction before it deletes), a directory the end of it (the latest its objects
may have changed: an upload directory is then kept, never taken early).
"""

from __future__ import annotations

import io
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from registry.storage.driver.base import FileInfo, PathNotFound, check_path

__all__ = [
    "MIN_PART", "PART_SIZE", "S3Driver", "S3Location", "StorageUnavailable", "parse_blob_url",
]

MIN_PART = 5 << 20  # S3's smallest part but the last
PART_SIZE = 8 << 20  # the part a writer buffers and sends at once
COPY_PART = 1 << 30  # the largest range one UploadPartCopy copies (S3 allows 5 GiB)
COPY_OBJECT_MAX = 5 << 30  # CopyObject's limit; larger objects are copied part by part
MTIME = "dockyard-mtime"
READ = 1 << 20

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_MISSING = {"404", "NoSuchKey", "NotFound"}


class StorageUnavailable(OSError):
    """The bucket could not be reached or refused a request (not a missing object)."""


@dataclass(frozen=True)
class S3Location:
    """Where blobs live: a bucket and a key prefix ("" for the bucket's root)."""

    bucket: str
    prefix: str = ""

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


def parse_blob_url(url: str) -> S3Location:
    """``s3://bucket`` or ``s3://bucket/some/prefix``; raises ValueError saying what is wrong."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme != "s3":
        raise ValueError(f"{url!r} is not an s3://bucket/prefix URL")
    if any(c in rest for c in "?#\\ ") or "@" in rest:
        raise ValueError(f"{url!r}: an s3:// URL has a bucket and a prefix only (no query, user or spaces)")
    bucket, _, prefix = rest.partition("/")
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise ValueError(
            f"{url!r}: {bucket!r} is not a valid bucket name (3-63 lowercase letters, digits, dots, hyphens)"
        )
    prefix = prefix.strip("/")
    if prefix and any(part in ("", ".", "..") for part in prefix.split("/")):
        raise ValueError(f"{url!r}: the key prefix {prefix!r} has an empty, '.' or '..' segment")
    return S3Location(bucket, prefix)


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _missing(exc: Exception) -> bool:
    return _code(exc) in _MISSING


def make_client(
    endpoint: str | None = None,
    region: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    session_token: str | None = None,
    pool: int = 64,
) -> Any:
    """A botocore S3 client: credentials given, else botocore's chain (the ``AWS_*``
    variables, the shared files, instance roles); path-style addressing with an endpoint
    (what S3-compatible servers expect); checksums only where S3 requires them (the
    CRC trailers botocore adds by default are not understood by every S3-compatible server)."""
    import botocore.session
    from botocore.config import Config as BotoConfig

    session = botocore.session.Session()
    config = BotoConfig(
        s3={"addressing_style": "path" if endpoint else "auto"},
        retries={"mode": "standard", "max_attempts": 3},
        max_pool_connections=pool,
        connect_timeout=5,
        read_timeout=60,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return session.create_client(
        "s3", region_name=region or session.get_config_variable("region") or "us-east-1",
        endpoint_url=endpoint or None, aws_access_key_id=access_key or None,
        aws_secret_access_key=secret_key or None, aws_session_token=session_token or None, config=config,
    )


class _BodyReader(io.RawIOBase):
    """A GetObject body as a raw file (wrapped in a BufferedReader by ``S3Driver.reader``)."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._body.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        return n

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


class _S3Writer:
    """A FileWriter on one object (see the module docstring)."""

    def __init__(self, driver: S3Driver, path: str, offset: int | None) -> None:
        self._driver, self._path, self._key = driver, path, driver.key(path)
        head = driver._head(self._key)
        stored = None if head is None else int(head["ContentLength"])
        self._stored = stored  # the object's size in the bucket, None if there is none
        self._base = (stored or 0) if offset is None else min(offset, stored or 0)
        self._dirty = stored is None or self._base != stored
        self._begun = False
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._uploaded = 0  # bytes in the multipart upload's parts (copied ones included)
        self._buf = bytearray()
        self._closed = False

    @property
    def size(self) -> int:
        return self._uploaded + len(self._buf) if self._begun else self._base

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._begin()
        self._buf += data
        self._dirty = True
        part = self._driver.part_size
        while len(self._buf) >= part:
            self._send_part(part)
        return len(data)

    def truncate(self, size: int) -> None:
        if size >= self.size:
            return
        if not self._begun:
            self._reset(size)
        elif size >= self._uploaded:
            del self._buf[size - self._uploaded:]
        elif size <= self._base:
            self._abort()  # what was sent of this writer's own bytes goes; the base is intact
            self._reset(size)
        else:  # into parts already sent: complete them, then start over from the object
            self._flush()
            self._reset(size)

    def commit(self) -> None:
        self._flush()

    def cancel(self) -> None:
        self._abort()
        self._closed = True
        self._driver.delete_key(self._key)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._flush()

    # -- internals ------------------------------------------------------------------------

    def _reset(self, base: int) -> None:
        self._begun, self._upload_id, self._parts, self._uploaded = False, None, [], 0
        self._buf = bytearray()
        self._base = base
        self._dirty = self._stored is None or base != self._stored

    def _begin(self) -> None:
        """Start from the object's first ``base`` bytes: copied server-side into the first
        parts when there are enough of them, else read back into the buffer."""
        if self._begun:
            return
        self._begun = True
        if self._base >= MIN_PART:
            self._start_upload()
            self._parts += self._driver._copy_parts(self._key, self._upload_id, self._key, self._base, 1)
            self._uploaded = self._base
        elif self._base > 0:
            self._buf = bytearray(self._driver.get_range(self._key, 0, self._base))

    def _start_upload(self) -> None:
        if self._upload_id is None:
            self._upload_id = self._driver.create_upload(self._key)

    def _send_part(self, n: int) -> None:
        self._start_upload()
        number = len(self._parts) + 1
        body = bytes(self._buf[:n])
        answer = self._driver.client.upload_part(
            Bucket=self._driver.bucket, Key=self._key, UploadId=self._upload_id, PartNumber=number, Body=body
        )
        self._parts.append({"PartNumber": number, "ETag": answer["ETag"]})
        self._uploaded += n
        del self._buf[:n]

    def _flush(self) -> None:
        if not self._dirty:
            return
        self._begin()
        client, bucket = self._driver.client, self._driver.bucket
        if self._upload_id is None:
            body, meta = bytes(self._buf), self._driver.stamp()
            client.put_object(Bucket=bucket, Key=self._key, Body=body, Metadata=meta)
        else:
            if self._buf or not self._parts:
                self._send_part(len(self._buf))
            client.complete_multipart_upload(
                Bucket=bucket, Key=self._key, UploadId=self._upload_id, MultipartUpload={"Parts": self._parts}
            )
        size = self.size
        self._stored = size
        self._reset(size)

    def _abort(self) -> None:
        if self._upload_id is not None:
            self._driver.abort_upload(self._key, self._upload_id)
            self._upload_id = None


class S3Driver:
    """A StorageDriver on ``bucket`` under ``prefix``, through botocore's ``client``."""

    name = "s3"
    remote = True

    def __init__(self, client: Any, bucket: str, prefix: str = "", part_size: int = PART_SIZE) -> None:
        if part_size < MIN_PART:
            raise ValueError(f"part size {part_size} is below S3's minimum of {MIN_PART} bytes")
        self.client, self.bucket, self.prefix = client, bucket, prefix.strip("/")
        self.part_size = part_size
        self._clock_lock = threading.Lock()
        self._last = 0.0

    @property
    def location(self) -> S3Location:
        return S3Location(self.bucket, self.prefix)

    # -- keys and times -------------------------------------------------------------------

    def key(self, path: str) -> str:
        check_path(path)
        path = path.strip("/")
        return f"{self.prefix}/{path}" if self.prefix else path

    def _dir_prefix(self, path: str) -> str:
        key = self.key(path)
        return f"{key}/" if key else ""

    def stamp(self) -> dict[str, str]:
        """The metadata of an object written now: this process's clock, strictly increasing."""
        with self._clock_lock:
            now = max(time.time(), self._last + 1e-6)
            self._last = now
        return {MTIME: f"{now:.6f}"}

    @staticmethod
    def _listed(obj: dict[str, Any], late: bool = False) -> FileInfo:
        """A listed object's size and time: the start of the second it is listed at, or with
        ``late`` the end of that second (the latest it may have changed)."""
        return FileInfo(int(obj["Size"]), obj["LastModified"].timestamp() + (1.0 if late else 0.0))

    # -- S3 calls the writer shares ---------------------------------------------------------

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if _missing(exc):
                return None
            raise

    def create_upload(self, key: str) -> str:
        answer = self.client.create_multipart_upload(Bucket=self.bucket, Key=key, Metadata=self.stamp())
        return answer["UploadId"]

    def abort_upload(self, key: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except Exception as exc:
            if _code(exc) != "NoSuchUpload":
                raise

    def get_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of ``key`` (at most one part: a writer's base)."""
        answer = self.client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end - 1}")
        with answer["Body"] as body:
            return body.read()

    def _copy_parts(
        self, source: str, upload_id: str | None, dest: str, size: int, first: int
    ) -> list[dict[str, Any]]:
        """Copy ``source``'s first ``size`` bytes into upload ``upload_id`` of ``dest`` as parts
        numbered from ``first``, each at most COPY_PART and at least MIN_PART."""
        count = -(-size // COPY_PART)
        step = -(-size // count)
        parts = []
        for i, start in enumerate(range(0, size, step)):
            end = min(size, start + step) - 1
            answer = self.client.upload_part_copy(
                Bucket=self.bucket, Key=dest, UploadId=upload_id, PartNumber=first + i,
                CopySource={"Bucket": self.bucket, "Key": source}, CopySourceRange=f"bytes={start}-{end}",
            )
            parts.append({"PartNumber": first + i, "ETag": answer["CopyPartResult"]["ETag"]})
        return parts

    def delete_key(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def _keys(self, prefix: str) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                if not obj["Key"].endswith("/"):  # a folder marker some servers list
                    yield obj

    def _has_objects(self, prefix: str) -> bool:
        return next(self._keys(prefix), None) is not None

    # -- the seam -------------------------------------------------------------------------

    def get_content(self, path: str) -> bytes:
        with self.reader(path) as f:
            return f.read()

    def put_content(self, path: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.key(path), Body=data, Metadata=self.stamp())

    def reader(self, path: str, offset: int = 0) -> BinaryIO:
        """The object's bytes from ``offset``, streamed (one GetObject, read as it goes)."""
        key = self.key(path)
        try:
            if offset:
                answer = self.client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={offset}-")
            else:
                answer = self.client.get_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if _missing(exc):
                raise PathNotFound(path) from None
            if _code(exc) == "InvalidRange" and self._head(key) is not None:
                return io.BytesIO(b"")  # at or past the end
            raise
        return io.BufferedReader(_BodyReader(answer["Body"]), READ)  # type: ignore[return-value]

    def writer(self, path: str, offset: int | None = None) -> _S3Writer:
        """Append to ``path`` (created at close if missing); ``offset`` first cuts it to that size."""
        return _S3Writer(self, path, offset)

    def stat(self, path: str) -> FileInfo | None:
        head = self._head(self.key(path))
        if head is not None:
            meta = head.get("Metadata") or {}
            try:
                modified = float(meta[MTIME])
            except (KeyError, ValueError):
                modified = head["LastModified"].timestamp() + 1.0
            return FileInfo(int(head["ContentLength"]), modified)
        times = [self._listed(obj, late=True).modified for obj in self._keys(self._dir_prefix(path))]
        return FileInfo(0, max(times), is_dir=True) if times else None

    def list(self, path: str) -> list[str]:
        prefix = self._dir_prefix(path)
        names: set[str] = set()
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
            # A server backed by a filesystem (SeaweedFS) may list a folder emptied a moment
            # ago: a common prefix counts only while an object lies under it.
            names.update(
                p["Prefix"][len(prefix):].rstrip("/") for p in page.get("CommonPrefixes", [])
                if self._has_objects(p["Prefix"])
            )
            names.update(
                obj["Key"][len(prefix):] for obj in page.get("Contents", []) if not obj["Key"].endswith("/")
            )
        names.discard("")
        return sorted(names)

    def walk(self, path: str) -> Iterator[tuple[str, FileInfo]]:
        """Every object under ``path`` (sorted by key), with its size and listed time."""
        prefix = self._dir_prefix(path)
        base = path.strip("/")
        for obj in self._keys(prefix):
            rest = obj["Key"][len(prefix):]
            if rest:
                yield f"{base}/{rest}" if base else rest, self._listed(obj)

    def move(self, source: str, dest: str) -> None:
        """A server-side copy (CopyObject, or UploadPartCopy ranges past 5 GiB), then a delete."""
        src, dst = self.key(source), self.key(dest)
        head = self._head(src)
        if head is None:
            raise PathNotFound(source)
        size = int(head["ContentLength"])
        if size <= COPY_OBJECT_MAX:
            self.client.copy_object(
                Bucket=self.bucket, Key=dst, CopySource={"Bucket": self.bucket, "Key": src},
                Metadata=self.stamp(), MetadataDirective="REPLACE",
            )
        else:
            upload_id = self.create_upload(dst)
            try:
                parts = self._copy_parts(src, upload_id, dst, size, 1)
                self.client.complete_multipart_upload(
                    Bucket=self.bucket, Key=dst, UploadId=upload_id, MultipartUpload={"Parts": parts}
                )
            except BaseException:
                self.abort_upload(dst, upload_id)
                raise
        self.delete_key(src)

    def delete(self, path: str) -> None:
        """Remove an object or everything under a prefix (and multipart uploads left there)."""
        key = self.key(path)
        self.delete_key(key)
        prefix = self._dir_prefix(path)
        batch: list[dict[str, str]] = []
        for obj in self._keys(prefix):
            batch.append({"Key": obj["Key"]})
            if len(batch) == 1000:
                self._delete_batch(batch)
                batch = []
        if batch:
            self._delete_batch(batch)
        paginator = self.client.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix or key):
            for upload in page.get("Uploads", []):
                if upload["Key"] == key or upload["Key"].startswith(prefix):
                    self.abort_upload(upload["Key"], upload["UploadId"])

    def _delete_batch(self, batch: list[dict[str, str]]) -> None:
        answer = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        errors = [e for e in answer.get("Errors", []) if e.get("Code") not in _MISSING]
        if errors:
            first = errors[0]
            where = self.location.url
            raise StorageUnavailable(f"{where}: cannot delete {first['Key']}: {first.get('Message')}")

    def url_for(self, path: str, expires: int) -> str | None:
        """A pre-signed GET URL of ``path``, valid ``expires`` seconds (computed locally)."""
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self.key(path)}, ExpiresIn=expires
        )

    def check(self) -> None:
        """Reach the bucket and list it; raises StorageUnavailable naming what is wrong."""
        from botocore.exceptions import BotoCoreError, NoCredentialsError

        where = self.location.url
        endpoint = self.client.meta.endpoint_url
        try:
            self.client.head_bucket(Bucket=self.bucket)
            self.client.list_objects_v2(Bucket=self.bucket, Prefix=self._dir_prefix(""), MaxKeys=1)
        except NoCredentialsError:
            raise StorageUnavailable(
                f"{where}: no S3 credentials (set s3_access_key_id and s3_secret_access_key, "
                "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
            ) from None
        except BotoCoreError as exc:
            raise StorageUnavailable(f"{where}: cannot reach the S3 endpoint {endpoint}: {exc}") from None
        except Exception as exc:
            code = _code(exc)
            if code in ("404", "NoSuchBucket", "NotFound"):
                missing = f"{where}: bucket {self.bucket!r} does not exist at {endpoint}"
                raise StorageUnavailable(missing) from None
            if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden"):
                raise StorageUnavailable(
                    f"{where}: access denied by {endpoint} ({code}): check the S3 access key and secret"
                ) from None
            if code:
                raise StorageUnavailable(f"{where}: {endpoint} refused the bucket: {code}") from None
            raise
