"""Upload sessions over a real SQLite store and every storage backend (no network)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from dockyard.store import Store
from registry.metadata import MIGRATIONS, Metadata
from registry.reference import parse_digest
from registry.storage.driver import StorageDriver
from registry.storage.errors import ChunkOutOfOrder, DigestMismatch, SizeMismatch, UploadUnknown
from registry.storage.paths import blob_path
from registry.storage.uploads import Uploads

# the data module's SQL on both state backends (tests/conftest.py: state_backend)
pytestmark = pytest.mark.usefixtures("state_backend")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "state.db", MIGRATIONS)
    yield s
    s.close()


def _uploads(store: Store, driver: StorageDriver) -> Uploads:
    return Uploads(driver, Metadata(store))


async def _body(*chunks: bytes) -> AsyncIterator[bytes]:
    for c in chunks:
        yield c


class Broken(Exception):
    pass


async def _broken_body(data: bytes) -> AsyncIterator[bytes]:
    yield data
    raise Broken("client went away")


def _digest(data: bytes, algorithm: str = "sha256"):
    return parse_digest(f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}")


async def test_chunks_in_order_commit_to_a_content_addressed_blob(
    store: Store, driver: StorageDriver
) -> None:
    uploads = _uploads(store, driver)
    s = await uploads.start("shop/web")
    assert await uploads.append(s, _body(b"hello "), 0, 6) == 6
    assert await uploads.append(s, _body(b"world"), 6, 5) == 11
    digest = _digest(b"hello world")
    assert await uploads.finish(s, digest) == 11
    assert driver.get_content(blob_path(digest)) == b"hello world"
    assert Metadata(store).linked_blob_size("shop/web", str(digest)) == 11
    assert driver.list("uploads") == []
    assert Metadata(store).upload(s.id) is None


async def test_an_out_of_order_chunk_is_refused_without_changing_the_upload(
    store: Store, driver: StorageDriver
) -> None:
    uploads = _uploads(store, driver)
    s = await uploads.start("r")
    await uploads.append(s, _body(b"abc"), 0, 3)
    for start in (0, 2, 4):
        with pytest.raises(ChunkOutOfOrder) as exc:
            await uploads.append(s, _body(b"zz"), start, 2)
        assert exc.value.offset == 3
    await uploads.finish(s, _digest(b"abc"))


async def test_a_short_or_broken_body_is_rolled_back(store: Store, driver: StorageDriver) -> None:
    uploads = _uploads(store, driver)
    s = await uploads.start("r")
    await uploads.append(s, _body(b"keep"), 0, 4)
    with pytest.raises(SizeMismatch):
        await uploads.append(s, _body(b"short"), 4, 10)
    with pytest.raises(Broken):
        await uploads.append(s, _broken_body(b"partial"))
    assert s.offset == 4
    await uploads.append(s, _body(b"-rest"))
    await uploads.finish(s, _digest(b"keep-rest"))


async def test_a_wrong_digest_stores_nothing_and_ends_the_upload(
    store: Store, driver: StorageDriver
) -> None:
    uploads = _uploads(store, driver)
    s = await uploads.start("r")
    await uploads.append(s, _body(b"actual"))
    wrong = _digest(b"claimed")
    with pytest.raises(DigestMismatch):
        await uploads.finish(s, wrong)
    assert driver.stat(blob_path(wrong)) is None
    assert driver.stat(blob_path(_digest(b"actual"))) is None
    with pytest.raises(UploadUnknown):
        await uploads.get("r", s.id)


async def test_sha512_digests_are_checked_by_rehashing(store: Store, driver: StorageDriver) -> None:
    uploads = _uploads(store, driver)
    s = await uploads.start("r")
    await uploads.append(s, _body(b"five", b"twelve"))
    digest = _digest(b"fivetwelve", "sha512")
    await uploads.finish(s, digest)
    assert driver.get_content(blob_path(digest)) == b"fivetwelve"


async def test_after_a_restart_an_upload_resumes_from_its_acknowledged_offset(
    store: Store, driver: StorageDriver
) -> None:
    first = _uploads(store, driver)
    s = await first.start("r")
    await first.append(s, _body(b"acknowledged"))
    w = driver.writer(f"uploads/{s.id}/data")
    w.write(b"never acknowledged")  # what a killed server may have written
    w.close()
    second = _uploads(store, driver)  # a restarted server: nothing in memory
    resumed = await second.get("r", s.id)
    assert resumed.offset == len(b"acknowledged")
    with pytest.raises(UploadUnknown):
        await second.get("other", s.id)
    await second.append(resumed, _body(b" then more"), resumed.offset, 10)
    await second.finish(resumed, _digest(b"acknowledged then more"))


async def test_cancelled_and_unknown_uploads_are_gone(store: Store, driver: StorageDriver) -> None:
    uploads = _uploads(store, driver)
    s = await uploads.start("r")
    await uploads.cancel(s)
    for upload_id in (s.id, "0" * 32, "../etc"):
        with pytest.raises(UploadUnknown):
            await _uploads(store, driver).get("r", upload_id)


async def test_a_second_upload_of_stored_content_links_it_and_keeps_the_bytes(
    store: Store, driver: StorageDriver
) -> None:
    uploads = _uploads(store, driver)
    digest = _digest(b"same bytes")
    for repo in ("a", "b"):
        s = await uploads.start(repo)
        await uploads.append(s, _body(b"same bytes"))
        assert await uploads.finish(s, digest) == 10
    assert driver.get_content(blob_path(digest)) == b"same bytes"
    assert Metadata(store).repositories_linking(str(digest)) == ["a", "b"]
    assert driver.list("uploads") == []


async def test_a_new_blob_whose_file_vanished_before_its_commit_records_nothing(
    store: Store, driver: StorageDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new digest's bytes are renamed into place before the store's writer lock is taken;
    if garbage collection unlinks that path meanwhile (an old orphan of the same digest), the
    commit must notice inside its transaction and record nothing rather than a row without
    bytes."""
    uploads = _uploads(store, driver)
    s = await uploads.start("shop/web")
    await uploads.append(s, _body(b"doomed"))
    digest = _digest(b"doomed")
    move = driver.move

    def move_then_lose(src: str, dst: str) -> None:
        move(src, dst)
        driver.delete(dst)  # what GC's sweep of an old orphan file would do

    monkeypatch.setattr(driver, "move", move_then_lose)
    with pytest.raises(UploadUnknown):
        await uploads.finish(s, digest)
    meta = Metadata(store)
    assert meta.blob_size(str(digest)) is None
    assert meta.linked_blob_size("shop/web", str(digest)) is None
    assert meta.upload(s.id) is None  # the upload is cleanly gone
    assert driver.list("uploads") == []
