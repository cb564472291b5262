"""The ECR view of the registry's store: repository settings, images, registry settings.

A repository is a row of ``registry_repositories`` (a first push creates it); its ECR
settings are a row of ``registry_repository_settings`` (migration ``registry`` 2), absent for
a repository made by a push: such a one has :data:`DEFAULTS`. Images are the manifests of
``registry_manifests`` with their tags, the sizes of the blobs they name and the last
recorded pull (``registry_image_pulls``). Writes go through one ``store.transaction()`` and
bump the ``registry`` change topic, as :mod:`registry.metadata` does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from dockyard.store import Migration, Store, Tx
from registry.metadata import TOPIC
from registry.pullthrough.rules import Rule

__all__ = [
    "DEFAULTS",
    "MIGRATIONS",
    "Image",
    "Settings",
    "create",
    "create_rule",
    "delete_rule",
    "image_rows",
    "mark_checked",
    "registry_setting",
    "rule",
    "rules",
    "settings",
    "tag_checked",
    "update",
    "update_rule",
]

# Pull-through cache rules, and when each cached tag was last checked upstream.
MIGRATIONS = [
    Migration(
        "registry_pull_through",
        1,
        """
        CREATE TABLE registry_pull_through_rules (
            prefix TEXT PRIMARY KEY, upstream_url TEXT NOT NULL, upstream_registry TEXT,
            credential_arn TEXT, custom_role_arn TEXT, upstream_prefix TEXT NOT NULL,
            created REAL NOT NULL, updated REAL) WITHOUT ROWID;
        CREATE TABLE registry_pull_through_tags (
            repository TEXT NOT NULL, tag TEXT NOT NULL, checked REAL NOT NULL,
            PRIMARY KEY (repository, tag)) WITHOUT ROWID;
        """,
    ),
]


@dataclass(frozen=True)
class Settings:
    """The ECR settings of one repository."""

    name: str
    created: float
    tag_mutability: str = "MUTABLE"
    mutability_filters: list[dict[str, str]] = field(default_factory=list)
    scan_on_push: bool = False
    encryption: dict[str, str] = field(default_factory=lambda: {"encryptionType": "AES256"})
    policy: str | None = None
    tags: list[dict[str, str]] = field(default_factory=list)
    lifecycle: str | None = None  # the lifecycle policy's text
    lifecycle_evaluated: float | None = None  # when it was last applied


DEFAULTS = Settings("", 0.0)

_COLUMNS = (
    "tag_mutability, mutability_filters, scan_on_push, encryption, policy, tags,"
    " lifecycle, lifecycle_evaluated"
)
_MARKS = ", ".join("?" * (2 + len(_COLUMNS.split(", "))))


def _settings(name: str, created: float, row: Any) -> Settings:
    if row is None or row[0] is None:
        return replace(DEFAULTS, name=name, created=created)
    return Settings(
        name,
        created,
        row[0],
        json.loads(row[1]),
        bool(row[2]),
        json.loads(row[3]),
        row[4],
        json.loads(row[5]),
        row[6],
        row[7],
    )


def _values(s: Settings) -> tuple:
    return (
        s.tag_mutability,
        json.dumps(s.mutability_filters),
        int(s.scan_on_push),
        json.dumps(s.encryption),
        s.policy,
        json.dumps(s.tags),
        s.lifecycle,
        s.lifecycle_evaluated,
    )


def settings(store: Store | Tx, name: str) -> Settings | None:
    """The settings of repository ``name`` (None: no such repository)."""
    row = store.query_one(
        f"SELECT r.created, {', '.join('s.' + c for c in _COLUMNS.split(', '))} FROM registry_repositories r"
        " LEFT JOIN registry_repository_settings s ON s.name = r.name WHERE r.name = ?",
        (name,),
    )
    return None if row is None else _settings(name, row[0], row[1:])


def all_settings(store: Store) -> list[Settings]:
    """Every repository's settings, by name."""
    rows = store.query(
        f"SELECT r.name, r.created, {', '.join('s.' + c for c in _COLUMNS.split(', '))}"
        " FROM registry_repositories r LEFT JOIN registry_repository_settings s ON s.name = r.name"
        " ORDER BY r.name"
    )
    return [_settings(r[0], r[1], r[2:]) for r in rows]


