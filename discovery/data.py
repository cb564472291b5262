"""Discovery's named reads and writes: the part's only SQL.

Reads return the frozen value types of :mod:`discovery.model` (and :class:`Operation`,
:class:`Tagged` here). Each write is one ``store.transaction()`` that records its change
(topics in :mod:`discovery.tables`); instance and health writes also stamp the service's
``revision`` (what DiscoverInstances answers as ``InstancesRevision``). Writes check inside
their transaction what must hold at commit (a name still free, a namespace still empty) and
raise the Cloud Map error otherwise. Nothing here touches the in-memory index: callers reload
the :class:`~discovery.index.Catalog` after a write.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import string
import time
from dataclasses import dataclass
from typing import Any

from discovery import tables
from discovery.errors import (
    DuplicateRequest,
    NamespaceAlreadyExists,
    ResourceInUse,
    ResourceLimitExceeded,
    ServiceAlreadyExists,
    with_fields,
)
from discovery.model import MAX_INSTANCES_PER_SERVICE, Instance, Namespace, Service, health_interval
from dockyard.store import Store, Tx

__all__ = ["Data", "Operation", "Tagged"]

_OP_ALNUM = string.ascii_lowercase + string.digits
NAMESPACE_TABLE = "cm_namespaces"
SERVICE_TABLE = "cm_services"


@dataclass(frozen=True)
class Operation:
    """One recorded Cloud Map operation (every one completes inside its request: SUCCESS)."""

    id: str
    type: str
    status: str
    targets: dict[str, str]
    created_at: float
    updated_at: float
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class Tagged:
    """A taggable resource: ``kind`` is ``"namespace"`` or ``"service"``."""

    kind: str
    id: str
    tags: list[dict[str, str]]


def _operation_id() -> str:
    head = "".join(secrets.choice(_OP_ALNUM) for _ in range(32))
    return head + "-" + "".join(secrets.choice(_OP_ALNUM) for _ in range(9))


def _json(value: str | None) -> Any:
    return json.loads(value) if value else None


def namespace_from(row: sqlite3.Row, service_count: int = 0) -> Namespace:
    return Namespace(
        id=row["id"], arn=row["arn"], name=row["name"], type=row["type"],
        description=row["description"], soa_ttl=row["soa_ttl"],
        creator_request_id=row["creator_request_id"], created_at=row["created_at"],
        service_count=service_count,
    )


def service_from(row: sqlite3.Row) -> Service:
    return Service(
        id=row["id"], arn=row["arn"], name=row["name"], namespace_id=row["namespace_id"],
        type=row["type"], description=row["description"], dns_config=_json(row["dns_config"]),
        health_check=_json(row["health_check"]), custom_health=_json(row["custom_health"]),
        creator_request_id=row["creator_request_id"], created_at=row["created_at"],
        revision=row["revision"], health_interval=health_interval(json.loads(row["tags"])),
    )


def instance_from(row: sqlite3.Row) -> Instance:
    return Instance(
        service_id=row["service_id"], id=row["id"], attributes=json.loads(row["attributes"]),
        health=row["health"], creator_request_id=row["creator_request_id"], created_at=row["created_at"],
    )


def operation_from(row: sqlite3.Row) -> Operation:
    return Operation(
        id=row["id"], type=row["type"], status=row["status"], targets=json.loads(row["targets"]),
        created_at=row["created_at"], updated_at=row["updated_at"], error_code=row["error_code"] or None,
        error_message=row["error_message"] or None,
    )


def _record_operation(tx: Tx, kind: str, targets: dict[str, str], request_id: str = "") -> str:
    op_id = _operation_id()
    now = time.time()
    tx.execute(
        "INSERT INTO cm_operations (id, type, status, targets, creator_request_id, created_at,"
        " updated_at) VALUES (?, ?, 'SUCCESS', ?, ?, ?, ?)",
        (op_id, kind, json.dumps(targets), request_id, now, now),
    )
    return op_id


def _stamp(tx: Tx, topic: str, service_id: str, key: str) -> None:
    """Record a change of ``topic`` and make its revision the service's revision."""
    rev = tx.changed(topic, key)
    tx.execute("UPDATE cm_services SET revision = ? WHERE id = ?", (rev, service_id))


def _prior_operation(tx: Tx, request_id: str, kind: str) -> sqlite3.Row | None:
    return tx.query_one(
        "SELECT id, targets FROM cm_operations WHERE creator_request_id = ? AND type = ?", (request_id, kind)
    )


