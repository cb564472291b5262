"""Garbage collection: remove unreferenced blobs and abandoned uploads while the registry serves.

Mark and sweep, split as a pure planner over an :class:`Inventory` and a thin I/O shell.

**Mark.** A blob is live when any of these holds:

* a stored manifest of any repository names it (layers, config; children of indexes too).
  A referrer is a manifest like any other, so its own blobs stay; its ``subject`` is not a
  reference and keeps nothing alive;
* one of its links (``registry_blob_links``) was made within the grace window: every upload
  that commits a blob and every mount (re)writes its link's time, so the blobs of a push in
  flight are live until its manifest names them;
* its row or its file is younger than the grace window.

**Sweep.** Unmarked blobs lose their links, their row and their file; upload sessions not
touched (started, appended to) within the grace window lose their row and their bytes; files
and upload directories that the store does not know (a crash between rename and commit) go
once they are older than the grace window.

**Safety while serving.** The plan is made from a snapshot; each deletion checks the same
conditions again inside a write transaction of the store and deletes the blob's file inside
that transaction. The other side keeps its half of the bargain (``registry.metadata``): a
commit of a digest that has a row renames the verified bytes into place inside the
transaction that writes the row; one of a new digest renames them before (a row-less file is
young, so GC leaves it, as it leaves any digest that an upload of this process is putting in
place: ``Uploads.placing``) and checks inside its transaction that the file is still there; a
mount links only a blob whose row still exists, and a manifest PUT checks inside its
transaction that every blob it names is still linked. So a blob is never deleted after a
push linked it, nor linked after GC deleted it; a push whose blobs were collected between its
HEAD and its manifest PUT gets ``MANIFEST_BLOB_UNKNOWN`` and nothing half-stored. An upload
that a request is appending to or finishing in this process is never dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator, Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from dockyard.aws.errors import InvalidParameterException
from dockyard.periodic import every
from dockyard.store import Store, Tx
from registry.metadata import TOPIC
from registry.reference import parse_digest
from registry.storage.blobs import BlobStore
from registry.storage.driver.base import off_loop

if TYPE_CHECKING:
    from dockyard.aws.protocol import Call
    from dockyard.platform import Platform
    from registry.handlers.base import Registry
    from registry.storage.uploads import Uploads

__all__ = [
    "BlobInfo",
    "Inventory",
    "Plan",
    "Report",
    "collect",
    "collect_garbage",
    "install",
    "plan",
    "sweep",
]

log = logging.getLogger("dockyard.registry.gc")

BATCH = 200  # blobs deleted per write transaction (keeps the store's writer lock short)


@dataclass(frozen=True)
class BlobInfo:
    """A blob's row: its size, when the row was written, and its newest link's time."""

    size: int
    created: float
    newest_link: float | None = None


@dataclass(frozen=True)
class Inventory:
    """What GC looks at: the store's rows and the storage's files, read at one moment.

    Times are seconds since the epoch; a file's time is its driver's ``FileInfo.modified``
    (a rename into place counts as a change: on the filesystem, the later of mtime and ctime).
    """

    blobs: dict[str, BlobInfo] = field(default_factory=dict)
    referenced: frozenset[str] = frozenset()
    uploads: dict[str, float] = field(default_factory=dict)  # id -> last touched
    blob_files: dict[str, tuple[int, float]] = field(default_factory=dict)  # digest -> (size, time)
    upload_dirs: dict[str, float] = field(default_factory=dict)  # id -> newest time inside
    busy_uploads: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Plan:
    """What to delete. ``blobs`` have rows (and links); ``orphan_files`` only files."""

    blobs: tuple[str, ...] = ()
    orphan_files: tuple[str, ...] = ()
    uploads: tuple[str, ...] = ()
    orphan_uploads: tuple[str, ...] = ()
    bytes: int = 0
    kept_recent: int = 0
    orphan_sizes: tuple[tuple[str, int], ...] = ()


@dataclass
class Report:
    """What a GC run removed (or, in a dry run, would remove)."""

    dry_run: bool
    grace: float
    blobs_deleted: list[str] = field(default_factory=list)
    bytes_deleted: int = 0
    uploads_deleted: list[str] = field(default_factory=list)
    blobs_kept: int = 0
    blobs_kept_recent: int = 0
    skipped: int = 0  # planned but found live (or busy) on the re-check
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan(inv: Inventory, now: float, grace: float) -> Plan:
    """Decide what is garbage in ``inv`` at time ``now`` with a grace window of ``grace`` s.

    Pure. A blob is kept if referenced, if its row, newest link or file is newer than
    ``now - grace``; an upload is kept if touched after that or busy.
    """
    cutoff = now - grace
    blobs: list[str] = []
    size = 0
    recent = 0
    for digest, info in inv.blobs.items():
        if digest in inv.referenced:
            continue
        file_time = inv.blob_files.get(digest, (0, 0.0))[1]
        newest = max(info.created, info.newest_link or 0.0, file_time)
        if newest >= cutoff:
            recent += 1
            continue
        blobs.append(digest)
        size += info.size
    orphans: list[tuple[str, int]] = []
    for digest, (file_size, changed) in inv.blob_files.items():
        if digest in inv.blobs or digest in inv.referenced:
            continue
        if changed >= cutoff:
            recent += 1
            continue
        orphans.append((digest, file_size))
        size += file_size
    uploads = [
        u for u, touched in inv.uploads.items()
        if touched < cutoff and inv.upload_dirs.get(u, 0.0) < cutoff and u not in inv.busy_uploads
    ]
    orphan_uploads = [
        u for u, changed in inv.upload_dirs.items()
        if u not in inv.uploads and changed < cutoff and u not in inv.busy_uploads
    ]
    return Plan(
        tuple(sorted(blobs)), tuple(sorted(d for d, _ in orphans)), tuple(sorted(uploads)),
        tuple(sorted(orphan_uploads)), size, recent, tuple(sorted(orphans)),
    )


# -- I/O -------------------------------------------------------------------------------------

def _blob_files(blobs: BlobStore) -> dict[str, tuple[int, float]]:
    return {digest: (info.size, info.modified) for digest, info in blobs.files().items()}


async def collect(store: Store, blobs: BlobStore, uploads: Uploads | None = None) -> Inventory:
    """Read the inventory: rows from the store, files from the blob store (in a thread)."""
    rows = {
        digest: BlobInfo(size, created, newest)
        for digest, size, created, newest in store.query(
            "SELECT b.digest, b.size, b.created, max(l.created) FROM registry_blobs b"
            " LEFT JOIN registry_blob_links l ON l.digest = b.digest GROUP BY b.digest"
        )
    }
    referenced = frozenset(
        r[0] for r in store.query("SELECT DISTINCT digest FROM registry_manifest_references")
    )
    sessions = {r[0]: r[1] for r in store.query("SELECT id, updated FROM registry_uploads")}
    blob_files, upload_dirs = await asyncio.to_thread(lambda: (_blob_files(blobs), blobs.upload_dirs()))
    busy = frozenset(u for u in [*sessions, *upload_dirs] if uploads is not None and uploads.busy(u))
    return Inventory(rows, referenced, sessions, blob_files, upload_dirs, busy)


def _blob_is_garbage(tx: Tx, digest: str, cutoff: float) -> bool:
    """The planner's conditions for a blob with a row, checked again inside ``tx``."""
    if tx.query_one("SELECT 1 FROM registry_manifest_references WHERE digest = ? LIMIT 1", (digest,)):
        return False
    row = tx.query_one("SELECT created FROM registry_blobs WHERE digest = ?", (digest,))
    if row is None or row[0] >= cutoff:
        return False
    newest = tx.query_one("SELECT max(created) FROM registry_blob_links WHERE digest = ?", (digest,))[0]
    return newest is None or newest < cutoff


