"""Garbage collection: the pure planner, and the sweep over a real store on every storage backend.

Time passes by handing GC a later ``now``: a run at ``now = T + grace + 1`` sees everything
made at ``T`` as older than the grace window.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
import uuid

import pytest

from dockyard.store import Store
from registry import gc
from registry.gc import BlobInfo, Inventory, plan
from registry.manifest import parse_manifest
from registry.metadata import MIGRATIONS, BlobsMissing, Metadata
from registry.reference import parse_digest
from registry.storage.blobs import BlobStore
from registry.storage.driver import FilesystemDriver, MemoryDriver
from registry.storage.errors import UploadUnknown
from registry.storage.paths import blob_path, upload_dir
from registry.storage.uploads import Uploads
from tests.support.seaweed import s3_driver

# the data module's SQL on both state backends (tests/conftest.py: state_backend)
pytestmark = pytest.mark.usefixtures("state_backend")

GRACE = 60.0
NOW = 1_000_000.0
OLD = NOW - GRACE - 1
NEW = NOW - 1


def d(n: int) -> str:
    return "sha256:" + f"{n:064x}"


# -- the planner -------------------------------------------------------------------------------

def test_an_unreferenced_blob_whose_row_links_and_file_are_old_is_garbage():
    inv = Inventory(blobs={d(1): BlobInfo(10, OLD, OLD)}, blob_files={d(1): (10, OLD)})
    p = plan(inv, NOW, GRACE)
    assert p.blobs == (d(1),) and p.bytes == 10


def test_a_blob_named_by_any_manifest_is_kept_however_old():
    inv = Inventory(blobs={d(1): BlobInfo(10, OLD, OLD)}, referenced=frozenset({d(1)}))
    assert plan(inv, NOW, GRACE).blobs == ()


@pytest.mark.parametrize(
    "info, file_time",
    [(BlobInfo(1, NEW, None), OLD), (BlobInfo(1, OLD, NEW), OLD), (BlobInfo(1, OLD, OLD), NEW)],
    ids=["new row", "new link (upload or mount)", "new file"],
)
def test_anything_within_the_grace_window_keeps_an_unreferenced_blob(info, file_time):
    inv = Inventory(blobs={d(1): info}, blob_files={d(1): (1, file_time)})
    p = plan(inv, NOW, GRACE)
    assert p.blobs == () and p.kept_recent == 1


def test_a_file_the_store_does_not_know_goes_only_once_older_than_the_grace_window():
    inv = Inventory(blob_files={d(1): (5, OLD), d(2): (7, NEW)})
    p = plan(inv, NOW, GRACE)
    assert p.orphan_files == (d(1),) and p.bytes == 5 and p.kept_recent == 1


def test_uploads_not_touched_within_the_grace_window_are_abandoned_unless_busy():
    inv = Inventory(
        uploads={"old": OLD, "fresh": NEW, "busy": OLD, "freshbytes": OLD},
        upload_dirs={"old": OLD, "fresh": NEW, "busy": OLD, "freshbytes": NEW, "stray": OLD, "newstray": NEW},
        busy_uploads=frozenset({"busy"}),
    )
    p = plan(inv, NOW, GRACE)
    assert p.uploads == ("old",)
    assert p.orphan_uploads == ("stray",)


def test_a_zero_grace_window_collects_everything_unreferenced():
    blobs = {d(1): BlobInfo(1, NEW, NEW), d(2): BlobInfo(1, NEW, NEW)}
    inv = Inventory(blobs=blobs, referenced=frozenset({d(2)}))
    assert plan(inv, NOW, 0).blobs == (d(1),)


# -- the sweep over a real store ---------------------------------------------------------------

@pytest.fixture(params=["filesystem", "memory", "s3"])
def parts(request, tmp_path):
    store = Store.open(tmp_path / "state.db", MIGRATIONS)
    if request.param == "s3":  # a real S3 server (SeaweedFS), a prefix per test
        server = request.getfixturevalue("seaweed")
        driver = s3_driver(server, server.bucket("dockyard-gc"), f"gc/{uuid.uuid4().hex}")
    else:
        driver = FilesystemDriver(tmp_path / "registry") if request.param == "filesystem" else MemoryDriver()
    meta = Metadata(store)
    blobs = BlobStore(driver, meta)
    yield store, blobs, meta, blobs.uploads
    store.close()


async def push_blob(uploads: Uploads, repository: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    session = await uploads.start(repository, persistent=False)
    await uploads.append(session, _body(data))
    await uploads.finish(session, parse_digest(digest))
    return digest


async def _body(data: bytes):
    yield data


async def push_manifest(meta: Metadata, repository: str, blobs: list[tuple[str, int]], tag: str | None = None,
                        subject: str | None = None) -> str:
    doc = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blobs[0][0],
                   "size": blobs[0][1]},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": b, "size": s}
                   for b, s in blobs[1:]],
    }
    if subject:
        doc["subject"] = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": subject,
                          "size": 1}
    body = json.dumps(doc).encode()
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    await meta.put_manifest(repository, digest, body, parse_manifest(body, doc["mediaType"]), tag)
    return digest


def later(grace: float = GRACE) -> float:
    return time.time() + grace + 1


def on_disk(driver: FilesystemDriver, digest: str) -> bool:
    return driver.stat(blob_path(parse_digest(digest))) is not None


async def test_gc_removes_an_unreferenced_blob_and_keeps_the_blobs_of_stored_manifests(parts):
    store, blobs, meta, uploads = parts
    driver = blobs.driver
    config = await push_blob(uploads, "shop/web", b"{}")
    layer = await push_blob(uploads, "shop/web", b"layer")
    orphan = await push_blob(uploads, "shop/web", b"orphan")
    await push_manifest(meta, "shop/web", [(config, 2), (layer, 5)], tag="v1")

    report = await gc.collect_garbage(store, blobs, GRACE, uploads=uploads, now=later())

    assert report.blobs_deleted == [orphan] and report.bytes_deleted == 6
    assert not on_disk(driver, orphan) and meta.blob_size(orphan) is None
    assert meta.linked_blob_size("shop/web", orphan) is None
    assert on_disk(driver, layer) and meta.linked_blob_size("shop/web", layer) == 5


async def test_within_the_grace_window_nothing_is_removed(parts):
    store, blobs, _, uploads = parts
    driver = blobs.driver
    orphan = await push_blob(uploads, "shop/web", b"orphan")
    report = await gc.collect_garbage(store, blobs, GRACE, uploads=uploads)
    assert report.blobs_deleted == [] and report.blobs_kept_recent == 1 and on_disk(driver, orphan)


async def test_a_blob_shared_with_another_repository_stays_while_any_manifest_names_it(parts):
    store, blobs, meta, uploads = parts
    shared = await push_blob(uploads, "a", b"shared")
    await meta.link_blob("b", shared)
    await push_manifest(meta, "b", [(shared, 6)], tag="v1")
    report = await gc.collect_garbage(store, blobs, GRACE, uploads=uploads, now=later())
    assert report.blobs_deleted == [] and meta.linked_blob_size("a", shared) == 6


async def test_deleting_the_manifest_makes_its_blobs_garbage(parts):
    store, blobs, meta, uploads = parts
    config = await push_blob(uploads, "r", b"cfg")
    manifest = await push_manifest(meta, "r", [(config, 3)], tag="v1")
    assert await meta.delete_tag("r", "v1")  # the manifest (by digest) still names it
    assert (await gc.collect_garbage(store, blobs, GRACE, now=later())).blobs_deleted == []
    assert await meta.delete_manifest("r", manifest)
    assert (await gc.collect_garbage(store, blobs, GRACE, now=later())).blobs_deleted == [config]


async def test_a_referrer_keeps_its_own_blobs_but_its_subject_keeps_nothing(parts):
    store, blobs, meta, uploads = parts
    driver = blobs.driver
    subject_cfg = await push_blob(uploads, "r", b"subject-config")
    sig = await push_blob(uploads, "r", b"signature")
    # The subject's manifest was never pushed (allowed); its config blob is just an orphan.
    await push_manifest(meta, "r", [(sig, 9)], subject="sha256:" + "ab" * 32)
    report = await gc.collect_garbage(store, blobs, GRACE, now=later())
    assert report.blobs_deleted == [subject_cfg]
    assert on_disk(driver, sig)


async def test_a_mount_renews_the_grace_window_of_an_old_blob(parts):
    store, blobs, meta, uploads = parts
    blob = await push_blob(uploads, "a", b"data")
    row = store.query_one("SELECT created FROM registry_blob_links WHERE digest = ?", (blob,))
    await asyncio.sleep(0.01)
    assert await meta.link_blob("a", blob)  # mounting again rewrites the link's time
    renewed = store.query_one("SELECT created FROM registry_blob_links WHERE digest = ?", (blob,))
    assert renewed[0] > row[0]
    report = await gc.collect_garbage(store, blobs, GRACE, now=renewed[0] + GRACE - 1)
    assert report.blobs_deleted == []


async def test_a_dry_run_reports_the_garbage_and_removes_nothing(parts):
    store, blobs, meta, uploads = parts
    driver = blobs.driver
    orphan = await push_blob(uploads, "r", b"orphan")
    session = await uploads.start("r")
    report = await gc.collect_garbage(store, blobs, GRACE, dry_run=True, uploads=uploads, now=later())
    assert report.dry_run and report.blobs_deleted == [orphan] and report.uploads_deleted == [session.id]
    assert on_disk(driver, orphan) and meta.upload(session.id) is not None
    assert driver.stat(f"{upload_dir(session.id)}/data") is not None


async def test_an_abandoned_upload_is_removed_and_answers_unknown_afterwards(parts):
    store, blobs, meta, uploads = parts
    driver = blobs.driver
    session = await uploads.start("r")
    await uploads.append(session, _body(b"part"))
    fresh = await uploads.start("r")

    report = await gc.collect_garbage(store, blobs, GRACE, uploads=uploads, now=time.time() + GRACE / 2)
    assert report.uploads_deleted == []
    report = await gc.collect_garbage(store, blobs, GRACE, uploads=uploads, now=later())

    assert sorted(report.uploads_deleted) == sorted([session.id, fresh.id])
    assert meta.upload(session.id) is None and driver.list("uploads") == []
    with pytest.raises(UploadUnknown):
        await uploads.append(session, _body(b"more"))
    with pytest.raises(UploadUnknown):
        await uploads.get("r", session.id)


async def test_an_upload_a_request_is_writing_to_is_never_removed(parts):
    store, blobs, meta, uploads = parts
    session = await uploads.start("r")
    gate = asyncio.Event()

    async def slow_body():
        yield b"first"
        await gate.wait()
        yield b"second"

    append = asyncio.create_task(uploads.append(session, slow_body()))
    await asyncio.sleep(0.05)
    report = await gc.collect_garbage(store, blobs, GRACE, uploads=uploads, now=later())
    gate.set()
    assert await append == len(b"firstsecond")
    assert report.uploads_deleted == []
    assert meta.upload(session.id).offset == len(b"firstsecond")


async def test_files_the_store_never_recorded_are_removed_once_old(parts):
    store, blobs, _, _ = parts
    driver = blobs.driver
    stray = "sha256:" + hashlib.sha256(b"stray").hexdigest()
    driver.put_content(blob_path(parse_digest(stray)), b"stray")
    driver.put_content("uploads/" + "f" * 32 + "/data", b"partial")
    driver.put_content("blobs/sha256/zz/not-a-digest", b"x")  # not GC's to judge
    assert (await gc.collect_garbage(store, blobs, GRACE)).blobs_deleted == []
    report = await gc.collect_garbage(store, blobs, GRACE, now=later())
    assert report.blobs_deleted == [stray] and report.uploads_deleted == ["f" * 32]
    assert not on_disk(driver, stray) and driver.list("uploads") == []
    info = driver.stat("blobs/sha256/zz/not-a-digest")
    assert info is not None and info.size == 1


async def test_a_blob_referenced_after_planning_survives_the_sweep(parts):
    store, blobs, meta, uploads = parts
    driver = blobs.driver
    blob = await push_blob(uploads, "r", b"late")
    now = later()
    the_plan = plan(await gc.collect(store, blobs, uploads), now, GRACE)
    assert the_plan.blobs == (blob,)
    # Between plan and sweep a push names it in a manifest (linking it again, as a push does).
    await meta.link_blob("r", blob)
    await push_manifest(meta, "r", [(blob, 4)], tag="v1")
    report = await gc.sweep(the_plan, store, blobs, now - GRACE, uploads)
    assert report.blobs_deleted == [] and report.skipped == 1 and on_disk(driver, blob)


async def test_after_a_blob_is_collected_a_mount_and_a_manifest_naming_it_are_refused(parts):
    store, blobs, meta, uploads = parts
    blob = await push_blob(uploads, "r", b"gone")
    await gc.collect_garbage(store, blobs, GRACE, now=later())
    assert not await meta.link_blob("other", blob)
    with pytest.raises(BlobsMissing):
        await push_manifest(meta, "r", [(blob, 4)], tag="v1")
    assert meta.manifest_by_tag("r", "v1") is None


async def test_a_blob_pushed_again_after_collection_is_whole(parts):
    store, blobs, meta, uploads = parts
    driver = blobs.driver
    blob = await push_blob(uploads, "r", b"again")
    await gc.collect_garbage(store, blobs, GRACE, now=later())
    assert await push_blob(uploads, "r", b"again") == blob
    assert driver.get_content(blob_path(parse_digest(blob))) == b"again"
    assert meta.linked_blob_size("r", blob) == 5


async def test_concurrent_pushes_of_the_same_blob_with_gc_at_zero_grace_never_lose_a_stored_row(parts):
    """With no grace at all GC may take any unreferenced blob; what it must never do is leave a
    row without its file (the rename into place and the row share one transaction)."""
    store, blobs, meta, uploads = parts
    driver = blobs.driver

    deleted: list[str] = []
    # On S3 a push is some ten round trips and a GC run several listings: with pushes back to
    # back a link lands during every run and GC never wins the race this test is about. There
    # one pusher waits, after each push, for the end of a GC run (the next one already races
    # the next push).
    pushing = pushers = 1 if driver.remote else 4
    runs = 0
    ran = asyncio.Event()

    async def pusher(i: int) -> None:
        nonlocal pushing
        # Push on until GC has taken the blob a few times while pushes went on (bounded).
        for n in range(500):
            await push_blob(uploads, f"r{i}", b"same bytes")
            if n >= 10 and len(deleted) >= 3:
                break
            if driver.remote:
                seen = runs
                while runs == seen:
                    ran.clear()
                    await ran.wait()
        pushing -= 1

    async def collector() -> None:
        nonlocal runs
        while pushing:
            deleted.extend((await gc.collect_garbage(store, blobs, 0.0, uploads=uploads)).blobs_deleted)
            runs += 1
            ran.set()
            await asyncio.sleep(0)

    await asyncio.gather(*(pusher(i) for i in range(pushers)), collector())
    assert len(deleted) >= 3  # GC did take the blob between pushes
    for (digest,) in store.query("SELECT digest FROM registry_blobs"):
        assert on_disk(driver, digest)
    for (digest,) in store.query("SELECT digest FROM registry_blob_links"):
        assert meta.blob_size(digest) is not None


def test_file_times_count_the_rename_into_place(tmp_path):
    driver = FilesystemDriver(tmp_path)
    driver.put_content("f", b"x")
    os.utime(tmp_path / "f", (1, 1))  # an old mtime, as a renamed upload keeps
    info = driver.stat("f")
    assert info is not None and info.modified > 1


async def test_removing_a_repository_refuses_one_with_manifests_unless_forced_and_leaves_its_blobs_to_gc(
    parts,
):
    from registry.metadata import RepositoryNotEmpty

    store, blobs, meta, uploads = parts
    config = await push_blob(uploads, "gone", b"cfg")
    shared = await push_blob(uploads, "kept", b"shared")
    await meta.link_blob("gone", shared)
    manifest = await push_manifest(meta, "gone", [(config, 3), (shared, 6)], tag="v1")
    await push_manifest(meta, "kept", [(shared, 6)], tag="v1")
    with pytest.raises(RepositoryNotEmpty) as refused:
        await meta.delete_repository("gone")
    assert (refused.value.manifests, refused.value.tags) == (1, 1)
    assert meta.repositories(None, None) == ["gone", "kept"]
    removed = await meta.delete_repository("gone", force=True)
    assert (removed.manifests, removed.tags, removed.links) == (1, 1, 2)
    assert meta.repositories(None, None) == ["kept"] and meta.manifest_by_digest("gone", manifest) is None
    assert await meta.delete_repository("gone") is None
    report = await gc.collect_garbage(store, blobs, GRACE, uploads=uploads, now=later())
    assert report.blobs_deleted == [config] and meta.linked_blob_size("kept", shared) == 6


async def test_an_emptied_repository_is_removed_without_force(parts):
    _, _, meta, uploads = parts
    config = await push_blob(uploads, "empty", b"cfg")
    manifest = await push_manifest(meta, "empty", [(config, 3)], tag="v1")
    assert await meta.delete_manifest("empty", manifest)
    removed = await meta.delete_repository("empty")
    assert (removed.manifests, removed.tags, removed.links) == (0, 0, 1)
    assert not meta.repository_exists("empty")
