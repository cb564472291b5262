"""The mesh part's App Mesh state: its schema, frozen value types and the only SQL.

Each write is one ``store.transaction()`` that checks inside it what must hold at commit (a
name still free, a mesh still there) and raises App Mesh's error otherwise, and records its
change with ``tx.changed``, so the xDS side can recompute the snapshots a mesh feeds: meshes
under :data:`MESH_TOPIC` (key: the mesh name), the resources inside a mesh (virtual routers,
routes) under ``mesh/<kind>`` (:data:`TOPICS`; key: ``mesh/router`` or ``mesh/router/route``).

The xDS side's NACKs are kept in ``am_nacks`` (the last :data:`NACKS_KEPT`; the migration part
``mesh_status``, numbered apart from the App Mesh tables): written without the WAL fsync,
they are events, not state, and never a change to follow.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, replace
from typing import Any

from dockyard.store import Migration, Store, Tx
from mesh.appmesh_errors import ConflictException, NotFoundException, ResourceInUseException

__all__ = ["MESH_TOPIC", "MIGRATIONS", "NACKS_KEPT", "ROUTE", "TOPICS", "VIRTUAL_ROUTER", "Data", "Mesh",
           "NackRecord", "Resource", "not_found"]

MESH_TOPIC = "mesh/mesh"
VIRTUAL_ROUTER = "virtualRouter"
ROUTE = "route"
TOPICS = {VIRTUAL_ROUTER: "mesh/virtual-router", ROUTE: "mesh/route"}
_CHILD = {VIRTUAL_ROUTER: ROUTE}  # what must be gone before a resource of that kind is deleted
_LABEL = {VIRTUAL_ROUTER: "Virtual router", ROUTE: "Route"}
NACKS_KEPT = 1000

MIGRATIONS = [
    Migration(
        "mesh",
        1,
        """
        CREATE TABLE am_meshes (
            name TEXT PRIMARY KEY, arn TEXT NOT NULL, uid TEXT NOT NULL, spec TEXT NOT NULL,
            tags TEXT NOT NULL DEFAULT '[]', version INTEGER NOT NULL, created_at REAL NOT NULL,
            updated_at REAL NOT NULL);
        """,
    ),
    Migration(
        "mesh",
        2,
        """
        CREATE TABLE am_resources (
            kind TEXT NOT NULL, mesh TEXT NOT NULL REFERENCES am_meshes(name), parent TEXT NOT NULL,
            name TEXT NOT NULL, arn TEXT NOT NULL, uid TEXT NOT NULL, spec TEXT NOT NULL,
            tags TEXT NOT NULL DEFAULT '[]', version INTEGER NOT NULL, created_at REAL NOT NULL,
            updated_at REAL NOT NULL, PRIMARY KEY (kind, mesh, parent, name));
        """,
    ),
    Migration(
        "mesh_status",
        1,
        """
        CREATE TABLE am_nacks (
            id INTEGER PRIMARY KEY AUTOINCREMENT, node TEXT NOT NULL, type_url TEXT NOT NULL,
            version TEXT NOT NULL, message TEXT NOT NULL, at REAL NOT NULL);
        CREATE INDEX am_nacks_node ON am_nacks (node, id);
        """,
    ),
]


@dataclass(frozen=True)
class Mesh:
    """One App Mesh mesh: ``spec`` as the API gives it (``egressFilter``, ``serviceDiscovery``),
    ``version`` counting its writes from 1."""

    name: str
    arn: str
    uid: str
    spec: dict[str, Any]
    tags: list[dict[str, str]]
    version: int
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class NackRecord:
    """One NACK a sidecar sent: its node (task ARN), the type URL and version it refused,
    Envoy's ``error_detail`` message, and when (epoch seconds)."""

    id: int
    node: str
    type_url: str
    version: str
    message: str
    at: float

    def as_json(self) -> dict[str, Any]:
        return {"Node": self.node, "TypeUrl": self.type_url, "Version": self.version,
                "ErrorDetail": self.message, "At": self.at}


@dataclass(frozen=True)
class Resource:
    """A resource inside a mesh: ``kind`` is :data:`VIRTUAL_ROUTER` (``parent`` empty) or
    :data:`ROUTE` (``parent`` its virtual router's name); ``spec`` as the API gives it."""

    kind: str
    mesh: str
    parent: str
    name: str
    arn: str
    uid: str
    spec: dict[str, Any]
    tags: list[dict[str, str]]
    version: int
    created_at: float
    updated_at: float

    @property
    def key(self) -> str:
        return "/".join(p for p in (self.mesh, self.parent, self.name) if p)


def _resource(row: sqlite3.Row) -> Resource:
    return Resource(row["kind"], row["mesh"], row["parent"], row["name"], row["arn"], row["uid"],
                    json.loads(row["spec"]), json.loads(row["tags"]), row["version"], row["created_at"],
                    row["updated_at"])


