"""Image scans: the ``registry_image_scans`` table (migration ``registry`` 4) and the
:class:`Scanner` that fills it in the background.

A scan is one row per (repository, image digest): ``status`` is ``IN_PROGRESS``, ``COMPLETE``,
``FAILED`` (with ``reason``) or ``UNSUPPORTED_IMAGE``; a COMPLETE one holds its findings (JSON,
at most :data:`MAX_FINDINGS`), their severity counts, ``completed`` and the vulnerability DB's
newest record date (``source_updated``, epoch seconds). A later scan of the same digest
replaces it; :func:`prune` (run by :meth:`Scanner.watch`) drops those of deleted images.

:meth:`Scanner.pushed` is the registry's push hook: it schedules a scan (a task, never awaited
by the push) when the repository scans on push (its ``scanOnPush``, or a registry scanning rule
of frequency SCAN_ON_PUSH or CONTINUOUS_SCAN whose filter matches it). :meth:`Scanner.watch`
rescans every image of the continuously scanned repositories once the DB was imported into
again (checked every :data:`RESCAN_INTERVAL` seconds). At most
:data:`CONCURRENCY` scans run at once, each ``scan_image`` in a thread; the vulnerability DB is
opened per scan, so an import made while the server runs is used by the next scan. Without an
imported DB a scan is FAILED with :data:`NO_DB` (rather than COMPLETE with no findings, which
would read as a clean image).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dockyard.store import Migration, Store
from registry.metadata import TOPIC, Metadata

__all__ = ["MIGRATIONS", "NO_DB", "Sbom", "Scan", "Scanner", "get", "sbom_of", "source_date"]

log = logging.getLogger("dockyard.registry.scan")

MIGRATIONS = [
    Migration(
        "registry",
        4,
        """
        CREATE TABLE registry_image_scans (
            repository TEXT NOT NULL, digest TEXT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL,
            started REAL NOT NULL, completed REAL, source_updated REAL, counts TEXT NOT NULL,
            findings TEXT NOT NULL, PRIMARY KEY (repository, digest)) WITHOUT ROWID;
        """,
    ),
    # its own component (not "registry" 5), so other changes to the registry's schema number freely
    Migration(
        "registry_sbom",
        1,
        """
        CREATE TABLE registry_image_sboms (
            repository TEXT NOT NULL, digest TEXT NOT NULL, os TEXT, packages TEXT NOT NULL,
            PRIMARY KEY (repository, digest)) WITHOUT ROWID;
        """,
    ),
]

CONCURRENCY = 1
RESCAN_INTERVAL = 30.0  # seconds between checks of the DB for continuous scanning
MAX_QUEUED = 1000
MAX_FINDINGS = 10_000
MAX_PACKAGES = 50_000
NO_DB = "no vulnerability database imported: run dockyard vulndb import"


@dataclass(frozen=True)
class Scan:
    """One stored scan (see the module docstring); ``findings`` are ``Finding`` dicts."""

    repository: str
    digest: str
    status: str
    reason: str
    started: float
    completed: float | None
    source_updated: float | None
    counts: dict[str, int]
    findings: list[dict[str, Any]]
    sbom: Sbom | None = None  # what a COMPLETE scan catalogued (stored apart: see :func:`sbom_of`)


@dataclass(frozen=True)
class Sbom:
    """What a scan catalogued: the OS (``OsInfo`` dict, None: none found) and the packages
    (``Package`` dicts, at most :data:`MAX_PACKAGES`)."""

    os: dict[str, str] | None
    packages: list[dict[str, Any]]


def sbom_of(store: Store, repository: str, digest: str) -> Sbom | None:
    """The packages of the last COMPLETE scan of ``digest`` (None: none stored)."""
    row = store.query_one(
        "SELECT os, packages FROM registry_image_sboms WHERE repository = ? AND digest = ?",
        (repository, digest),
    )
    return None if row is None else Sbom(json.loads(row[0]) if row[0] else None, json.loads(row[1]))


def get(store: Store, repository: str, digest: str) -> Scan | None:
    row = store.query_one(
        "SELECT status, reason, started, completed, source_updated, counts, findings"
        " FROM registry_image_scans WHERE repository = ? AND digest = ?",
        (repository, digest),
    )
    if row is None:
        return None
    counts, findings = json.loads(row[5]), json.loads(row[6])
    return Scan(repository, digest, row[0], row[1], row[2], row[3], row[4], counts, findings)


async def put(store: Store, scan: Scan) -> None:
    async with store.transaction() as tx:
        tx.execute(
            "INSERT OR REPLACE INTO registry_image_scans (repository, digest, status, reason, started,"
            " completed, source_updated, counts, findings) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                scan.repository, scan.digest, scan.status, scan.reason, scan.started, scan.completed,
                scan.source_updated, json.dumps(scan.counts), json.dumps(scan.findings),
            ),
        )
        if scan.sbom is not None:
            tx.execute(
                "INSERT OR REPLACE INTO registry_image_sboms (repository, digest, os, packages)"
                " VALUES (?, ?, ?, ?)",
                (
                    scan.repository, scan.digest, json.dumps(scan.sbom.os) if scan.sbom.os else None,
                    json.dumps(scan.sbom.packages),
                ),
            )
        elif scan.status != "IN_PROGRESS":
            tx.execute(
                "DELETE FROM registry_image_sboms WHERE repository = ? AND digest = ?",
                (scan.repository, scan.digest),
            )
        tx.changed(TOPIC, f"scan/{scan.repository}@{scan.digest}")


async def prune(store: Store) -> int:
    """Drop the scans of images no longer stored (deleted manifests or repositories)."""
    async with store.transaction() as tx:
        cur = tx.execute(
            "DELETE FROM registry_image_scans AS s WHERE NOT EXISTS (SELECT 1 FROM registry_manifests m"
            " WHERE m.repository = s.repository AND m.digest = s.digest)"
        )
        tx.execute(
            "DELETE FROM registry_image_sboms AS s WHERE NOT EXISTS (SELECT 1 FROM registry_manifests m"
            " WHERE m.repository = s.repository AND m.digest = s.digest)"
        )
        return cur.rowcount


def source_date(text: str) -> float | None:
    """Epoch seconds of an ISO-8601 date or time (naive: UTC); None when empty or unreadable."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


