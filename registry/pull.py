"""The registry credential other parts pull with (the runner's ``PullAuth`` seam).

A registry user of its own, ``dockyard-runner``, with pull on every repository, made through
:mod:`registry.users` on first use; its password lives only in the state store (table
``registry_pull_credential``, migration part ``registry_pull``). If the user exists but the
stored password is gone (or the reverse), a new password is set.
"""

from __future__ import annotations

import secrets

from dockyard.store import Migration, Store
from registry import users

__all__ = ["MIGRATIONS", "PULL_USER", "PullCredentials"]

PULL_USER = "dockyard-runner"

MIGRATIONS = [
    Migration(
        "registry_pull",
        1,
        """
        CREATE TABLE registry_pull_credential (username TEXT PRIMARY KEY, password TEXT NOT NULL);
        """,
    ),
]


class PullCredentials:
    """``await PullCredentials(store)()`` -> Docker ``auth_config`` ``{"username", "password"}``."""

    def __init__(self, store: Store, user: str = PULL_USER) -> None:
        self.store = store
        self.user = user

    async def __call__(self) -> dict[str, str] | None:
        row = self.store.query_one(
            "SELECT username, password FROM registry_pull_credential WHERE username = ?", (self.user,)
        )
        user = users.get_user(self.store, self.user)
        if row is not None and user is not None:
            return {"username": row["username"], "password": row["password"]}
        password = secrets.token_urlsafe(24)
        if user is None:
            await users.create_user(self.store, self.user, password, grants={"*": ["pull"]})
        else:
            await users.set_password(self.store, self.user, password)
        async with self.store.transaction() as tx:
            tx.execute(
                "INSERT OR REPLACE INTO registry_pull_credential (username, password) VALUES (?, ?)",
                (self.user, password),
            )
        return {"username": self.user, "password": password}
