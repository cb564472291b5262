"""Repositories, blob links, manifests, tags, referrers and uploads in the state store.

A blob is readable through a repository only if linked to it (``registry_blob_links``); the
bytes themselves are stored once (``registry_blobs`` + the storage driver). Manifests keep their
body here (at most 4 MiB), so a manifest GET by tag is one indexed query. Every write goes
through one ``store.transaction()`` and bumps the ``registry`` change topic.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from dockyard.store import Migration, Store, Tx
from registry import immutability
from registry.manifest import Manifest
from registry.storage.errors import UploadUnknown

__all__ = ["MIGRATIONS", "BlobsMissing", "Metadata", "StoredManifest", "TagImmutable", "UploadRow"]

TOPIC = "registry"

MIGRATIONS = [
    Migration(
        "registry",
        1,
        """
        CREATE TABLE registry_repositories (name TEXT PRIMARY KEY, created REAL NOT NULL) WITHOUT ROWID;
        CREATE TABLE registry_blobs (
            digest TEXT PRIMARY KEY, size INTEGER NOT NULL, created REAL NOT NULL) WITHOUT ROWID;
        CREATE TABLE registry_blob_links (
            repository TEXT NOT NULL, digest TEXT NOT NULL, created REAL NOT NULL,
            PRIMARY KEY (repository, digest)) WITHOUT ROWID;
        CREATE INDEX registry_blob_links_digest ON registry_blob_links (digest);
        CREATE TABLE registry_manifests (
            repository TEXT NOT NULL, digest TEXT NOT NULL, media_type TEXT NOT NULL,
            size INTEGER NOT NULL, body BLOB NOT NULL, artifact_type TEXT, subject TEXT,
            annotations TEXT, created REAL NOT NULL,
            PRIMARY KEY (repository, digest));
        CREATE INDEX registry_manifests_subject ON registry_manifests (repository, subject)
            WHERE subject IS NOT NULL;
        CREATE TABLE registry_manifest_references (
            repository TEXT NOT NULL, manifest TEXT NOT NULL, digest TEXT NOT NULL,
            kind TEXT NOT NULL, PRIMARY KEY (repository, manifest, digest)) WITHOUT ROWID;
        CREATE INDEX registry_manifest_references_digest ON registry_manifest_references (digest);
        CREATE TABLE registry_tags (
            repository TEXT NOT NULL, tag TEXT NOT NULL, digest TEXT NOT NULL, updated REAL NOT NULL,
            PRIMARY KEY (repository, tag)) WITHOUT ROWID;
        CREATE INDEX registry_tags_digest ON registry_tags (repository, digest);
        CREATE TABLE registry_uploads (
            id TEXT PRIMARY KEY, repository TEXT NOT NULL, offset INTEGER NOT NULL,
            started REAL NOT NULL, updated REAL NOT NULL);
        """,
    ),
    Migration(
        "registry",
        2,
        """
        CREATE TABLE registry_repository_settings (
            name TEXT PRIMARY KEY, created REAL NOT NULL, tag_mutability TEXT NOT NULL,
            mutability_filters TEXT NOT NULL, scan_on_push INTEGER NOT NULL, encryption TEXT NOT NULL,
            policy TEXT, tags TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE registry_image_pulls (
            repository TEXT NOT NULL, digest TEXT NOT NULL, pulled REAL NOT NULL,
            PRIMARY KEY (repository, digest)) WITHOUT ROWID;
        CREATE TABLE registry_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
        """,
    ),
    Migration(
        "registry",
        3,
        """
        ALTER TABLE registry_repository_settings ADD COLUMN lifecycle TEXT;
        ALTER TABLE registry_repository_settings ADD COLUMN lifecycle_evaluated REAL;
        """,
    ),
]


class BlobsMissing(LookupError):
    """A manifest names blobs no longer linked to its repository (garbage collected meanwhile)."""


class TagImmutable(Exception):
    """``tag`` names another image already and ``repository``'s tag mutability forbids moving it."""

    def __init__(self, repository: str, tag: str) -> None:
        super().__init__(
            f"The image tag '{tag}' already exists in the '{repository}' repository and cannot be"
            " overwritten because the repository is immutable."
        )
        self.repository, self.tag = repository, tag


def check_mutability(tx: Tx, repository: str, tags: Sequence[str], digest: str) -> None:
    """Raise :class:`TagImmutable` if pointing ``tags`` at ``digest`` would move a tag the
    repository's settings (``registry_repository_settings``; none: MUTABLE) keep in place."""
    if not tags:
        return
    row = tx.query_one(
        "SELECT tag_mutability, mutability_filters FROM registry_repository_settings WHERE name = ?",
        (repository,),
    )
    if row is None or row[0] == immutability.MUTABLE:
        return
    marks = ",".join("?" * len(tags))
    current = {r[0]: r[1] for r in tx.query(
        f"SELECT tag, digest FROM registry_tags WHERE repository = ? AND tag IN ({marks})",
        (repository, *tags),
    )}
    filters = [f["filter"] for f in json.loads(row[1])]
    refused = immutability.refused_tags(row[0], filters, current, tags, digest)
    if refused:
        raise TagImmutable(repository, refused[0])


class RepositoryNotEmpty(Exception):
    """The repository still holds manifests (``manifests``, of which ``tags`` are tagged)."""

    def __init__(self, name: str, manifests: int, tags: int) -> None:
        super().__init__(f"repository {name} holds {manifests} manifests and {tags} tags")
        self.name, self.manifests, self.tags = name, manifests, tags


@dataclass(frozen=True)
class RepositoryRemoved:
    """What :meth:`Metadata.delete_repository` removed with a repository."""

    manifests: int
    tags: int
    links: int  # blob links: a blob no other repository links or names goes at the next GC


@dataclass(frozen=True)
class StoredManifest:
    digest: str
    media_type: str
    body: bytes


@dataclass(frozen=True)
class UploadRow:
    id: str
    repository: str
    offset: int
    started: float


class Metadata:
    """Named reads and writes of the registry's state (see module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        # called as (tx, name, now) inside the transaction of a push that creates repository
        # ``name`` (ECR's repository creation templates write its settings there)
        self.on_create: Callable[[Tx, str, float], None] | None = None

    def _ensure_repository(self, tx: Tx, name: str, now: float) -> None:
        cur = tx.execute(
            "INSERT OR IGNORE INTO registry_repositories (name, created) VALUES (?, ?)", (name, now)
        )
        if cur.rowcount and self.on_create is not None:
            self.on_create(tx, name, now)

    # -- blobs ---------------------------------------------------------------------------
    def linked_blob_size(self, repository: str, digest: str) -> int | None:
        """The size of ``digest`` if it is linked to ``repository``."""
        row = self.store.query_one(
            "SELECT b.size FROM registry_blob_links l JOIN registry_blobs b ON b.digest = l.digest"
            " WHERE l.repository = ? AND l.digest = ?",
            (repository, digest),
        )
        return None if row is None else row[0]

    def blob_size(self, digest: str) -> int | None:
        row = self.store.query_one("SELECT size FROM registry_blobs WHERE digest = ?", (digest,))
        return None if row is None else row[0]

    def repositories_linking(self, digest: str) -> list[str]:
        return [r[0] for r in self.store.query(
            "SELECT repository FROM registry_blob_links WHERE digest = ? ORDER BY repository", (digest,)
        )]

    async def add_blob(
        self,
        repository: str,
        digest: str,
        size: int,
        upload_id: str | None = None,
        place: Callable[[], None] | None = None,
        placed: Callable[[], bool] | None = None,
    ) -> None:
        """Record a stored blob and link it to ``repository`` (ending ``upload_id`` if given).

        ``place`` (the rename of the verified bytes into their content-addressed path) runs
        inside the same write transaction, so garbage collection, which deletes a blob's row
        and file in one transaction, never deletes a file that a commit has just put in place.
        A caller that renamed the bytes into place before (a digest with no row yet, which GC
        only deletes once its file is older than the grace window) passes ``placed`` instead:
        checked inside the transaction, it catches GC unlinking an old orphan file of the same
        digest as the rename landed, and then nothing is recorded (UploadUnknown).
        """
        now = time.time()
        async with self.store.transaction() as tx:
            if place is not None:
                await asyncio.to_thread(place)
            elif placed is not None and not placed():
                raise UploadUnknown(upload_id or digest)
            tx.execute(
                "INSERT OR IGNORE INTO registry_blobs (digest, size, created) VALUES (?, ?, ?)",
                (digest, size, now),
            )
            self._link(tx, repository, digest, now)
            if upload_id is not None:
                tx.execute("DELETE FROM registry_uploads WHERE id = ?", (upload_id,))

    async def link_blob(self, repository: str, digest: str) -> bool:
        """Link a stored blob to ``repository`` (a mount); False if the blob is gone."""
        async with self.store.transaction() as tx:
            if tx.query_one("SELECT 1 FROM registry_blobs WHERE digest = ?", (digest,)) is None:
                return False
            self._link(tx, repository, digest, time.time())
            return True

    def _link(self, tx: Tx, repository: str, digest: str, now: float) -> None:
        """Link (or re-link: the link's time is the last upload or mount, which GC's grace
        window counts from)."""
        self._ensure_repository(tx, repository, now)
        tx.execute(
            "INSERT INTO registry_blob_links (repository, digest, created) VALUES (?, ?, ?)"
            " ON CONFLICT (repository, digest) DO UPDATE SET created = excluded.created",
            (repository, digest, now),
        )
        tx.changed(TOPIC, f"{repository}@{digest}")

    async def unlink_blob(self, repository: str, digest: str) -> bool:
        async with self.store.transaction() as tx:
            cur = tx.execute(
                "DELETE FROM registry_blob_links WHERE repository = ? AND digest = ?", (repository, digest)
            )
            if cur.rowcount:
                tx.changed(TOPIC, f"{repository}@{digest}")
            return cur.rowcount > 0

    # -- manifests -----------------------------------------------------------------------
    def manifest_by_tag(self, repository: str, tag: str) -> StoredManifest | None:
        row = self.store.query_one(
            "SELECT m.digest, m.media_type, m.body FROM registry_tags t JOIN registry_manifests m"
            " ON m.repository = t.repository AND m.digest = t.digest WHERE t.repository = ? AND t.tag = ?",
            (repository, tag),
        )
        return None if row is None else StoredManifest(row[0], row[1], row[2])

    def manifest_by_digest(self, repository: str, digest: str) -> StoredManifest | None:
        row = self.store.query_one(
            "SELECT digest, media_type, body FROM registry_manifests WHERE repository = ? AND digest = ?",
            (repository, digest),
        )
        return None if row is None else StoredManifest(row[0], row[1], row[2])

    def has_manifest(self, repository: str, digest: str) -> bool:
        return self.store.query_one(
            "SELECT 1 FROM registry_manifests WHERE repository = ? AND digest = ?", (repository, digest)
        ) is not None

    async def put_manifest(
        self, repository: str, digest: str, body: bytes, manifest: Manifest, tag: str | None,
        tags: Sequence[str] = (),
    ) -> None:
        """Store a validated manifest (and point ``tag`` and every one of ``tags`` at it, in the
        same transaction: all or none).

        Raises BlobsMissing if a blob it names is no longer linked to ``repository``, and
        TagImmutable if a tag would move to another image although the repository's tag
        mutability keeps it (checked in the same transaction as the write).
        """
        now = time.time()
        subject = manifest.subject.digest if manifest.subject else None
        annotations = json.dumps(manifest.annotations) if manifest.annotations else None
        blobs = sorted({d.digest for d in manifest.blobs})
        async with self.store.transaction() as tx:
            if blobs:  # checked again here: GC may have collected one since the handler looked
                marks = ",".join("?" * len(blobs))
                linked = tx.query_one(
                    f"SELECT count(*) FROM registry_blob_links WHERE repository = ? AND digest IN ({marks})",
                    (repository, *blobs),
                )[0]
                if linked != len(blobs):
                    raise BlobsMissing(repository)
            named = [*([tag] if tag is not None else []), *tags]
            check_mutability(tx, repository, named, digest)
            self._ensure_repository(tx, repository, now)
            tx.execute(
                "INSERT OR IGNORE INTO registry_manifests (repository, digest, media_type, size, body,"
                " artifact_type, subject, annotations, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (repository, digest, manifest.media_type, len(body), body, manifest.artifact_type,
                 subject, annotations, now),
            )
            tx.executemany(
                "INSERT OR IGNORE INTO registry_manifest_references (repository, manifest, digest, kind)"
                " VALUES (?, ?, ?, ?)",
                [(repository, digest, d.digest, "blob") for d in manifest.blobs]
                + [(repository, digest, d.digest, "manifest") for d in manifest.children],
            )
            if named:
                tx.executemany(
                    "INSERT INTO registry_tags (repository, tag, digest, updated) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (repository, tag) DO UPDATE SET digest = excluded.digest,"
                    " updated = excluded.updated",
                    [(repository, t, digest, now) for t in named],
                )
            tx.changed(TOPIC, f"{repository}@{digest}")

    async def delete_manifest(self, repository: str, digest: str) -> bool:
        """Remove a manifest and every tag pointing at it; False if it was not there."""
        async with self.store.transaction() as tx:
            cur = tx.execute(
                "DELETE FROM registry_manifests WHERE repository = ? AND digest = ?", (repository, digest)
            )
            if not cur.rowcount:
                return False
            tx.execute("DELETE FROM registry_tags WHERE repository = ? AND digest = ?", (repository, digest))
            tx.execute(
                "DELETE FROM registry_manifest_references WHERE repository = ? AND manifest = ?",
                (repository, digest),
            )
            tx.execute(
                "DELETE FROM registry_image_pulls WHERE repository = ? AND digest = ?", (repository, digest)
            )
            tx.changed(TOPIC, f"{repository}@{digest}")
            return True

    async def delete_tag(self, repository: str, tag: str) -> bool:
        async with self.store.transaction() as tx:
            cur = tx.execute("DELETE FROM registry_tags WHERE repository = ? AND tag = ?", (repository, tag))
            if cur.rowcount:
                tx.changed(TOPIC, f"{repository}:{tag}")
            return cur.rowcount > 0

    def referrers(self, repository: str, subject: str, artifact_type: str | None) -> list[dict]:
        """Descriptors of the manifests in ``repository`` whose subject is ``subject``."""
        sql = (
            "SELECT digest, media_type, size, artifact_type, annotations FROM registry_manifests"
            " WHERE repository = ? AND subject = ?"
        )
        params: list[str] = [repository, subject]
        if artifact_type is not None:
            sql += " AND artifact_type = ?"
            params.append(artifact_type)
        out = []
        for digest, media_type, size, art, notes in self.store.query(sql + " ORDER BY digest", params):
            d: dict = {"mediaType": media_type, "digest": digest, "size": size}
            if art:
                d["artifactType"] = art
            if notes:
                d["annotations"] = json.loads(notes)
            out.append(d)
        return out

    # -- repositories and tags -----------------------------------------------------------
    def repository_exists(self, name: str) -> bool:
        return self.store.query_one("SELECT 1 FROM registry_repositories WHERE name = ?", (name,)) is not None

    async def delete_repository(self, name: str, force: bool = False) -> RepositoryRemoved | None:
        """Remove ``name`` from the catalog with its blob links (None: no such repository).
        A repository holding manifests is refused (:class:`RepositoryNotEmpty`) unless
        ``force``, which removes its tags and manifests too. Blobs are not deleted here: one
        that no repository links or names any more is garbage, collected by the next GC
        (``registry.gc``, after its grace window). An upload in flight to the repository
        that commits later creates it again, as a first push does."""
        async with self.store.transaction() as tx:
            if tx.query_one("SELECT 1 FROM registry_repositories WHERE name = ?", (name,)) is None:
                return None
            count = "SELECT count(*) FROM {} WHERE repository = ?"
            manifests = tx.query_one(count.format("registry_manifests"), (name,))[0]
            tags = tx.query_one(count.format("registry_tags"), (name,))[0]
            if (manifests or tags) and not force:
                raise RepositoryNotEmpty(name, manifests, tags)
            for table in ("registry_tags", "registry_manifest_references", "registry_manifests",
                          "registry_image_pulls"):
                tx.execute(f"DELETE FROM {table} WHERE repository = ?", (name,))
            tx.execute("DELETE FROM registry_repository_settings WHERE name = ?", (name,))
            links = tx.execute("DELETE FROM registry_blob_links WHERE repository = ?", (name,)).rowcount
            tx.execute("DELETE FROM registry_repositories WHERE name = ?", (name,))
            tx.changed(TOPIC, name)
        return RepositoryRemoved(manifests, tags, links)

    def tags(self, repository: str, last: str | None, limit: int | None) -> list[str]:
        """Tags of ``repository`` after ``last`` in lexical order, at most ``limit``."""
        sql = "SELECT tag FROM registry_tags WHERE repository = ? AND tag > ? ORDER BY tag"
        params: list = [repository, last or ""]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [r[0] for r in self.store.query(sql, params)]

    def repositories(self, last: str | None, limit: int | None) -> list[str]:
        sql = "SELECT name FROM registry_repositories WHERE name > ? ORDER BY name"
        params: list = [last or ""]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [r[0] for r in self.store.query(sql, params)]

    async def record_pull(self, repository: str, digest: str, now: float) -> None:
        """Remember that ``digest`` was pulled from ``repository`` at ``now`` (ECR's
        ``lastRecordedPullTime``; the caller limits how often). Not fsync'd: a pull time lost
        with the power is an older pull time, nothing worse."""
        async with self.store.transaction(durable=False) as tx:
            tx.execute(
                "INSERT INTO registry_image_pulls (repository, digest, pulled) SELECT ?, ?, ?"
                " WHERE EXISTS (SELECT 1 FROM registry_manifests WHERE repository = ? AND digest = ?)"
                " ON CONFLICT (repository, digest) DO UPDATE SET pulled = excluded.pulled",
                (repository, digest, now, repository, digest),
            )

    # -- uploads -------------------------------------------------------------------------
    async def start_upload(self, upload_id: str, repository: str) -> None:
        """Record a new upload session. Not fsync'd: a session lost with the machine's power
        is cleanly gone (its client gets BLOB_UPLOAD_UNKNOWN and starts again; GC removes its
        directory), and the next durable commit (its first acknowledged chunk) makes it
        durable anyway."""
        now = time.time()
        async with self.store.transaction(durable=False) as tx:
            tx.execute(
                "INSERT INTO registry_uploads (id, repository, offset, started, updated)"
                " VALUES (?, ?, 0, ?, ?)",
                (upload_id, repository, now, now),
            )

    def upload(self, upload_id: str) -> UploadRow | None:
        row = self.store.query_one(
            "SELECT id, repository, offset, started FROM registry_uploads WHERE id = ?", (upload_id,)
        )
        return None if row is None else UploadRow(row[0], row[1], row[2], row[3])

    def uploads(self) -> list[UploadRow]:
        return [UploadRow(*r) for r in self.store.query(
            "SELECT id, repository, offset, started FROM registry_uploads ORDER BY started"
        )]

    async def ack_upload(self, upload_id: str, offset: int) -> None:
        """Record that the bytes up to ``offset`` are durable and acknowledged."""
        async with self.store.transaction() as tx:
            tx.execute(
                "UPDATE registry_uploads SET offset = ?, updated = ? WHERE id = ?",
                (offset, time.time(), upload_id),
            )

    async def end_upload(self, upload_id: str) -> None:
        async with self.store.transaction() as tx:
            tx.execute("DELETE FROM registry_uploads WHERE id = ?", (upload_id,))
