"""The mesh part's App Mesh state: its schema, frozen value types and the only SQL.

Each write is one ``store.transaction()`` that checks inside it what must hold at commit (a
name still free, a mesh still there) and raises App Mesh's error otherwise, and records its
change with ``tx.changed`` under :data:`MESH_TOPIC` (key: the mesh name), so the xDS side can
recompute the snapshots a mesh feeds.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, replace
from typing import Any

from dockyard.store import Migration, Store
from mesh.appmesh_errors import ConflictException, NotFoundException

__all__ = ["MESH_TOPIC", "MIGRATIONS", "Data", "Mesh"]

MESH_TOPIC = "mesh/mesh"

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
    )
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
        """Remove a mesh and return it as it was; NotFoundException when there is none."""
        async with self.store.transaction() as tx:
            row = tx.query_one("SELECT * FROM am_meshes WHERE name = ?", (name,))
            if row is None:
                raise NotFoundException(f"Mesh {name} not found.")
            tx.execute("DELETE FROM am_meshes WHERE name = ?", (name,))
            tx.changed(MESH_TOPIC, name)
        return replace(_mesh(row), updated_at=time.time())
