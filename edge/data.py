"""The edge's state: load balancers, target groups, listeners, rules and their targets.

One table, ``edge_resources``: each row is one ELBv2 resource by ARN, its ``kind``
(``lb``, ``tg``, ``listener``, ``rule``), its name, its parent's ARN (a listener's load
balancer, a rule's listener), its AWS-shaped description (``body``, JSON) and its tags. A
target group's targets are in ``edge_targets``. Every write records an ``edge/<kind>``
change. This module is the only SQL of the part; reads return frozen :class:`Resource` and
:class:`Target` values.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from dockyard.store import Migration, Store

__all__ = ["LB", "LISTENER", "MIGRATIONS", "RULE", "TG", "TOPIC", "Certificate", "Data", "Resource", "Target"]

LB, TG, LISTENER, RULE = "lb", "tg", "listener", "rule"
TOPIC = "edge/state"

MIGRATIONS = [
    Migration(
        "edge",
        1,
        """
        CREATE TABLE edge_resources (
            arn TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            name TEXT NOT NULL,
            parent TEXT NOT NULL DEFAULT '',
            body TEXT NOT NULL,
            tags TEXT NOT NULL DEFAULT '[]',
            created_at REAL NOT NULL
        );
        CREATE INDEX edge_resources_kind ON edge_resources (kind, parent);
        CREATE TABLE edge_targets (
            tg TEXT NOT NULL,
            id TEXT NOT NULL,
            port INTEGER NOT NULL,
            registered_at REAL NOT NULL,
            PRIMARY KEY (tg, id, port)
        );
        """,
    ),
    Migration(
        "edge",
        2,
        """
        CREATE TABLE edge_certificates (
            arn TEXT PRIMARY KEY,
            body TEXT NOT NULL,
            certificate TEXT NOT NULL,
            chain TEXT NOT NULL,
            private_key TEXT NOT NULL,
            tags TEXT NOT NULL DEFAULT '[]'
        );
        """,
    ),
]


@dataclass(frozen=True)
class Resource:
    arn: str
    kind: str
    name: str
    parent: str
    body: dict[str, Any]
    tags: tuple[tuple[str, str], ...]
    created_at: float


@dataclass(frozen=True)
class Target:
    tg: str
    id: str
    port: int
    registered_at: float


@dataclass(frozen=True)
class Certificate:
    """An imported certificate: ACM's description (``body``), the PEMs, the tags."""

    arn: str
    body: dict[str, Any]
    certificate: str
    chain: str
    private_key: str
    tags: tuple[tuple[str, str], ...]


def _certificate(r: sqlite3.Row) -> Certificate:
    tags = tuple((t["Key"], t.get("Value", "")) for t in json.loads(r["tags"]))
    return Certificate(r["arn"], json.loads(r["body"]), r["certificate"], r["chain"], r["private_key"], tags)


def _resource(r: sqlite3.Row) -> Resource:
    tags = tuple((t["Key"], t.get("Value", "")) for t in json.loads(r["tags"]))
    return Resource(r["arn"], r["kind"], r["name"], r["parent"], json.loads(r["body"]), tags, r["created_at"])


def _tags(tags: tuple[tuple[str, str], ...]) -> str:
    return json.dumps([{"Key": k, "Value": v} for k, v in tags])


