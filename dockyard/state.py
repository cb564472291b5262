"""Which state store a process opens: SQLite (a file path) or PostgreSQL (a ``postgresql://``
URL), both behind :class:`dockyard.store.Store`'s interface (docs/scaling.md)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from dockyard import sealed
from dockyard.store import Migration, Store

__all__ = ["connect", "is_url", "open_state"]


def is_url(target: str | Path) -> bool:
    """Whether a state target is a database URL (``postgresql://``) rather than a file path."""
    return "://" in str(target)


def open_state(
    target: str | Path, migrations: Iterable[Migration] = (), key_file: str | Path | None = None
) -> Store:
    """Open the state store at ``target``, with pending migrations applied. Raises ValueError
    for a malformed URL and :class:`dockyard.store.StoreUnavailable` for a server that refuses
    or cannot be reached, each naming what is wrong."""
    if not is_url(target):
        return Store.open(target, migrations, key_file=key_file)
    from dockyard.pgstore import PostgresStore  # psycopg is loaded only for PostgreSQL

    return PostgresStore.open_url(str(target), migrations, key_file=key_file or sealed.KEY_FILE)


def connect(target: str | Path, key_file: str | Path | None = None) -> Store:
    """The store at ``target`` without migrating (a process beside the one that migrated)."""
    if not is_url(target):
        return Store(str(target), key_file=key_file)
    from dockyard.pgstore import PostgresStore

    return PostgresStore(str(target), key_file or sealed.KEY_FILE)
