"""The registry credential other parts pull with (the runner's ``PullAuth`` seam).

A registry user of its own, ``dockyard-runner``, with pull on every repository, made through
:mod:`registry.users` on first use; its password lives only in the state store (table
``registry_pull_credential``, migration part ``registry_pull``), sealed
(:mod:`dockyard.sealed`: Docker is handed the password itself, so it cannot be a hash). If the
user exists but the stored password is gone or cannot be opened (the secrets key changed), or
the reverse, a new password is set.
"""

from __future__ import annotations

import secrets

from dockyard import sealed
from dockyard.store import Migration, Store
from registry import users

__all__ = ["MIGRATIONS", "PULL_USER", "PullCredentials"]

PULL_USER = "dockyard-runner"
_TABLE = "registry_pull_credential"

MIGRATIONS = [
    Migration(
        "registry_pull",
        1,
        """
        CREATE TABLE registry_pull_credential (username TEXT PRIMARY KEY, password TEXT NOT NULL);
        """,
    ),
    Migration("registry_pull", 2, "", step=sealed.seal_column(_TABLE, "username", "password")),
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
            try:
                password = self.store.unseal(row["password"], _TABLE, "password", self.user)
            except sealed.SealError:
                pass  # sealed under another key: set a new password below
            else:
                return {"username": row["username"], "password": password}
        password = secrets.token_urlsafe(24)
        if user is None:
            await users.create_user(self.store, self.user, password, grants={"*": ["pull"]})
        else:
            await users.set_password(self.store, self.user, password)
        async with self.store.transaction() as tx:
            tx.execute(
                "INSERT OR REPLACE INTO registry_pull_credential (username, password) VALUES (?, ?)",
                (self.user, self.store.seal(password, _TABLE, "password", self.user)),
            )
        return {"username": self.user, "password": password}