class Data:
    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, arn: str, kind: str | None = None) -> Resource | None:
        row = self.store.query_one("SELECT * FROM edge_resources WHERE arn = ?", (arn,))
        if row is None or (kind is not None and row["kind"] != kind):
            return None
        return _resource(row)

    def by_name(self, kind: str, name: str) -> Resource | None:
        row = self.store.query_one("SELECT * FROM edge_resources WHERE kind = ? AND name = ?", (kind, name))
        return _resource(row) if row is not None else None

    def all(self, kind: str, parent: str | None = None) -> list[Resource]:
        if parent is None:
            rows = self.store.query(
                "SELECT * FROM edge_resources WHERE kind = ? ORDER BY created_at, arn", (kind,)
            )
        else:
            rows = self.store.query(
                "SELECT * FROM edge_resources WHERE kind = ? AND parent = ? ORDER BY created_at, arn",
                (kind, parent),
            )
        return [_resource(r) for r in rows]

    async def put(self, res: Resource, *, unique_name: bool = False) -> bool:
        """Insert or replace ``res``; with ``unique_name``, False (nothing written) when another
        resource of its kind has its name."""
        async with self.store.transaction() as tx:
            if unique_name:
                row = tx.query_one(
                    "SELECT arn FROM edge_resources WHERE kind = ? AND name = ?", (res.kind, res.name)
                )
                if row is not None and row["arn"] != res.arn:
                    return False
            tx.execute(
                "INSERT OR REPLACE INTO edge_resources (arn, kind, name, parent, body, tags, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    res.arn,
                    res.kind,
                    res.name,
                    res.parent,
                    json.dumps(res.body),
                    _tags(res.tags),
                    res.created_at,
                ),
            )
            tx.changed(TOPIC, res.arn)
        return True

    async def put_many(self, items: list[Resource]) -> None:
        async with self.store.transaction() as tx:
            for res in items:
                tx.execute(
                    "UPDATE edge_resources SET body = ?, tags = ? WHERE arn = ?",
                    (json.dumps(res.body), _tags(res.tags), res.arn),
                )
            tx.changed(TOPIC, "")

    async def delete(self, arn: str) -> None:
        """Remove a resource, its children (a load balancer's listeners and their rules, a
        listener's rules) and a target group's targets."""
        async with self.store.transaction() as tx:
            children = [r["arn"] for r in tx.query("SELECT arn FROM edge_resources WHERE parent = ?", (arn,))]
            for child in children:
                tx.execute("DELETE FROM edge_resources WHERE parent = ?", (child,))
            tx.execute("DELETE FROM edge_resources WHERE parent = ?", (arn,))
            tx.execute("DELETE FROM edge_resources WHERE arn = ?", (arn,))
            tx.execute("DELETE FROM edge_targets WHERE tg = ?", (arn,))
            tx.changed(TOPIC, arn)

    def targets(self, tg: str | None = None) -> list[Target]:
        if tg is None:
            rows = self.store.query("SELECT * FROM edge_targets ORDER BY tg, registered_at, id, port")
        else:
            rows = self.store.query(
                "SELECT * FROM edge_targets WHERE tg = ? ORDER BY registered_at, id, port", (tg,)
            )
        return [Target(r["tg"], r["id"], r["port"], r["registered_at"]) for r in rows]

    async def register(self, tg: str, targets: list[tuple[str, int]]) -> None:
        now = time.time()
        async with self.store.transaction() as tx:
            for id_, port in targets:
                tx.execute(
                    "INSERT OR IGNORE INTO edge_targets (tg, id, port, registered_at) VALUES (?, ?, ?, ?)",
                    (tg, id_, port, now),
                )
            tx.changed(TOPIC, tg)

    async def deregister(self, tg: str, targets: list[tuple[str, int]]) -> None:
        async with self.store.transaction() as tx:
            for id_, port in targets:
                tx.execute("DELETE FROM edge_targets WHERE tg = ? AND id = ? AND port = ?", (tg, id_, port))
            tx.changed(TOPIC, tg)

    # -- certificates (ACM) -----------------------------------------------------------------

    def certificate(self, arn: str) -> Certificate | None:
        row = self.store.query_one("SELECT * FROM edge_certificates WHERE arn = ?", (arn,))
        return _certificate(row) if row is not None else None

    def certificates(self) -> list[Certificate]:
        return [_certificate(r) for r in self.store.query("SELECT * FROM edge_certificates ORDER BY arn")]

    async def put_certificate(self, cert: Certificate) -> None:
        async with self.store.transaction() as tx:
            tx.execute(
                "INSERT OR REPLACE INTO edge_certificates (arn, body, certificate, chain, private_key, tags)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    cert.arn,
                    json.dumps(cert.body),
                    cert.certificate,
                    cert.chain,
                    cert.private_key,
                    _tags(cert.tags),
                ),
            )
            tx.changed(TOPIC, cert.arn)

    async def delete_certificate(self, arn: str) -> None:
        async with self.store.transaction() as tx:
            tx.execute("DELETE FROM edge_certificates WHERE arn = ?", (arn,))
            tx.changed(TOPIC, arn)