def _file_is_old(blobs: BlobStore, digest: str, cutoff: float) -> bool:
    parsed = parse_digest(digest)
    assert parsed is not None
    info = blobs.stat(parsed)
    return info is None or info.modified < cutoff


def _batches(items: Iterable[str]) -> Iterable[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


async def sweep(
    the_plan: Plan,
    store: Store,
    blobs: BlobStore,
    cutoff: float,
    uploads: Uploads | None = None,
    report: Report | None = None,
) -> Report:
    """Delete what ``the_plan`` names, each only if still garbage under the store's lock."""
    report = report or Report(dry_run=False, grace=0.0)
    sizes: dict[str, int] = {}
    the_plan_sizes = dict(the_plan.orphan_sizes)
    for batch in _batches([*the_plan.blobs, *the_plan.orphan_files]):
        async with store.transaction() as tx:
            for digest in batch:
                if uploads is not None and uploads.placing(digest):
                    report.skipped += 1  # a finishing upload is putting these bytes in place
                    continue
                row = tx.query_one("SELECT size FROM registry_blobs WHERE digest = ?", (digest,))
                if row is not None:
                    if not _blob_is_garbage(tx, digest, cutoff):
                        report.skipped += 1
                        continue
                    repos = [r[0] for r in tx.query(
                        "SELECT repository FROM registry_blob_links WHERE digest = ?", (digest,)
                    )]
                    tx.execute("DELETE FROM registry_blob_links WHERE digest = ?", (digest,))
                    tx.execute("DELETE FROM registry_blobs WHERE digest = ?", (digest,))
                    for repo in repos:
                        tx.changed(TOPIC, f"{repo}@{digest}")
                    sizes[digest] = row[0]
                elif digest in the_plan.blobs or not await off_loop(
                    blobs.driver, _file_is_old, blobs, digest, cutoff
                ):
                    report.skipped += 1  # a row vanished under us, or a file was just renamed in
                    continue
                else:
                    sizes[digest] = the_plan_sizes.get(digest, 0)
                # Inside the transaction: no commit can rename this digest into place meanwhile.
                await off_loop(blobs.driver, blobs.delete, digest)
                report.blobs_deleted.append(digest)
    report.bytes_deleted += sum(sizes.values())
    for upload_id in the_plan.uploads:
        if uploads is not None and uploads.busy(upload_id):
            report.skipped += 1
            continue
        async with store.transaction() as tx:
            cur = tx.execute("DELETE FROM registry_uploads WHERE id = ? AND updated < ?", (upload_id, cutoff))
        if not cur.rowcount:
            report.skipped += 1
            continue
        await _drop_upload(blobs, uploads, upload_id)
        report.uploads_deleted.append(upload_id)
    for upload_id in the_plan.orphan_uploads:
        if (uploads is not None and uploads.busy(upload_id)) or store.query_one(
            "SELECT 1 FROM registry_uploads WHERE id = ?", (upload_id,)
        ):
            report.skipped += 1
            continue
        await _drop_upload(blobs, uploads, upload_id)
        report.uploads_deleted.append(upload_id)
    return report


async def _drop_upload(blobs: BlobStore, uploads: Uploads | None, upload_id: str) -> None:
    if uploads is not None:
        await uploads.drop(upload_id)
    else:
        blobs.delete_upload(upload_id)


_running: weakref.WeakKeyDictionary[Store, asyncio.Lock] = weakref.WeakKeyDictionary()


async def collect_garbage(
    store: Store,
    blobs: BlobStore,
    grace: float,
    dry_run: bool = False,
    uploads: Uploads | None = None,
    now: float | None = None,
) -> Report:
    """One GC run: collect, plan, and (unless ``dry_run``) sweep. Runs one at a time per store."""
    lock = _running.setdefault(store, asyncio.Lock())
    async with lock:
        started = time.monotonic()
        now = time.time() if now is None else now
        inv = await collect(store, blobs, uploads)
        the_plan = plan(inv, now, grace)
        report = Report(dry_run=dry_run, grace=grace)
        report.blobs_kept_recent = the_plan.kept_recent
        if dry_run:
            report.blobs_deleted = [*the_plan.blobs, *the_plan.orphan_files]
            report.bytes_deleted = the_plan.bytes
            report.uploads_deleted = [*the_plan.uploads, *the_plan.orphan_uploads]
        else:
            await sweep(the_plan, store, blobs, now - grace, uploads, report)
        report.blobs_kept = len(inv.blobs) - sum(1 for d in report.blobs_deleted if d in inv.blobs)
        report.seconds = round(time.monotonic() - started, 3)
        if report.blobs_deleted or report.uploads_deleted:
            log.info(
                "gc", extra={"blobs": len(report.blobs_deleted), "bytes": report.bytes_deleted,
                             "uploads": len(report.uploads_deleted), "dry_run": dry_run},
            )
        return report


# -- the running server: periodic online GC and the control API operation -------------------

OPERATION = "RunRegistryGarbageCollection"


async def run_for(registry: Registry, grace: float, dry_run: bool = False) -> Report:
    """One GC run over a serving registry's own store, storage and upload sessions."""
    return await collect_garbage(registry.meta.store, registry.blobs, grace, dry_run, registry.uploads)


def install(platform: Platform) -> None:
    """Register ``RunRegistryGarbageCollection`` (ECR target) and, when ``gc_interval`` > 0,
    a loop that collects every ``gc_interval`` seconds with a grace of ``gc_grace``. A read-only
    registry collects nothing: no loop, and the operation answers InvalidParameterException."""
    from dockyard.aws.protocol import ECR
    from registry.handlers.base import REGISTRY

    config = platform.config

    async def operation(call: Call, params: dict[str, Any]) -> dict[str, Any]:
        grace = params.get("graceSeconds", config.gc_grace)
        dry_run = params.get("dryRun", False)
        if isinstance(grace, bool) or not isinstance(grace, int | float) or not 0 <= grace < float("inf"):
            raise InvalidParameterException("graceSeconds must be a number of seconds >= 0")
        if not isinstance(dry_run, bool):
            raise InvalidParameterException("dryRun must be true or false")
        if config.registry_read_only:
            raise InvalidParameterException("the registry is read-only (registry_read_only): no GC")
        report = await run_for(platform.registry[REGISTRY], float(grace), dry_run)
        return report.as_dict()

    platform.ops.add(ECR, OPERATION, operation)
    if config.gc_interval > 0 and not config.registry_read_only:
        platform.contexts.append(_periodic)


async def _periodic(platform: Platform) -> AsyncIterator[None]:
    """Start/stop hook: a task that runs GC every ``gc_interval`` seconds until stopped."""
    from registry.handlers.base import REGISTRY

    config = platform.config

    async def step() -> None:
        await run_for(platform.registry[REGISTRY], config.gc_grace)

    async with every(config.gc_interval, step, name="registry-gc", what="periodic gc", log=log):
        yield