Outcome = tuple[str, str, float | None, dict[str, int], list, Sbom | None]


def run_scan(opener: Any, body: bytes, db_path: Path) -> Outcome:
    """One scan, synchronously (in a thread): (status, reason, source updated, counts,
    findings, what it catalogued)."""
    from registry.scan import ScanFailed, UnsupportedImage, layer_digests, scan_image
    from registry.scan.vulndb import VulnDB

    try:
        layer_digests(body)  # an index or an artifact is UNSUPPORTED_IMAGE, DB or not
    except UnsupportedImage as e:
        return e.status, e.reason, None, {}, [], None
    if not db_path.exists():
        return "FAILED", NO_DB, None, {}, [], None
    db = VulnDB(db_path)
    try:
        if not db.sources():
            return "FAILED", NO_DB, None, {}, [], None
        updated = source_date(db.updated_at())
        try:
            result = scan_image(opener, body, db)
        except ScanFailed as e:  # UnsupportedImage too, with its own status
            return e.status, e.reason, updated, {}, [], None
        findings = [asdict(f) for f in result.findings[:MAX_FINDINGS]]
        sbom = Sbom(
            asdict(result.os) if result.os else None, [asdict(p) for p in result.packages[:MAX_PACKAGES]]
        )
        return "COMPLETE", "", updated, result.severity_counts(), findings, sbom
    finally:
        db.close()


