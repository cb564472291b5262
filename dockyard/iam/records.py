"""Who signed a request, as IAM sees it: the principal behind an access key and its policies.

An access key with a row in ``key_policies`` (:mod:`dockyard.keys`) is limited to that
policy; a key without one (every key made before policies existed, and the admin key
``dockyard up`` creates) is an administrator: :meth:`Principals.get` answers None for it and
nothing is checked.
"""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.iam.policy import Policy, PolicyError, parse
from dockyard.store import Store

__all__ = ["Principal", "Principals", "key_policy", "user_arn"]


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
        self._known: dict[str, Principal | None] = {}

    def get(self, key_id: str) -> Principal | None:
        """The limited principal of ``key_id``; None for an administrator key."""
        version = self._store.revision
        if version != self._version:
            self._known.clear()
            self._version = version
        if key_id not in self._known:
            if len(self._known) > 10_000:
                self._known.clear()
            self._known[key_id] = self._load(key_id)
        return self._known[key_id]

    def _load(self, key_id: str) -> Principal | None:
        row = self._store.query_one(
            "SELECT k.name, p.policy FROM access_keys k JOIN key_policies p USING (access_key_id)"
            " WHERE k.access_key_id = ?",
            (key_id,),
        )
        if row is None:
            return None
        return Principal(user_arn(self._account, row[0]), row[0], key_id, _policies(row[1]))
