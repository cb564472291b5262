"""Registry users, their per-repository-prefix permissions, and anonymous pull.

Pure parts (unit-tested without a store):

* :func:`hash_password` / :func:`verify_password`: scrypt, stored in PHC-like form
  ``$scrypt$ln=14,r=8,p=1$<salt>$<hash>`` (base64 without padding); verification is
  constant-time and tolerates any stored cost parameters.
* :func:`prefix_covers` and :func:`allowed_actions`: a grant on prefix ``shop`` or ``shop/``
  covers the repository ``shop`` and every repository below it (``shop/web``, ``shop/a/b``)
  but not ``shopping``; the prefix ``*`` covers every repository. The actions a user may take
  on a repository are the union of every covering grant's actions.

Store parts: ``registry_users``, ``registry_grants`` and ``registry_anonymous`` tables
(migration part ``registry_auth``) and small named read/write functions over them. The CLI
writes them directly (like ``dockyard keys``); the server reads them on every token request,
so a change takes effect with the next token (tokens live :data:`registry.auth.TOKEN_TTL`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from dockyard.store import Migration, Store

__all__ = [
    "ACTIONS",
    "MIGRATIONS",
    "User",
    "allowed_actions",
    "anonymous_prefixes",
    "create_user",
    "delete_user",
    "get_user",
    "grant",
    "hash_password",
    "list_users",
    "normalize_prefix",
    "parse_actions",
    "prefix_covers",
    "revoke",
    "set_anonymous_pull",
    "set_password",
    "validate_user_name",
    "verify_password",
]

MIGRATIONS = [
    Migration(
        "registry_auth",
        1,
        """
        CREATE TABLE registry_users (
            name TEXT PRIMARY KEY, password_hash TEXT NOT NULL,
            admin INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL);
        CREATE TABLE registry_grants (
            user TEXT NOT NULL REFERENCES registry_users (name) ON DELETE CASCADE,
            prefix TEXT NOT NULL, actions TEXT NOT NULL,
            PRIMARY KEY (user, prefix));
        CREATE TABLE registry_anonymous (prefix TEXT PRIMARY KEY, actions TEXT NOT NULL);
        """,
    )
]

# The repository actions a grant can hold, in the order they are printed.
ACTIONS = ("pull", "push", "delete")
ALL = "*"

_USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
_PREFIX = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")

# scrypt cost: N = 2**14, r = 8 uses 16 MiB and ~50 ms per hash (OWASP's minimum is N=2**17
# with r=8 p=1 or the equivalent N=2**14 r=8 p=5; we take p=5, run off the event loop).
_LN, _R, _P = 14, 8, 5
_MAXMEM = 64 * 1024 * 1024


class InvalidInput(ValueError):
    """A user name, prefix or action list is malformed (message is one line for the CLI)."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """A self-describing scrypt hash of ``password`` (a fresh random salt unless given)."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=2**_LN, r=_R, p=_P, maxmem=_MAXMEM, dklen=32
    )
    return f"$scrypt$ln={_LN},r={_R},p={_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches ``encoded`` (from :func:`hash_password`); a malformed
    ``encoded`` never matches."""
    try:
        _, scheme, params, salt, digest = encoded.split("$")
        if scheme != "scrypt":
            return False
        p = dict(kv.split("=", 1) for kv in params.split(","))
        ln, r, par = int(p["ln"]), int(p["r"]), int(p["p"])
        if not (1 <= ln <= 20 and 1 <= r <= 32 and 1 <= par <= 16):
            return False
        want = _unb64(digest)
        got = hashlib.scrypt(
            password.encode(), salt=_unb64(salt), n=2**ln, r=r, p=par, maxmem=256 * 1024 * 1024,
            dklen=len(want),
        )
    except (ValueError, KeyError):
        return False
    return hmac.compare_digest(got, want)


def validate_user_name(name: str) -> str:
    if not _USER_NAME.match(name or ""):
        raise InvalidInput(
            f"invalid user name {name!r}: letters, digits and . _ @ - (up to 128, no leading symbol)"
        )
    return name


def normalize_prefix(prefix: str) -> str:
    """The stored form of a repository prefix: ``*`` for all, else a repository name without
    a trailing ``/`` (``shop/`` -> ``shop``). Raises InvalidInput for anything else."""
    if prefix in (ALL, "", "/"):
        return ALL
    stripped = prefix.rstrip("/")
    if not _PREFIX.match(stripped):
        raise InvalidInput(
            f"invalid repository prefix {prefix!r} (a repository name, optionally ending in /)"
        )
    return stripped


def parse_actions(text: str) -> tuple[str, ...]:
    """``"pull,push"`` -> ``("pull", "push")`` in canonical order; ``*`` or ``all`` is every
    action. Raises InvalidInput for unknown actions or an empty list."""
    names = {a.strip().lower() for a in text.split(",") if a.strip()}
    if names & {"*", "all"}:
        return ACTIONS
    unknown = sorted(names - set(ACTIONS))
    if unknown or not names:
        raise InvalidInput(f"invalid actions {text!r}: a comma-separated list of {', '.join(ACTIONS)}")
    return tuple(a for a in ACTIONS if a in names)


def prefix_covers(prefix: str, repository: str) -> bool:
    """Whether a (normalised) grant prefix covers ``repository`` (see module docstring)."""
    return prefix == ALL or repository == prefix or repository.startswith(prefix + "/")


def allowed_actions(grants: Mapping[str, Iterable[str]], repository: str) -> set[str]:
    """The union of the actions of every grant (prefix -> actions) covering ``repository``."""
    out: set[str] = set()
    for prefix, actions in grants.items():
        if prefix_covers(prefix, repository):
            out.update(actions)
    return out


# -- store -------------------------------------------------------------------------------
@dataclass(frozen=True)
class User:
    name: str
    password_hash: str
    admin: bool
    created_at: float
    grants: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _grants(store: Store, name: str) -> dict[str, tuple[str, ...]]:
    rows = store.query("SELECT prefix, actions FROM registry_grants WHERE user = ? ORDER BY prefix", (name,))
    return {r[0]: tuple(r[1].split(",")) for r in rows}


def get_user(store: Store, name: str) -> User | None:
    row = store.query_one(
        "SELECT name, password_hash, admin, created_at FROM registry_users WHERE name = ?", (name,)
    )
    if row is None:
        return None
    return User(row[0], row[1], bool(row[2]), row[3], _grants(store, row[0]))


def list_users(store: Store) -> list[User]:
    names = [r[0] for r in store.query("SELECT name FROM registry_users ORDER BY name")]
    return [u for u in (get_user(store, n) for n in names) if u is not None]


async def create_user(
    store: Store,
    name: str,
    password: str,
    *,
    admin: bool = False,
    grants: Mapping[str, Iterable[str]] | None = None,
) -> User:
    """Create a user; raises InvalidInput if the name is taken or malformed or the password
    is empty."""
    validate_user_name(name)
    if not password:
        raise InvalidInput("the password must not be empty")
    hashed = hash_password(password)
    clean = {normalize_prefix(p): tuple(a) for p, a in (grants or {}).items()}
    async with store.transaction() as tx:
        if tx.query_one("SELECT 1 FROM registry_users WHERE name = ?", (name,)):
            raise InvalidInput(f"user {name} already exists")
        tx.execute(
            "INSERT INTO registry_users (name, password_hash, admin, created_at) VALUES (?,?,?,?)",
            (name, hashed, int(admin), time.time()),
        )
        for prefix, actions in clean.items():
            tx.execute(
                "INSERT INTO registry_grants (user, prefix, actions) VALUES (?,?,?)",
                (name, prefix, ",".join(actions)),
            )
        tx.changed("registry/user", name)
    user = get_user(store, name)
    assert user is not None
    return user


async def set_password(store: Store, name: str, password: str) -> bool:
    if not password:
        raise InvalidInput("the password must not be empty")
    hashed = hash_password(password)
    async with store.transaction() as tx:
        n = tx.execute("UPDATE registry_users SET password_hash = ? WHERE name = ?", (hashed, name)).rowcount
        if n:
            tx.changed("registry/user", name)
    return n > 0


async def delete_user(store: Store, name: str) -> bool:
    async with store.transaction() as tx:
        n = tx.execute("DELETE FROM registry_users WHERE name = ?", (name,)).rowcount
        if n:
            tx.changed("registry/user", name)
    return n > 0


async def grant(store: Store, name: str, prefix: str, actions: Iterable[str]) -> bool:
    """Set (replace) the actions of ``name`` on ``prefix``; False if there is no such user."""
    prefix = normalize_prefix(prefix)
    acts = ",".join(a for a in ACTIONS if a in set(actions))
    async with store.transaction() as tx:
        if not tx.query_one("SELECT 1 FROM registry_users WHERE name = ?", (name,)):
            return False
        tx.execute(
            "INSERT INTO registry_grants (user, prefix, actions) VALUES (?,?,?)"
            " ON CONFLICT (user, prefix) DO UPDATE SET actions = excluded.actions",
            (name, prefix, acts),
        )
        tx.changed("registry/user", name)
    return True


async def revoke(store: Store, name: str, prefix: str) -> bool:
    """Remove the grant of ``name`` on ``prefix``; False if there was none."""
    prefix = normalize_prefix(prefix)
    async with store.transaction() as tx:
        n = tx.execute("DELETE FROM registry_grants WHERE user = ? AND prefix = ?", (name, prefix)).rowcount
        if n:
            tx.changed("registry/user", name)
    return n > 0


def anonymous_prefixes(store: Store) -> list[str]:
    """The prefixes anyone may pull from without credentials."""
    return [r[0] for r in store.query("SELECT prefix FROM registry_anonymous ORDER BY prefix")]


async def set_anonymous_pull(store: Store, prefix: str, allowed: bool) -> bool:
    """Allow or stop anonymous pull under ``prefix``; True if that changed anything."""
    prefix = normalize_prefix(prefix)
    async with store.transaction() as tx:
        if allowed:
            n = tx.execute(
                "INSERT OR IGNORE INTO registry_anonymous (prefix, actions) VALUES (?, 'pull')", (prefix,)
            ).rowcount
        else:
            n = tx.execute("DELETE FROM registry_anonymous WHERE prefix = ?", (prefix,)).rowcount
        if n:
            tx.changed("registry/anonymous", prefix)
    return n > 0
