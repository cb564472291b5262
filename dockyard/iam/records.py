"""Who signed a request, as IAM sees it: the principal behind an access key and its policies.

An access key with a row in ``key_policies`` (:mod:`dockyard.keys`) is limited to that
policy; a key without one (every key made before policies existed, and the admin key
``dockyard up`` creates) is an administrator: :meth:`Principals.get` answers None for it and
nothing is checked.

Roles (``iam_roles``: a name and a policy; ARN ``arn:aws:iam::<account>:role/NAME``) are what
a task definition's ``taskRoleArn`` names; a task's containers get short-lived credentials
for their role (:mod:`dockyard.iam.sessions`), whose principal is
``arn:aws:sts::<account>:assumed-role/NAME/<task id>`` under the role's policy.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from dockyard.iam.policy import Policy, PolicyError, parse
from dockyard.store import Migration, Store

__all__ = ["MIGRATIONS", "Principal", "Principals", "Role", "create_role", "delete_role", "get_role",
           "key_policy", "list_roles", "role_arn", "role_name", "user_arn"]

MIGRATIONS = [
    Migration(
        "iam_roles",
        1,
        "CREATE TABLE iam_roles (name TEXT PRIMARY KEY, policy TEXT NOT NULL, created_at REAL NOT NULL);",
    )
]
TOPIC = "iam/role"
_ROLE = re.compile(r"^[\w+=,.@-]{1,64}$")
_ROLE_ARN = re.compile(r"^arn:aws:iam::(\d{12}):role/(?:[\w+=,.@/-]*/)?([\w+=,.@-]{1,64})$")


@dataclass(frozen=True)
class Role:
    name: str
    policy: str
    created_at: float


@dataclass(frozen=True)
class Principal:
    """A limited caller: its ARN, name (``aws:username``), key id and the policies that apply."""

    arn: str
    name: str
    access_key_id: str
    policies: tuple[Policy, ...]
    kind: str = "User"  # aws:PrincipalType


def user_arn(account: str, name: str) -> str:
    return f"arn:aws:iam::{account}:user/{name}"


def role_arn(account: str, name: str) -> str:
    return f"arn:aws:iam::{account}:role/{name}"


def role_name(arn: str, account: str) -> str | None:
    """The role name of a ``taskRoleArn`` of this account (None if it names none)."""
    m = _ROLE_ARN.match(arn)
    return m.group(2) if m and m.group(1) == account else None


def valid_role_name(name: str) -> bool:
    return bool(_ROLE.match(name))


async def create_role(store: Store, name: str, policy: str) -> Role:
    """A new role (``ValueError`` if the name is not valid or taken)."""
    if not valid_role_name(name):
        raise ValueError(f"role name {name!r}: 1 to 64 letters, digits and +=,.@_-")
    now = time.time()
    async with store.transaction() as tx:
        if tx.execute("SELECT 1 FROM iam_roles WHERE name = ?", (name,)).fetchone():
            raise ValueError(f"role {name} exists")
        tx.execute("INSERT INTO iam_roles (name, policy, created_at) VALUES (?,?,?)", (name, policy, now))
        tx.changed(TOPIC, name)
    return Role(name, policy, now)


async def delete_role(store: Store, name: str) -> bool:
    async with store.transaction() as tx:
        if tx.execute("DELETE FROM iam_roles WHERE name = ?", (name,)).rowcount == 0:
            return False
        tx.changed(TOPIC, name)
        return True


def get_role(store: Store, name: str) -> Role | None:
    row = store.query_one("SELECT name, policy, created_at FROM iam_roles WHERE name = ?", (name,))
    return Role(row[0], row[1], row[2]) if row else None


def list_roles(store: Store) -> list[Role]:
    rows = store.query("SELECT name, policy, created_at FROM iam_roles ORDER BY name")
    return [Role(r[0], r[1], r[2]) for r in rows]


def key_policy(store: Store, key_id: str) -> str | None:
    """The policy document of an access key, None for an administrator (or no such key)."""
    row = store.query_one("SELECT policy FROM key_policies WHERE access_key_id = ?", (key_id,))
    return row[0] if row else None


def _policies(document: str) -> tuple[Policy, ...]:
    try:
        return (parse(document),)
    except PolicyError:
        return ()  # a stored policy that no longer parses allows nothing


class Principals:
    """The principal of an access key for the request path, from memory until the store's
    revision moves (as :class:`dockyard.keys.SecretCache`)."""

    def __init__(self, store: Store, account: str) -> None:
        self._store = store
        self._account = account
        self._version = -1
        self._keys: dict[str, Principal | None] = {}
        self._roles: dict[str, Principal | None] = {}

    def _fresh(self) -> None:
        version = self._store.revision
        if version != self._version or len(self._keys) + len(self._roles) > 10_000:
            self._keys.clear()
            self._roles.clear()
            self._version = version

    def get(self, key_id: str) -> Principal | None:
        """The limited principal of ``key_id``; None for an administrator key. (The request
        path of every call: a dict lookup while the store does not change.)"""
        if self._store.revision != self._version:
            self._fresh()
        try:
            return self._keys[key_id]
        except KeyError:
            self._fresh()
            found = self._keys[key_id] = self._load(key_id)
            return found

    def role(self, name: str, session: str, key_id: str) -> Principal | None:
        """The principal of a session of role ``name`` (None: no such role)."""
        self._fresh()
        if name not in self._roles:
            self._roles[name] = self._load_role(name)
        role = self._roles[name]
        if role is None:
            return None
        arn = f"arn:aws:sts::{self._account}:assumed-role/{name}/{session}"
        return Principal(arn, session, key_id, role.policies, "AssumedRole")

    def _load_role(self, name: str) -> Principal | None:
        role = get_role(self._store, name)
        if role is None:
            return None
        return Principal(role_arn(self._account, name), name, "", _policies(role.policy), "AssumedRole")

    def _load(self, key_id: str) -> Principal | None:
        row = self._store.query_one(
            "SELECT k.name, p.policy FROM access_keys k JOIN key_policies p USING (access_key_id)"
            " WHERE k.access_key_id = ?",
            (key_id,),
        )
        if row is None:
            return None
        return Principal(user_arn(self._account, row[0]), row[0], key_id, _policies(row[1]))
