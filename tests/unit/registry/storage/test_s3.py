"""What the S3 driver does beyond the shared suite, seen on a real S3 server (SeaweedFS):
writers stream in parts, resume by server-side copies, and blob URLs parse or are refused."""

from __future__ import annotations

import hashlib
import os
import urllib.request
import uuid

import pytest

from registry.storage.driver.s3 import MIN_PART, S3Driver, S3Location, parse_blob_url
from tests.support.seaweed import SeaweedS3, s3_driver


@pytest.fixture
def s3(seaweed: SeaweedS3, s3_bucket: str) -> S3Driver:
    return s3_driver(seaweed, s3_bucket, f"s3t/{uuid.uuid4().hex}")


def _server_parts(s3: S3Driver, path: str) -> list[int]:
    """The sizes of the parts the server holds for the multipart upload in progress at ``path``."""
    uploads = s3.client.list_multipart_uploads(Bucket=s3.bucket, Prefix=s3.key(path)).get("Uploads", [])
    assert len(uploads) == 1
    parts = s3.client.list_parts(Bucket=s3.bucket, Key=s3.key(path), UploadId=uploads[0]["UploadId"])
    return [p["Size"] for p in parts.get("Parts", [])]


def test_a_writer_sends_each_full_part_as_it_arrives_and_buffers_at_most_one(s3: S3Driver) -> None:
    data = os.urandom(2 * MIN_PART + 12345)
    w = s3.writer("big")
    for i in range(0, len(data), 1 << 16):
        w.write(data[i : i + (1 << 16)])
        assert len(w._buf) < MIN_PART + (1 << 16)
    assert _server_parts(s3, "big") == [MIN_PART, MIN_PART]  # sent before the end of the upload
    assert s3.stat("big") is None  # not readable before commit
    w.commit()
    w.close()
    assert hashlib.sha256(s3.get_content("big")).digest() == hashlib.sha256(data).digest()


def test_a_resumed_writer_copies_the_first_bytes_server_side_and_appends(s3: S3Driver) -> None:
    first = os.urandom(MIN_PART + 100)
    w = s3.writer("up")
    w.write(first)
    w.close()
    w = s3.writer("up", len(first) - 50)  # the last 50 bytes were never acknowledged
    w.write(b"next")
    assert _server_parts(s3, "up") == [len(first) - 50]  # a copied part, not bytes sent again
    w.commit()
    w.close()
    assert s3.get_content("up") == first[:-50] + b"next"


def test_truncating_into_parts_already_sent_keeps_the_bytes_before(s3: S3Driver) -> None:
    data = os.urandom(2 * MIN_PART + 10)
    w = s3.writer("t")
    w.write(data)
    w.truncate(MIN_PART + 7)
    w.write(b"end")
    w.close()
    assert s3.get_content("t") == data[: MIN_PART + 7] + b"end"


def test_a_cancelled_writer_leaves_no_object_and_no_upload(s3: S3Driver) -> None:
    w = s3.writer("c")
    w.write(os.urandom(MIN_PART + 1))
    w.cancel()
    assert s3.stat("c") is None
    assert s3.client.list_multipart_uploads(Bucket=s3.bucket, Prefix=s3.key("c")).get("Uploads", []) == []


def test_deleting_a_directory_aborts_the_multipart_uploads_under_it(s3: S3Driver) -> None:
    w = s3.writer("uploads/x/data")
    w.write(os.urandom(MIN_PART))  # one part sent, then the process "dies"
    s3.delete("uploads/x")
    left = s3.client.list_multipart_uploads(Bucket=s3.bucket, Prefix=s3.key("uploads"))
    assert left.get("Uploads", []) == []


def test_a_presigned_url_reads_the_object(s3: S3Driver) -> None:
    s3.put_content("p/obj", b"signed bytes")
    url = s3.url_for("p/obj", 60)
    assert url is not None and "Signature" in url
    with urllib.request.urlopen(url, timeout=30) as answer:
        assert answer.read() == b"signed bytes"


@pytest.mark.parametrize(
    ("url", "location"),
    [
        ("s3://bucket", S3Location("bucket")),
        ("s3://my.bucket-1/", S3Location("my.bucket-1")),
        ("s3://bucket/a/b/", S3Location("bucket", "a/b")),
    ],
)
def test_blob_urls_name_a_bucket_and_a_prefix(url: str, location: S3Location) -> None:
    assert parse_blob_url(url) == location


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://bucket/x", "not an s3://"),
        ("bucket/x", "not an s3://"),
        ("s3://", "not a valid bucket name"),
        ("s3://UPPER/x", "not a valid bucket name"),
        ("s3://ab", "not a valid bucket name"),
        ("s3://bucket/a/../b", "'..'"),
        ("s3://bucket/a//b", "empty"),
        ("s3://bucket/x?versionId=1", "no query"),
        ("s3://key:secret@bucket", "no query, user"),
    ],
)
def test_malformed_blob_urls_are_refused_saying_why(url: str, says: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_blob_url(url)
    assert says in str(info.value)
