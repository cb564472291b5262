"""The mesh part's App Mesh state: its schema, frozen value types and the only SQL.

Each write is one ``store.transaction()`` that checks inside it what must hold at commit (a
name still free, a mesh still there) and raises App Mesh's error otherwise, and records its
change with ``tx.changed``, so the xDS side can recompute the snapshots a mesh feeds: meshes
under :data:`MESH_TOPIC` (key: the mesh name), the resources inside a mesh under
:data:`TOPICS`: ``mesh/virtual-node`` (key ``mesh/node``), ``mesh/virtual-service``
(``mesh/service``), ``mesh/virtual-router`` (``mesh/router``), ``mesh/route``
(``mesh/router/route``), ``mesh/virtual-gateway`` (``mesh/gateway``), ``mesh/gateway-route``
(``mesh/gateway/route``).

References between resources are kept whole inside each write (:func:`references`): a virtual
service's provider (a virtual node or router) and a route's weighted targets (virtual nodes)
must exist when it is written (NotFoundException), and a node or router so named cannot be
deleted (ResourceInUseException); likewise a gateway route's target virtual service. A virtual
gateway's listener port is no other gateway's (ConflictException). A virtual node's backends
are not checked, as App Mesh does not (nodes and services may name each other).

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
from mesh.appmesh_errors import (
    ConflictException,
    NotFoundException,
    ResourceInUseException,
    TooManyTagsException,
)

__all__ = ["GATEWAY_ROUTE", "MESH_TOPIC", "MIGRATIONS", "NACKS_KEPT", "ROUTE", "TOPICS", "VIRTUAL_GATEWAY",
           "VIRTUAL_NODE", "VIRTUAL_ROUTER", "VIRTUAL_SERVICE", "Data", "Mesh", "NackRecord", "Resource",
           "gateway_ports", "not_found", "references"]

MESH_TOPIC = "mesh/mesh"
MAX_TAGS = 50  # App Mesh's limit per resource
VIRTUAL_ROUTER = "virtualRouter"
ROUTE = "route"
VIRTUAL_NODE = "virtualNode"
VIRTUAL_SERVICE = "virtualService"
VIRTUAL_GATEWAY = "virtualGateway"
GATEWAY_ROUTE = "gatewayRoute"
TOPICS = {VIRTUAL_ROUTER: "mesh/virtual-router", ROUTE: "mesh/route", VIRTUAL_NODE: "mesh/virtual-node",
          VIRTUAL_SERVICE: "mesh/virtual-service", VIRTUAL_GATEWAY: "mesh/virtual-gateway",
          GATEWAY_ROUTE: "mesh/gateway-route"}
# what must be gone before a resource of that kind is deleted
_CHILD = {VIRTUAL_ROUTER: ROUTE, VIRTUAL_GATEWAY: GATEWAY_ROUTE}
_LABEL = {VIRTUAL_ROUTER: "Virtual router", ROUTE: "Route", VIRTUAL_NODE: "Virtual node",
          VIRTUAL_SERVICE: "Virtual service", VIRTUAL_GATEWAY: "Virtual gateway",
          GATEWAY_ROUTE: "Gateway route"}
_REFERRERS = {VIRTUAL_NODE: (VIRTUAL_SERVICE, ROUTE), VIRTUAL_ROUTER: (VIRTUAL_SERVICE,),
              VIRTUAL_SERVICE: (GATEWAY_ROUTE,)}
GATEWAY_ROUTE_KINDS = ("httpRoute", "http2Route", "grpcRoute")
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
    """A resource inside a mesh: ``kind`` is :data:`VIRTUAL_NODE`, :data:`VIRTUAL_SERVICE`,
    :data:`VIRTUAL_ROUTER` (``parent`` empty) or :data:`ROUTE` (``parent`` its virtual router's
    name); ``spec`` as the API gives it, checked (``VirtualNodeSpec``, ``VirtualServiceSpec``,
    ``VirtualRouterSpec``, ``RouteSpec`` of App Mesh's model)."""

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


def references(kind: str, spec: dict[str, Any]) -> set[tuple[str, str]]:
    """The ``(kind, name)`` of the resources (same mesh) that a resource's spec needs: a virtual
    service's provider, a route's weighted targets' virtual nodes; nothing for other kinds."""
    if kind == VIRTUAL_SERVICE:
        provider = spec.get("provider") or {}
        node = (provider.get("virtualNode") or {}).get("virtualNodeName")
        router = (provider.get("virtualRouter") or {}).get("virtualRouterName")
        return {(k, n) for k, n in ((VIRTUAL_NODE, node), (VIRTUAL_ROUTER, router)) if n}
    if kind == ROUTE:
        route = next((spec[k] for k in ("httpRoute", "http2Route", "grpcRoute", "tcpRoute")
                      if isinstance(spec.get(k), dict)), {})
        targets = (route.get("action") or {}).get("weightedTargets") or []
        return {(VIRTUAL_NODE, t["virtualNode"]) for t in targets if t.get("virtualNode")}
    if kind == GATEWAY_ROUTE:
        route = next((spec[k] for k in GATEWAY_ROUTE_KINDS if isinstance(spec.get(k), dict)), {})
        target = ((route.get("action") or {}).get("target") or {}).get("virtualService") or {}
        name = target.get("virtualServiceName")
        return {(VIRTUAL_SERVICE, name)} if name else set()
    return set()


def gateway_ports(spec: dict[str, Any]) -> set[int]:
    """The host ports a virtual gateway's listeners take."""
    return {int((lst.get("portMapping") or {}).get("port", 0)) for lst in spec.get("listeners") or []
            if isinstance(lst, dict)}


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

    def all_resources(self, kind: str) -> list[Resource]:
        """Every resource of ``kind`` in every mesh, by mesh, then oldest first."""
        rows = self.store.query(
            "SELECT * FROM am_resources WHERE kind = ? ORDER BY mesh, parent, created_at, name", (kind,))
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
        """Store a new resource; NotFoundException when its mesh (or parent), or a resource its
        spec names (:func:`references`), is missing, ConflictException when its name is taken."""
        async with self.store.transaction() as tx:
            self.check_parents(res.kind, res.mesh, res.parent, tx)
            if tx.query_one(
                "SELECT 1 FROM am_resources WHERE kind = ? AND mesh = ? AND parent = ? AND name = ?",
                (res.kind, res.mesh, res.parent, res.name),
            ) is not None:
                raise ConflictException(f"{_LABEL[res.kind]} with name {res.name} already exists.")
            self._check_references(tx, res.kind, res.mesh, res.spec)
            self._check_ports(tx, res.kind, res.mesh, res.name, res.spec)
            tx.execute(
                "INSERT INTO am_resources (kind, mesh, parent, name, arn, uid, spec, tags, version,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (res.kind, res.mesh, res.parent, res.name, res.arn, res.uid, json.dumps(res.spec),
                 json.dumps(res.tags), res.version, res.created_at, res.updated_at),
            )
            tx.changed(TOPICS[res.kind], res.key)
        return res

    def _check_references(self, tx: Tx, kind: str, mesh: str, spec: dict[str, Any]) -> None:
        for ref_kind, ref_name in sorted(references(kind, spec)):
            if tx.query_one(
                "SELECT 1 FROM am_resources WHERE kind = ? AND mesh = ? AND parent = '' AND name = ?",
                (ref_kind, mesh, ref_name),
            ) is None:
                raise not_found(ref_kind, mesh, ref_name)

    def _check_ports(self, tx: Tx, kind: str, mesh: str, name: str, spec: dict[str, Any]) -> None:
        """ConflictException when a virtual gateway's listener port is another gateway's (any
        mesh): each gateway's Envoy binds its listener ports on the host."""
        if kind != VIRTUAL_GATEWAY:
            return
        ports = gateway_ports(spec)
        for row in tx.query("SELECT * FROM am_resources WHERE kind = ?", (VIRTUAL_GATEWAY,)):
            other = _resource(row)
            taken = ports & gateway_ports(other.spec)
            if (other.mesh, other.name) != (mesh, name) and taken:
                raise ConflictException(f"Port {min(taken)} is already used by virtual gateway "
                                        f"{other.name} in mesh {other.mesh}.")

    def _referrer(self, tx: Tx, kind: str, mesh: str, name: str) -> Resource | None:
        """The first resource (oldest first) whose spec names ``kind``/``name``, or None."""
        for user_kind in _REFERRERS.get(kind, ()):
            rows = tx.query(
                "SELECT * FROM am_resources WHERE kind = ? AND mesh = ? ORDER BY created_at, name",
                (user_kind, mesh))
            for row in rows:
                user = _resource(row)
                if (kind, name) in references(user_kind, user.spec):
                    return user
        return None

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
        """Replace a resource's spec, its version one up; NotFoundException when it, or a
        resource the new spec names (:func:`references`), is missing."""
        async with self.store.transaction() as tx:
            row = self._row(tx, kind, mesh, parent, name)
            self._check_references(tx, kind, mesh, spec)
            self._check_ports(tx, kind, mesh, name, spec)
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
        ResourceInUseException while it still has children (a router its routes) or another
        resource names it (a virtual service its provider, a route a target node)."""
        async with self.store.transaction() as tx:
            row = self._row(tx, kind, mesh, parent, name)
            child = _CHILD.get(kind)
            if child is not None and tx.query_one(
                "SELECT 1 FROM am_resources WHERE kind = ? AND mesh = ? AND parent = ?", (child, mesh, name)
            ) is not None:
                raise ResourceInUseException(f"{_LABEL[kind]} {name} still has {child}s; delete them first.")
            user = self._referrer(tx, kind, mesh, name)
            if user is not None:
                raise ResourceInUseException(
                    f"{_LABEL[kind]} {name} is in use by {_LABEL[user.kind].lower()} {user.key}; "
                    "update or delete it first.")
            tx.execute(
                "DELETE FROM am_resources WHERE kind = ? AND mesh = ? AND parent = ? AND name = ?",
                (kind, mesh, parent, name),
            )
            res = replace(_resource(row), updated_at=time.time())
            tx.changed(TOPICS[kind], res.key)
        return res

    # -- tags, by ARN (any mesh or resource in one) ----------------------------------------

    def tags_of(self, arn: str) -> list[dict[str, str]]:
        """The tags (``[{key, value}]``) of the mesh or resource with ``arn``; NotFoundException."""
        for table in ("am_meshes", "am_resources"):
            row = self.store.query_one(f"SELECT tags FROM {table} WHERE arn = ?", (arn,))
            if row is not None:
                return list(json.loads(row["tags"]))
        raise NotFoundException(f"Resource {arn} not found.")

    async def change_tags(
        self, arn: str, add: list[dict[str, str]], remove: list[str]
    ) -> list[dict[str, str]]:
        """Set the ``add`` tags (a key given again takes the new value), drop the ``remove`` keys,
        and return the tags; NotFoundException for an unknown ARN, TooManyTagsException past
        :data:`MAX_TAGS`. The resource's version stays (App Mesh's does); its change is recorded."""
        async with self.store.transaction() as tx:
            table = "am_meshes"
            row = tx.query_one("SELECT * FROM am_meshes WHERE arn = ?", (arn,))
            if row is None:
                table = "am_resources"
                row = tx.query_one("SELECT * FROM am_resources WHERE arn = ?", (arn,))
            if row is None:
                raise NotFoundException(f"Resource {arn} not found.")
            tags = {t["key"]: t["value"] for t in json.loads(row["tags"])}
            tags.update({t["key"]: t["value"] for t in add})
            for key in remove:
                tags.pop(key, None)
            if len(tags) > MAX_TAGS:
                raise TooManyTagsException(f"A resource can have at most {MAX_TAGS} tags, not {len(tags)}.")
            out = [{"key": k, "value": v} for k, v in tags.items()]
            tx.execute(f"UPDATE {table} SET tags = ? WHERE arn = ?", (json.dumps(out), arn))
            if table == "am_meshes":
                tx.changed(MESH_TOPIC, row["name"])
            else:
                res = _resource(row)
                tx.changed(TOPICS[res.kind], res.key)
        return out

    # -- NACKs -------------------------------------------------------------------------------

    async def record_nack(self, node: str, type_url: str, version: str, message: str, at: float) -> None:
        """Keep one NACK, and only the newest :data:`NACKS_KEPT` of all."""
        async with self.store.transaction(durable=False) as tx:
            row = tx.query_one(
                "INSERT INTO am_nacks (node, type_url, version, message, at) VALUES (?, ?, ?, ?, ?)"
                " RETURNING id", (node, type_url, version, message, at))
            tx.execute("DELETE FROM am_nacks WHERE id <= ?", ((row[0] if row else 0) - NACKS_KEPT,))

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