class Data:
    """Named reads and writes of discovery's state (see module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- reads ---------------------------------------------------------------------------
    def load_all(self) -> tuple[list[Namespace], list[Service], list[Instance]]:
        """Every namespace, service and instance, as committed."""
        rows = self.store.query("SELECT namespace_id, COUNT(*) FROM cm_services GROUP BY namespace_id")
        counts = {r[0]: r[1] for r in rows}
        namespaces = [namespace_from(r, counts.get(r["id"], 0))
                      for r in self.store.query("SELECT * FROM cm_namespaces")]
        services = [service_from(r) for r in self.store.query("SELECT * FROM cm_services")]
        instances = [instance_from(r)
                     for r in self.store.query("SELECT * FROM cm_instances ORDER BY created_at, id")]
        return namespaces, services, instances

    def load_service(self, service_id: str) -> tuple[Service | None, list[Instance]]:
        """One service and its instances (oldest first), or ``(None, [])``."""
        row = self.store.query_one("SELECT * FROM cm_services WHERE id = ?", (service_id,))
        if row is None:
            return None, []
        rows = self.store.query(
            "SELECT * FROM cm_instances WHERE service_id = ? ORDER BY created_at, id", (service_id,)
        )
        return service_from(row), [instance_from(r) for r in rows]

    def namespace(self, namespace: str) -> Namespace | None:
        """The namespace with this id, ARN or name (the oldest of that name), None when there is
        none (the runner's ``NamespaceInfo``, through ``Discovery.namespace``)."""
        row = self.store.query_one(
            f"SELECT * FROM {NAMESPACE_TABLE} WHERE id = ? OR arn = ? OR name = ?"
            " ORDER BY created_at LIMIT 1",
            (namespace.rsplit("/", 1)[-1], namespace, namespace),
        )
        return None if row is None else namespace_from(row)

    def namespace_service_ids(self, namespace: str) -> set[str] | None:
        """The ids of the services of the namespace with this id, ARN or name (every namespace
        of that name), None when there is no such namespace."""
        found = self.store.query(f"SELECT id FROM {NAMESPACE_TABLE} WHERE id = ? OR name = ?",
                                 (namespace.rsplit("/", 1)[-1], namespace))
        if not found:
            return None
        ids = [r["id"] for r in found]
        marks = ", ".join("?" * len(ids))
        rows = self.store.query(f"SELECT id FROM {SERVICE_TABLE} WHERE namespace_id IN ({marks})", tuple(ids))
        return {r["id"] for r in rows}

    def operation(self, op_id: str) -> Operation | None:
        row = self.store.query_one("SELECT * FROM cm_operations WHERE id = ?", (op_id,))
        return None if row is None else operation_from(row)

    def operations(self) -> list[Operation]:
        """Every recorded operation, oldest first."""
        rows = self.store.query("SELECT * FROM cm_operations ORDER BY created_at")
        return [operation_from(r) for r in rows]

    def tagged(self, arn: str) -> Tagged | None:
        """The namespace or service with this ARN and its tags."""
        for kind, table in (("namespace", NAMESPACE_TABLE), ("service", SERVICE_TABLE)):
            row = self.store.query_one(f"SELECT id, tags FROM {table} WHERE arn = ?", (arn,))
            if row is not None:
                return Tagged(kind, row["id"], json.loads(row["tags"]))
        return None

    # -- namespaces ----------------------------------------------------------------------
    async def create_namespace(self, ns: Namespace, tags: list[dict[str, str]]) -> str:
        """Insert ``ns``; the CREATE_NAMESPACE operation id. A ``creator_request_id`` already used
        for a namespace creation gives that operation back; a taken name raises
        NamespaceAlreadyExists (naming the existing namespace)."""
        async with self.store.transaction() as tx:
            if ns.creator_request_id:
                prior = _prior_operation(tx, ns.creator_request_id, "CREATE_NAMESPACE")
                if prior is not None:
                    return str(prior["id"])
            row = tx.query_one("SELECT id, creator_request_id FROM cm_namespaces WHERE name = ?", (ns.name,))
            if row is not None:
                raise with_fields(
                    NamespaceAlreadyExists(f"Namespace {ns.name} already exists."),
                    CreatorRequestId=row["creator_request_id"] or None, NamespaceId=row["id"],
                )
            tx.execute(
                "INSERT INTO cm_namespaces (id, arn, name, type, description, soa_ttl, creator_request_id,"
                " created_at, tags) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (ns.id, ns.arn, ns.name, ns.type, ns.description, ns.soa_ttl, ns.creator_request_id,
                 ns.created_at, json.dumps(tags)),
            )
            op = _record_operation(tx, "CREATE_NAMESPACE", {"NAMESPACE": ns.id}, ns.creator_request_id)
            tx.changed(tables.NAMESPACE, ns.id)
        return op

    async def update_namespace(self, ns_id: str, description: str | None, soa_ttl: int | None) -> str:
        """Change what is given (None: unchanged); the UPDATE_NAMESPACE operation id."""
        async with self.store.transaction() as tx:
            if description is not None:
                tx.execute("UPDATE cm_namespaces SET description = ? WHERE id = ?", (description, ns_id))
            if soa_ttl is not None:
                tx.execute("UPDATE cm_namespaces SET soa_ttl = ? WHERE id = ?", (soa_ttl, ns_id))
            op = _record_operation(tx, "UPDATE_NAMESPACE", {"NAMESPACE": ns_id})
            tx.changed(tables.NAMESPACE, ns_id)
        return op

    async def delete_namespace(self, ns_id: str) -> str:
        """Delete an empty namespace (ResourceInUse if it has services); the operation id."""
        async with self.store.transaction() as tx:
            if tx.query_one("SELECT 1 FROM cm_services WHERE namespace_id = ?", (ns_id,)):
                raise ResourceInUse(f"Namespace {ns_id} has services; delete them first.")
            tx.execute("DELETE FROM cm_namespaces WHERE id = ?", (ns_id,))
            op = _record_operation(tx, "DELETE_NAMESPACE", {"NAMESPACE": ns_id})
            tx.changed(tables.NAMESPACE, ns_id)
        return op

    # -- services ------------------------------------------------------------------------
    async def create_service(self, srv: Service, tags: list[dict[str, str]], namespace_name: str) -> str:
        """Insert ``srv``; its id. A service of the same name (case-insensitive) in the namespace
        raises ServiceAlreadyExists, unless it was created with the same non-empty
        ``creator_request_id``: then that service's id is returned and nothing is written."""
        async with self.store.transaction() as tx:
            row = tx.query_one(
                "SELECT id, arn, creator_request_id FROM cm_services"
                " WHERE namespace_id = ? AND lower(name) = ?",
                (srv.namespace_id, srv.name.lower()),
            )
            if row is not None:
                if srv.creator_request_id and row["creator_request_id"] == srv.creator_request_id:
                    return str(row["id"])
                raise with_fields(
                    ServiceAlreadyExists(f"Service {srv.name} already exists in namespace {namespace_name}."),
                    CreatorRequestId=row["creator_request_id"] or None, ServiceId=row["id"],
                    ServiceArn=row["arn"],
                )
            tx.execute(
                "INSERT INTO cm_services (id, arn, namespace_id, name, type, description, dns_config,"
                " health_check, custom_health, creator_request_id, created_at, tags)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (srv.id, srv.arn, srv.namespace_id, srv.name, srv.type, srv.description,
                 json.dumps(srv.dns_config) if srv.dns_config else None,
                 json.dumps(srv.health_check) if srv.health_check else None,
                 json.dumps(srv.custom_health) if srv.custom_health is not None else None,
                 srv.creator_request_id, srv.created_at, json.dumps(tags)),
            )
            tx.changed(tables.SERVICE, srv.id)
        return srv.id

    async def update_service(self, old: Service, description: str, dns_config: dict[str, Any] | None,
                             health_check: dict[str, Any] | None) -> str:
        """Replace the service's description, DnsConfig and HealthCheckConfig; the UPDATE_SERVICE
        operation id. Adding a health check makes its instances HEALTHY, removing it UNKNOWN."""
        async with self.store.transaction() as tx:
            tx.execute(
                "UPDATE cm_services SET description = ?, dns_config = ?, health_check = ? WHERE id = ?",
                (description, json.dumps(dns_config) if dns_config else None,
                 json.dumps(health_check) if health_check else None, old.id),
            )
            if health_check is None and old.health_check:
                tx.execute("UPDATE cm_instances SET health = 'UNKNOWN' WHERE service_id = ?", (old.id,))
            elif health_check and not old.health_check:
                tx.execute("UPDATE cm_instances SET health = 'HEALTHY' WHERE service_id = ?", (old.id,))
            op = _record_operation(tx, "UPDATE_SERVICE", {"SERVICE": old.id})
            _stamp(tx, tables.SERVICE, old.id, old.id)
        return op

    async def delete_service(self, service_id: str) -> None:
        """Delete a service without instances (ResourceInUse otherwise)."""
        async with self.store.transaction() as tx:
            if tx.query_one("SELECT 1 FROM cm_instances WHERE service_id = ?", (service_id,)):
                raise ResourceInUse(f"Service {service_id} has registered instances; deregister them first.")
            tx.execute("DELETE FROM cm_services WHERE id = ?", (service_id,))
            tx.changed(tables.SERVICE, service_id)

    async def write_tags(self, target: Tagged, tags: list[dict[str, str]]) -> None:
        """Replace the tags of ``target``."""
        table = SERVICE_TABLE if target.kind == "service" else NAMESPACE_TABLE
        async with self.store.transaction() as tx:
            tx.execute(f"UPDATE {table} SET tags = ? WHERE id = ?", (json.dumps(tags), target.id))
            tx.changed(tables.SERVICE if target.kind == "service" else tables.NAMESPACE, target.id)

    # -- instances -----------------------------------------------------------------------
    async def put_instance(self, service: Service, instance_id: str, attributes: dict[str, str],
                           request_id: str = "") -> str:
        """Register or re-register (new attributes) an instance; the REGISTER_INSTANCE operation id.

        A new instance starts HEALTHY in a health-checked service, UNKNOWN otherwise; a
        re-registration keeps its health. A ``request_id`` already used gives its operation back
        if it named this instance, DuplicateRequest otherwise. ResourceLimitExceeded past
        :data:`~discovery.model.MAX_INSTANCES_PER_SERVICE`.
        """
        async with self.store.transaction() as tx:
            if request_id:
                prior = _prior_operation(tx, request_id, "REGISTER_INSTANCE")
                if prior is not None:
                    targets = json.loads(prior["targets"])
                    if targets.get("INSTANCE") != instance_id or targets.get("SERVICE") != service.id:
                        raise DuplicateRequest(
                            f"CreatorRequestId {request_id} was already used for another instance."
                        )
                    return str(prior["id"])
            exists = tx.query_one(
                "SELECT 1 FROM cm_instances WHERE service_id = ? AND id = ?", (service.id, instance_id)
            )
            if exists is None:
                count = tx.query_one(
                    "SELECT COUNT(*) FROM cm_instances WHERE service_id = ?", (service.id,)
                )[0]
                if count >= MAX_INSTANCES_PER_SERVICE:
                    raise ResourceLimitExceeded(
                        f"A service can have at most {MAX_INSTANCES_PER_SERVICE} instances."
                    )
                tx.execute(
                    "INSERT INTO cm_instances (service_id, id, attributes, health, creator_request_id,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (service.id, instance_id, json.dumps(attributes),
                     "HEALTHY" if service.has_health else "UNKNOWN", request_id, time.time()),
                )
            else:
                tx.execute(
                    "UPDATE cm_instances SET attributes = ?, creator_request_id = ?"
                    " WHERE service_id = ? AND id = ?",
                    (json.dumps(attributes), request_id, service.id, instance_id),
                )
            op = _record_operation(
                tx, "REGISTER_INSTANCE", {"SERVICE": service.id, "INSTANCE": instance_id}, request_id
            )
            _stamp(tx, tables.INSTANCE, service.id, f"{service.id}/{instance_id}")
        return op

    async def delete_instance(self, service_id: str, instance_id: str) -> str | None:
        """Deregister an instance; the DEREGISTER_INSTANCE operation id, or None (and nothing
        written) when there was no such instance."""
        async with self.store.transaction() as tx:
            cur = tx.execute(
                "DELETE FROM cm_instances WHERE service_id = ? AND id = ?", (service_id, instance_id)
            )
            if cur.rowcount == 0:
                return None
            op = _record_operation(
                tx, "DEREGISTER_INSTANCE", {"SERVICE": service_id, "INSTANCE": instance_id}
            )
            _stamp(tx, tables.INSTANCE, service_id, f"{service_id}/{instance_id}")
        return op

    async def set_health(self, service_id: str, instance_id: str, status: str) -> str | None:
        """Record ``status`` for an instance; the status it had, or None when nothing changed
        (no such instance, or already ``status``). A change is a ``discovery/health`` change."""
        async with self.store.transaction() as tx:
            row = tx.query_one(
                "SELECT health FROM cm_instances WHERE service_id = ? AND id = ?", (service_id, instance_id)
            )
            if row is None or row["health"] == status:
                return None
            tx.execute("UPDATE cm_instances SET health = ? WHERE service_id = ? AND id = ?",
                       (status, service_id, instance_id))
            _stamp(tx, tables.HEALTH, service_id, f"{service_id}/{instance_id}")
        return str(row["health"])