class Scanner:
    """Schedules and runs scans (see the module docstring)."""

    def __init__(self, meta: Metadata, opener: Any, db_path: Path) -> None:
        self.meta = meta
        self.opener = opener
        self.db_path = db_path
        self.gate = asyncio.Semaphore(CONCURRENCY)
        self.tasks: set[asyncio.Task[None]] = set()
        self.wants_scan: Any = None  # (store, repository) -> bool; set by the ECR install
        self.continuous: Any = None  # (store) -> [repository] scanned continuously; likewise
        self.db_seen: float | None = None  # the DB's last import time, as last checked
        # told (repository, digest, status, severity counts) when a scan ends (ECR's "ECR Image
        # Scan" event); set by the ECR install; it must not block
        self.on_complete: Any = None

    def pushed(self, repository: str, digest: str) -> None:
        """The push hook: schedule a scan when ``repository`` scans on push."""
        if self.wants_scan is not None and self.wants_scan(self.meta.store, repository):
            self.schedule(repository, digest)

    def schedule(self, repository: str, digest: str) -> asyncio.Task[None] | None:
        """Start scanning ``digest`` of ``repository`` in the background (None: queue full)."""
        if len(self.tasks) >= MAX_QUEUED:
            log.warning("scan queue full; scan skipped", extra={"repository": repository, "digest": digest})
            return None
        task = asyncio.get_running_loop().create_task(self.scan(repository, digest))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def scan(self, repository: str, digest: str) -> None:
        """Mark the scan IN_PROGRESS, run it (bounded, in a thread), store the outcome."""
        started = time.time()
        await put(self.meta.store, Scan(repository, digest, "IN_PROGRESS", "", started, None, None, {}, []))
        try:
            found = self.meta.manifest_by_digest(repository, digest)
            if found is None:
                gone = "the image was deleted before it was scanned"
                outcome: Outcome = ("FAILED", gone, None, {}, [], None)
            else:
                async with self.gate:
                    outcome = await asyncio.to_thread(run_scan, self.opener, found.body, self.db_path)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a scanner bug ends the scan, never the server
            log.exception("scan failed", extra={"repository": repository, "digest": digest})
            outcome = ("FAILED", f"internal scanner error: {type(e).__name__}: {e}", None, {}, [], None)
        status, reason, updated, counts, findings, sbom = outcome
        await put(
            self.meta.store,
            Scan(repository, digest, status, reason, started, time.time(), updated, counts, findings, sbom),
        )
        if self.on_complete is not None:
            try:
                self.on_complete(repository, digest, status, dict(counts))
            except Exception as e:  # an event is never worth failing the scan
                log.warning("scan event not sent", extra={"repository": repository, "error": str(e)})

    def _db_imported(self) -> float | None:
        """When the DB was last imported into (None: no DB)."""
        from registry.scan.vulndb import VulnDB

        if not self.db_path.exists():
            return None
        db = VulnDB(self.db_path)
        try:
            return max((s.imported_at for s in db.sources()), default=None)
        finally:
            db.close()

    async def rescan_if_updated(self) -> int:
        """Continuous scanning: when the DB was imported into since the last check, scan every
        image of the repositories scanned continuously again; returns how many were scheduled.
        The first check (at start) only notes the DB's state."""
        imported = await asyncio.to_thread(self._db_imported)
        before, self.db_seen = self.db_seen, imported
        if before is None or imported is None or imported == before or self.continuous is None:
            return 0
        count = 0
        for repository in self.continuous(self.meta.store):
            rows = self.meta.store.query(
                "SELECT digest FROM registry_manifests WHERE repository = ? ORDER BY created", (repository,)
            )
            for (digest,) in rows:
                if self.schedule(repository, digest) is not None:
                    count += 1
        return count

    async def watch(self, interval: float = RESCAN_INTERVAL) -> None:
        """Check the DB every ``interval`` seconds (:meth:`rescan_if_updated`), forever."""
        while True:
            try:
                await self.rescan_if_updated()
                await prune(self.meta.store)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("continuous rescan failed")
            await asyncio.sleep(interval)

    async def close(self) -> None:
        """Cancel the scans still running (at shutdown)."""
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