async def create(store: Store, s: Settings) -> Settings | None:
    """Create repository ``s.name`` with settings ``s``; None if it exists already."""
    now = time.time()
    async with store.transaction() as tx:
        if tx.query_one("SELECT 1 FROM registry_repositories WHERE name = ?", (s.name,)) is not None:
            return None
        tx.execute("INSERT INTO registry_repositories (name, created) VALUES (?, ?)", (s.name, now))
        tx.execute(
            f"INSERT OR REPLACE INTO registry_repository_settings (name, created, {_COLUMNS})"
            f" VALUES ({_MARKS})",
            (s.name, now, *_values(s)),
        )
        tx.changed(TOPIC, s.name)
    return replace(s, created=now)


async def update(store: Store, name: str, **changes: Any) -> Settings | None:
    """Change some settings of ``name`` (fields of :class:`Settings`); None: no such repository."""
    async with store.transaction() as tx:
        current = settings(tx, name)
        if current is None:
            return None
        new = replace(current, **changes)
        tx.execute(
            f"INSERT OR REPLACE INTO registry_repository_settings (name, created, {_COLUMNS})"
            f" VALUES ({_MARKS})",
            (name, current.created, *_values(new)),
        )
        tx.changed(TOPIC, name)
    return new


@dataclass(frozen=True)
class Image:
    """One manifest of a repository as ECR describes it."""

    digest: str
    media_type: str
    size: int  # the blobs it names (layers and config); a manifest without any: its own size
    pushed: float
    tags: tuple[str, ...]
    pulled: float | None
    subject: str | None
    body: bytes


def image_rows(store: Store, repository: str) -> list[Image]:
    """Every image of ``repository``, oldest push first."""
    rows = store.query(
        "SELECT m.digest, m.media_type, m.size, m.created, m.subject, m.body,"
        " (SELECT group_concat(t.tag, char(10)) FROM registry_tags t"
        "   WHERE t.repository = m.repository AND t.digest = m.digest),"
        " (SELECT sum(b.size) FROM registry_manifest_references r"
        "   JOIN registry_blobs b ON b.digest = r.digest"
        "   WHERE r.repository = m.repository AND r.manifest = m.digest AND r.kind = 'blob'),"
        " (SELECT p.pulled FROM registry_image_pulls p"
        "   WHERE p.repository = m.repository AND p.digest = m.digest)"
        " FROM registry_manifests m WHERE m.repository = ? ORDER BY m.created, m.digest",
        (repository,),
    )
    return [
        Image(
            r[0],
            r[1],
            r[7] if r[7] is not None else r[2],
            r[3],
            tuple(sorted(r[6].split("\n"))) if r[6] else (),
            r[8],
            r[4],
            bytes(r[5]),
        )
        for r in rows
    ]


def parents(store: Store, repository: str, digest: str) -> list[str]:
    """The manifests of ``repository`` (indexes) that name manifest ``digest`` as a child."""
    rows = store.query(
        "SELECT manifest FROM registry_manifest_references WHERE repository = ? AND digest = ?"
        " AND kind = 'manifest' ORDER BY manifest",
        (repository, digest),
    )
    return [r[0] for r in rows]


def registry_setting(store: Store | Tx, name: str) -> Any:
    """A registry-wide setting (decoded JSON), None when never set (``store`` may be a
    transaction)."""
    row = store.query_one("SELECT value FROM registry_settings WHERE name = ?", (name,))
    return None if row is None else json.loads(row[0])


async def change_registry_setting(store: Store, name: str, change: Callable[[Any], Any]) -> Any:
    """Replace registry setting ``name`` by ``change(current)`` in one transaction (current is
    None when never set); ``change`` may raise to leave it as it was. Returns the new value."""
    async with store.transaction() as tx:
        value = change(registry_setting(tx, name))
        tx.execute(
            "INSERT OR REPLACE INTO registry_settings (name, value) VALUES (?, ?)", (name, json.dumps(value))
        )
        tx.changed(TOPIC, f"settings/{name}")
    return value