def _nack(r: sqlite3.Row) -> NackRecord:
    return NackRecord(r["id"], r["node"], r["type_url"], r["version"], r["message"], r["at"])


def not_found(kind: str, mesh: str, name: str) -> NotFoundException:
    return NotFoundException(f"{_LABEL[kind]} {name} not found in mesh {mesh}.")


def _parent_kind(kind: str) -> str | None:
    return next((k for k, child in _CHILD.items() if child == kind), None)


def _mesh(row: sqlite3.Row) -> Mesh:
    return Mesh(row["name"], row["arn"], row["uid"], json.loads(row["spec"]), json.loads(row["tags"]),
                row["version"], row["created_at"], row["updated_at"])


class Data:
    """Named reads and writes of the App Mesh tables."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def mesh(self, name: str) -> Mesh | None:
        row = self.store.query_one("SELECT * FROM am_meshes WHERE name = ?", (name,))
        return _mesh(row) if row is not None else None

    def meshes(self) -> list[Mesh]:
        """Every mesh, oldest first (the order ListMeshes pages through)."""
        return [_mesh(r) for r in self.store.query("SELECT * FROM am_meshes ORDER BY created_at, name")]

    async def create_mesh(self, mesh: Mesh) -> Mesh:
        """Store a new mesh; ConflictException when the name is taken."""
        async with self.store.transaction() as tx:
            if tx.query_one("SELECT 1 FROM am_meshes WHERE name = ?", (mesh.name,)) is not None:
                raise ConflictException(f"Mesh with name {mesh.name} already exists.")
            tx.execute(
                "INSERT INTO am_meshes (name, arn, uid, spec, tags, version, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (mesh.name, mesh.arn, mesh.uid, json.dumps(mesh.spec), json.dumps(mesh.tags), mesh.version,
                 mesh.created_at, mesh.updated_at),
            )
            tx.changed(MESH_TOPIC, mesh.name)
        return mesh

    async def update_mesh(self, name: str, spec: dict[str, Any]) -> Mesh:
        """Replace a mesh's spec, its version one up; NotFoundException when there is none."""
        async with self.store.transaction() as tx:
            row = tx.query_one("SELECT * FROM am_meshes WHERE name = ?", (name,))
            if row is None:
                raise NotFoundException(f"Mesh {name} not found.")
            mesh = replace(_mesh(row), spec=spec, version=row["version"] + 1, updated_at=time.time())
            tx.execute("UPDATE am_meshes SET spec = ?, version = ?, updated_at = ? WHERE name = ?",
                       (json.dumps(spec), mesh.version, mesh.updated_at, name))
            tx.changed(MESH_TOPIC, name)
        return mesh

    async def delete_mesh(self, name: str) -> Mesh:
        """Remove a mesh and return it as it was; NotFoundException when there is none,
        ResourceInUseException while resources are left in it."""
        async with self.store.transaction() as tx:
            row = tx.query_one("SELECT * FROM am_meshes WHERE name = ?", (name,))
            if row is None:
                raise NotFoundException(f"Mesh {name} not found.")
            if tx.query_one("SELECT 1 FROM am_resources WHERE mesh = ?", (name,)) is not None:
                raise ResourceInUseException(f"Mesh {name} still has resources; delete them first.")
            tx.execute("DELETE FROM am_meshes WHERE name = ?", (name,))
            tx.changed(MESH_TOPIC, name)
        return replace(_mesh(row), updated_at=time.time())

    # -- resources inside a mesh ----------------------------------------------------------

    def resource(self, kind: str, mesh: str, parent: str, name: str) -> Resource | None:
        row = self.store.query_one(
            "SELECT * FROM am_resources WHERE kind = ? AND mesh = ? AND parent = ? AND name = ?",
            (kind, mesh, parent, name),
        )
        return _resource(row) if row is not None else None

    def resources(self, kind: str, mesh: str, parent: str = "") -> list[Resource]:
        """The resources of ``kind`` under ``mesh`` (and ``parent``), oldest first."""
        rows = self.store.query(
            "SELECT * FROM am_resources WHERE kind = ? AND mesh = ? AND parent = ? ORDER BY created_at, name",
            (kind, mesh, parent),
        )
        return [_resource(r) for r in rows]

    def check_parents(self, kind: str, mesh: str, parent: str, tx: Store | Tx | None = None) -> None:
        """NotFoundException when the mesh, or the parent (a route's virtual router), is missing."""
        tx = tx or self.store
        if tx.query_one("SELECT 1 FROM am_meshes WHERE name = ?", (mesh,)) is None:
            raise NotFoundException(f"Mesh {mesh} not found.")
        up = _parent_kind(kind)
        if up is not None and tx.query_one(
            "SELECT 1 FROM am_resources WHERE kind = ? AND mesh = ? AND parent = '' AND name = ?",
            (up, mesh, parent),
        ) is None:
            raise NotFoundException(f"{_LABEL[up]} {parent} not found in mesh {mesh}.")

    async def create_resource(self, res: Resource) -> Resource:
        """Store a new resource; NotFoundException when its mesh (or parent) is missing,
        ConflictException when its name is taken there."""
        async with self.store.transaction() as tx:
            self.check_parents(res.kind, res.mesh, res.parent, tx)
            if tx.query_one(
                "SELECT 1 FROM am_resources WHERE kind = ? AND mesh = ? AND parent = ? AND name = ?",
                (res.kind, res.mesh, res.parent, res.name),
            ) is not None:
                raise ConflictException(f"{_LABEL[res.kind]} with name {res.name} already exists.")
            tx.execute(
                "INSERT INTO am_resources (kind, mesh, parent, name, arn, uid, spec, tags, version,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (res.kind, res.mesh, res.parent, res.name, res.arn, res.uid, json.dumps(res.spec),
                 json.dumps(res.tags), res.version, res.created_at, res.updated_at),
            )
            tx.changed(TOPICS[res.kind], res.key)
        return res

    def _row(self, tx: Tx, kind: str, mesh: str, parent: str, name: str) -> sqlite3.Row:
        self.check_parents(kind, mesh, parent, tx)
        row = tx.query_one(
            "SELECT * FROM am_resources WHERE kind = ? AND mesh = ? AND parent = ? AND name = ?",
            (kind, mesh, parent, name),
        )
        if row is None:
            raise not_found(kind, mesh, name)
        return row

    async def update_resource(
        self, kind: str, mesh: str, parent: str, name: str, spec: dict[str, Any]
    ) -> Resource:
        """Replace a resource's spec, its version one up; NotFoundException when it is missing."""
        async with self.store.transaction() as tx:
            row = self._row(tx, kind, mesh, parent, name)
            res = replace(_resource(row), spec=spec, version=row["version"] + 1, updated_at=time.time())
            tx.execute(
                "UPDATE am_resources SET spec = ?, version = ?, updated_at = ?"
                " WHERE kind = ? AND mesh = ? AND parent = ? AND name = ?",
                (json.dumps(spec), res.version, res.updated_at, kind, mesh, parent, name),
            )
            tx.changed(TOPICS[kind], res.key)
        return res

    async def delete_resource(self, kind: str, mesh: str, parent: str, name: str) -> Resource:
        """Remove a resource and return it as it was; NotFoundException when it is missing,
        ResourceInUseException while it still has children (a router its routes)."""
        async with self.store.transaction() as tx:
            row = self._row(tx, kind, mesh, parent, name)
            child = _CHILD.get(kind)
            if child is not None and tx.query_one(
                "SELECT 1 FROM am_resources WHERE kind = ? AND mesh = ? AND parent = ?", (child, mesh, name)
            ) is not None:
                raise ResourceInUseException(f"{_LABEL[kind]} {name} still has {child}s; delete them first.")
            tx.execute(
                "DELETE FROM am_resources WHERE kind = ? AND mesh = ? AND parent = ? AND name = ?",
                (kind, mesh, parent, name),
            )
            res = replace(_resource(row), updated_at=time.time())
            tx.changed(TOPICS[kind], res.key)
        return res

    # -- NACKs -------------------------------------------------------------------------------

    async def record_nack(self, node: str, type_url: str, version: str, message: str, at: float) -> None:
        """Keep one NACK, and only the newest :data:`NACKS_KEPT` of all."""
        async with self.store.transaction(durable=False) as tx:
            cur = tx.execute(
                "INSERT INTO am_nacks (node, type_url, version, message, at) VALUES (?, ?, ?, ?, ?)",
                (node, type_url, version, message, at))
            tx.execute("DELETE FROM am_nacks WHERE id <= ?", ((cur.lastrowid or 0) - NACKS_KEPT,))

    def nacks(self, node: str | None = None, limit: int = NACKS_KEPT) -> list[NackRecord]:
        """The newest NACKs first (of ``node`` only, if given)."""
        if node is None:
            rows = self.store.query("SELECT * FROM am_nacks ORDER BY id DESC LIMIT ?", (limit,))
        else:
            rows = self.store.query(
                "SELECT * FROM am_nacks WHERE node = ? ORDER BY id DESC LIMIT ?", (node, limit))
        return [_nack(r) for r in rows]

    def last_nacks(self) -> dict[str, NackRecord]:
        """Each node's newest NACK."""
        rows = self.store.query(
            "SELECT * FROM am_nacks WHERE id IN (SELECT MAX(id) FROM am_nacks GROUP BY node)")
        return {r["node"]: _nack(r) for r in rows}
