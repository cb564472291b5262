"""Dockyard's secret store: named values that task definitions reference from ``secrets``.

Reference forms accepted in a container's ``secrets[].valueFrom`` (and in
``logConfiguration.secretOptions`` and ``environmentFiles[].value``):

* ``dockyard:secret:NAME``: Dockyard's own form.
* ``arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME``: Secrets Manager's ARN form, so a task
  definition written for AWS works unchanged when a secret of that NAME is stored here.
* ``arn:aws:ssm:REGION:ACCOUNT:parameter/NAME``: SSM Parameter Store's ARN form (NAME may hold
  ``/``; a leading ``/`` is kept off).

All three resolve to the one secret NAME (1 to 512 characters of ``A-Za-z0-9/_+=.@-``) in
this store. Values are strings of at most 64 KiB, kept sealed in the state store (table
``secrets``, :mod:`dockyard.sealed`); they never appear in any API response.

An environment file referenced as ``dockyard:secret:NAME`` is a secret whose value holds
``KEY=VALUE`` lines (``#`` comments and blank lines ignored), as ECS reads S3 env files.

Contract for the agent: :func:`resolve` maps a container's secret references to values,
raising :class:`SecretNotFound` (naming the first missing secret) when one is absent; the
agent then stops the task with ``stoppedReason`` "ResourceInitializationError: ...".
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from dockyard import sealed
from dockyard.store import Migration, Store
from runner import data

__all__ = [
    "MAX_VALUE",
    "SecretNotFound",
    "delete",
    "get",
    "list_names",
    "parse_env_file",
    "parse_reference",
    "put",
    "resolve",
    "resolve_environment_files",
]

MIGRATIONS = [
    Migration(
        "runner_secrets",
        1,
        """
        CREATE TABLE secrets (
            name TEXT PRIMARY KEY, value TEXT NOT NULL,
            created_at REAL NOT NULL, updated_at REAL NOT NULL);
        """,
    ),
    # values are stored sealed (dockyard.sealed); this seals an older store's plaintext ones
    Migration("runner_secrets", 2, "", step=sealed.seal_column("secrets", "name", "value")),
]

TOPIC = data.SECRET_TOPIC
MAX_VALUE = 64 * 1024
_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
_FORMS = [
    re.compile(r"^dockyard:secret:(?P<name>.+)$"),
    re.compile(r"^arn:aws:secretsmanager:[^:]*:[^:]*:secret:(?P<name>[^:]+)(?::[^:]*){0,3}$"),
    re.compile(r"^arn:aws:ssm:[^:]*:[^:]*:parameter/?(?P<name>.+)$"),
]


class SecretNotFound(LookupError):
    """A referenced secret is not in the store; ``name`` says which."""

    def __init__(self, name: str) -> None:
        super().__init__(f"secret {name!r} is not in Dockyard's secret store")
        self.name = name


def valid_name(name: str) -> bool:
    return bool(_NAME.match(name))


def parse_reference(value_from: str) -> str | None:
    """The secret NAME a ``valueFrom`` reference names, or ``None`` if it is not a valid one."""
    for form in _FORMS:
        m = form.match(value_from)
        if m and valid_name(m.group("name")):
            return m.group("name")
    return None


def parse_env_file(text: str) -> list[tuple[str, str]]:
    """``KEY=VALUE`` lines as ECS env files hold them, in order; other lines are ignored."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        if key.strip():
            out.append((key.strip(), value))
    return out


# -- the store --------------------------------------------------------------------------------
async def put(store: Store, name: str, value: str) -> bool:
    """Create or replace a secret; returns True if it was new."""
    if not valid_name(name):
        raise ValueError(f"invalid secret name {name!r}: use 1 to 512 of A-Za-z0-9/_+=.@-")
    if len(value.encode()) > MAX_VALUE:
        raise ValueError(f"secret value exceeds {MAX_VALUE} bytes")
    async with store.transaction() as tx:
        # stored sealed (dockyard.sealed): data.put_secret writes what it is given
        return data.put_secret(tx, name, store.seal(value, "secrets", "value", name))


async def delete(store: Store, name: str) -> bool:
    """Delete a secret; returns False if there was none."""
    async with store.transaction() as tx:
        return data.delete_secret(tx, name)


def list_names(store: Store) -> list[data.SecretInfo]:
    """Every secret's name, created_at and updated_at (never its value), sorted by name."""
    return data.secret_infos(store)


def get(store: Store, name: str) -> str:
    value = data.secret_value(store, name)
    if value is None:
        raise SecretNotFound(name)
    try:
        return store.unseal(value, "secrets", "value", name)
    except sealed.SealError:  # sealed under another secrets key: as good as missing
        raise SecretNotFound(name) from None


def resolve(store: Store, refs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """``(env name, valueFrom)`` pairs (a container's ``secrets``) to ``{env name: value}``.

    Raises :class:`SecretNotFound` for the first reference whose secret is missing (or whose
    ``valueFrom`` is not a reference at all)."""
    out = {}
    for env_name, value_from in refs:
        name = parse_reference(value_from)
        if name is None:
            raise SecretNotFound(value_from)
        out[env_name] = get(store, name)
    return out


def resolve_environment_files(store: Store, values: Iterable[str]) -> list[tuple[str, str]]:
    """The variables of environment files stored as secrets, in order (later files win when
    the caller builds a dict). Raises :class:`SecretNotFound` like :func:`resolve`."""
    out: list[tuple[str, str]] = []
    for value in values:
        name = parse_reference(value)
        if name is None:
            raise SecretNotFound(value)
        out.extend(parse_env_file(get(store, name)))
    return out
