"""Access keys that sign control-API requests (SigV4), kept in the state store.

A key's secret is stored sealed (:mod:`dockyard.sealed`), not hashed: verifying a SigV4
signature needs the secret itself. Migration ``keys`` 2 seals the secrets an older version
stored in plaintext."""

from __future__ import annotations

import logging
import secrets
import string
import time
from dataclasses import dataclass

from dockyard import sealed
from dockyard.store import Migration, Store

__all__ = ["MIGRATIONS", "AccessKey", "SecretCache", "create", "delete", "list_keys", "secret_for"]

MIGRATIONS = [
    Migration(
        "keys",
        1,
        """
        CREATE TABLE access_keys (
            access_key_id TEXT PRIMARY KEY, secret TEXT NOT NULL, name TEXT NOT NULL,
            created_at REAL NOT NULL);
        """,
    ),
    # A key's IAM policy (dockyard.iam): a key without a row is an administrator.
    Migration(
        "key_policies",
        1,
        "CREATE TABLE key_policies (access_key_id TEXT PRIMARY KEY, policy TEXT NOT NULL);",
    ),
    Migration("keys", 2, "", step=sealed.seal_column("access_keys", "access_key_id", "secret")),
]

log = logging.getLogger(__name__)

_ALNUM = string.ascii_uppercase + string.digits
TOPIC = "keys"


@dataclass(frozen=True)
class AccessKey:
    access_key_id: str
    name: str
    created_at: float
    secret: str = ""


async def create(store: Store, name: str, policy: str | None = None) -> AccessKey:
    """A new key; ``policy`` (an IAM policy document, already validated by
    ``dockyard.iam.policy.parse``) limits what it may do, none makes it an administrator."""
    key_id = "DKYD" + "".join(secrets.choice(_ALNUM) for _ in range(16))
    secret = secrets.token_urlsafe(30)
    now = time.time()
    async with store.transaction() as tx:
        tx.execute(
            "INSERT INTO access_keys (access_key_id, secret, name, created_at) VALUES (?,?,?,?)",
            (key_id, store.seal(secret, "access_keys", "secret", key_id), name, now),
        )
        if policy is not None:
            tx.execute("INSERT INTO key_policies (access_key_id, policy) VALUES (?,?)", (key_id, policy))
        tx.changed(TOPIC, key_id)
    return AccessKey(key_id, name, now, secret)


def list_keys(store: Store) -> list[AccessKey]:
    rows = store.query("SELECT access_key_id, name, created_at FROM access_keys ORDER BY created_at")
    return [AccessKey(r[0], r[1], r[2]) for r in rows]


async def delete(store: Store, key_id: str) -> bool:
    async with store.transaction() as tx:
        if tx.execute("DELETE FROM access_keys WHERE access_key_id = ?", (key_id,)).rowcount == 0:
            return False
        tx.execute("DELETE FROM key_policies WHERE access_key_id = ?", (key_id,))
        tx.changed(TOPIC, key_id)
        return True


def secret_for(store: Store, key_id: str) -> str | None:
    """The secret of ``key_id``, or None if there is no such key or its secret cannot be
    opened with this store's key file (logged: every request signed with it is refused)."""
    row = store.query_one("SELECT secret FROM access_keys WHERE access_key_id = ?", (key_id,))
    if row is None:
        return None
    try:
        return store.unseal(row[0], "access_keys", "secret", key_id)
    except sealed.SealError as e:
        log.error("access key secret unreadable", extra={"access_key_id": key_id, "error": str(e)})
        return None


class SecretCache:
    """``secret_for`` for the request path: answers from memory until the store's revision
    moves (every key change bumps it; ``Store.follow`` sees one made by another process, e.g.
    ``dockyard keys delete``, within its poll interval), then reads again."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._version = -1
        self._secrets: dict[str, str | None] = {}

    def __call__(self, key_id: str) -> str | None:
        version = self._store.revision
        if version != self._version:
            self._secrets.clear()
            self._version = version
        if key_id not in self._secrets:
            if len(self._secrets) > 10_000:
                self._secrets.clear()
            self._secrets[key_id] = secret_for(self._store, key_id)
        return self._secrets[key_id]
