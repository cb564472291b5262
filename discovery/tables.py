"""Discovery's tables and the rows-to-model conversions (the part's only SQL besides writes).

Change topics recorded with ``tx.changed``: :data:`NAMESPACE` (key: namespace id),
:data:`SERVICE` (key: service id), :data:`INSTANCE` (key: ``service_id/instance_id``; register,
deregister, attribute change) and :data:`HEALTH` (same key; a health flip).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from discovery.model import Instance, Namespace, Service, health_interval
from dockyard.store import Migration, Store

__all__ = ["HEALTH", "INSTANCE", "MIGRATIONS", "NAMESPACE", "SERVICE", "TOPICS"]

NAMESPACE = "discovery/namespace"
SERVICE = "discovery/service"
INSTANCE = "discovery/instance"
HEALTH = "discovery/health"
TOPICS = (NAMESPACE, SERVICE, INSTANCE, HEALTH)

MIGRATIONS = [
    Migration(
        "discovery",
        1,
        """
        CREATE TABLE cm_namespaces (
            id TEXT PRIMARY KEY, arn TEXT NOT NULL, name TEXT NOT NULL UNIQUE, type TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '', soa_ttl INTEGER,
            creator_request_id TEXT NOT NULL DEFAULT '', created_at REAL NOT NULL,
            tags TEXT NOT NULL DEFAULT '[]');
        CREATE TABLE cm_services (
            id TEXT PRIMARY KEY, arn TEXT NOT NULL, namespace_id TEXT NOT NULL REFERENCES cm_namespaces(id),
            name TEXT NOT NULL, type TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',
            dns_config TEXT, health_check TEXT, custom_health TEXT,
            creator_request_id TEXT NOT NULL DEFAULT '', created_at REAL NOT NULL,
            tags TEXT NOT NULL DEFAULT '[]', revision INTEGER NOT NULL DEFAULT 0,
            UNIQUE (namespace_id, name));
        CREATE TABLE cm_instances (
            service_id TEXT NOT NULL REFERENCES cm_services(id), id TEXT NOT NULL,
            attributes TEXT NOT NULL, health TEXT NOT NULL, creator_request_id TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL, PRIMARY KEY (service_id, id));
        CREATE TABLE cm_operations (
            id TEXT PRIMARY KEY, type TEXT NOT NULL, status TEXT NOT NULL, targets TEXT NOT NULL,
            creator_request_id TEXT NOT NULL DEFAULT '', created_at REAL NOT NULL, updated_at REAL NOT NULL,
            error_code TEXT, error_message TEXT);
        CREATE INDEX cm_operations_request ON cm_operations (creator_request_id);
        """,
    )
]


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


def load_all(store: Store) -> tuple[list[Namespace], list[Service], list[Instance]]:
    """Every namespace, service and instance, as committed."""
    rows = store.query("SELECT namespace_id, COUNT(*) FROM cm_services GROUP BY namespace_id")
    counts = {r[0]: r[1] for r in rows}
    rows = store.query("SELECT * FROM cm_namespaces")
    namespaces = [namespace_from(r, counts.get(r["id"], 0)) for r in rows]
    services = [service_from(r) for r in store.query("SELECT * FROM cm_services")]
    instances = [instance_from(r) for r in store.query("SELECT * FROM cm_instances ORDER BY created_at, id")]
    return namespaces, services, instances


def load_service(store: Store, service_id: str) -> tuple[Service | None, list[Instance]]:
    row = store.query_one("SELECT * FROM cm_services WHERE id = ?", (service_id,))
    if row is None:
        return None, []
    rows = store.query(
        "SELECT * FROM cm_instances WHERE service_id = ? ORDER BY created_at, id", (service_id,)
    )
    return service_from(row), [instance_from(r) for r in rows]
