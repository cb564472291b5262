"""Discovery's schema and change topics (the reads and writes are in :mod:`discovery.data`).

Change topics recorded with ``tx.changed``: :data:`NAMESPACE` (key: namespace id),
:data:`SERVICE` (key: service id), :data:`INSTANCE` (key: ``service_id/instance_id``; register,
deregister, attribute change) and :data:`HEALTH` (same key; a health flip).
"""

from __future__ import annotations

from dockyard.store import Migration

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