def put_settings(tx: Tx, s: Settings, now: float) -> None:
    """Write the settings row of repository ``s.name`` (which exists) in transaction ``tx``."""
    tx.execute(
        f"INSERT OR REPLACE INTO registry_repository_settings (name, created, {_COLUMNS}) VALUES ({_MARKS})",
        (s.name, now, *_values(s)),
    )


async def put_registry_setting(store: Store, name: str, value: Any) -> None:
    async with store.transaction() as tx:
        tx.execute(
            "INSERT OR REPLACE INTO registry_settings (name, value) VALUES (?, ?)", (name, json.dumps(value))
        )
        tx.changed(TOPIC, f"settings/{name}")


# -- pull-through cache rules -------------------------------------------------------------------
_RULE_COLUMNS = (
    "prefix, upstream_url, created, upstream_registry, credential_arn, custom_role_arn, upstream_prefix,"
    " updated"
)
_RULE_MARKS = ", ".join("?" * 8)


def _rule(row: Any) -> Rule:
    return Rule(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7])


def rules(store: Store | Tx) -> list[Rule]:
    """Every pull-through cache rule, by prefix."""
    rows = store.query(f"SELECT {_RULE_COLUMNS} FROM registry_pull_through_rules ORDER BY prefix")
    return [_rule(r) for r in rows]


def rule(store: Store | Tx, prefix: str) -> Rule | None:
    row = store.query_one(
        f"SELECT {_RULE_COLUMNS} FROM registry_pull_through_rules WHERE prefix = ?", (prefix,)
    )
    return None if row is None else _rule(row)


def _rule_values(r: Rule) -> tuple:
    return (
        r.prefix, r.upstream_url, r.created, r.upstream_registry, r.credential_arn, r.custom_role_arn,
        r.upstream_prefix, r.updated,
    )


async def create_rule(store: Store, r: Rule) -> bool:
    """Store rule ``r``; False if a rule of that prefix exists already."""
    async with store.transaction() as tx:
        if rule(tx, r.prefix) is not None:
            return False
        tx.execute(
            f"INSERT INTO registry_pull_through_rules ({_RULE_COLUMNS}) VALUES ({_RULE_MARKS})",
            _rule_values(r),
        )
        tx.changed(TOPIC, f"pull-through/{r.prefix}")
    return True


async def update_rule(store: Store, prefix: str, **changes: Any) -> Rule | None:
    """Change fields of the rule of ``prefix`` (``updated`` set to now); None: no such rule."""
    async with store.transaction() as tx:
        current = rule(tx, prefix)
        if current is None:
            return None
        new = replace(current, updated=time.time(), **changes)
        tx.execute(
            f"INSERT OR REPLACE INTO registry_pull_through_rules ({_RULE_COLUMNS}) VALUES ({_RULE_MARKS})",
            _rule_values(new),
        )
        tx.changed(TOPIC, f"pull-through/{prefix}")
    return new


async def delete_rule(store: Store, prefix: str) -> Rule | None:
    """Remove the rule of ``prefix`` (the repositories it filled stay); None: no such rule."""
    async with store.transaction() as tx:
        current = rule(tx, prefix)
        if current is None:
            return None
        tx.execute("DELETE FROM registry_pull_through_rules WHERE prefix = ?", (prefix,))
        tx.changed(TOPIC, f"pull-through/{prefix}")
    return current


def tag_checked(store: Store, repository: str, tag: str) -> float | None:
    """When the cached ``tag`` of ``repository`` was last checked upstream (None: never)."""
    row = store.query_one(
        "SELECT checked FROM registry_pull_through_tags WHERE repository = ? AND tag = ?", (repository, tag)
    )
    return None if row is None else row[0]


async def mark_checked(store: Store, repository: str, tag: str, now: float) -> None:
    async with store.transaction(durable=False) as tx:
        tx.execute(
            "INSERT OR REPLACE INTO registry_pull_through_tags (repository, tag, checked) VALUES (?, ?, ?)",
            (repository, tag, now),
        )
