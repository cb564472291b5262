"""Secrets at rest: values the store must keep but never hold in plaintext.

A :class:`Sealer` encrypts a value with AES-256-GCM (``cryptography``) under a key kept in its
own file, apart from the database: by default ``<data dir>/secrets.key`` (mode 0600, created on
first use, never over a key another process wrote first), or the file the ``secrets_key_file``
setting names (a path elsewhere, on another volume or a secrets mount). A copy of ``state.db``
alone, a backup or a leaked volume snapshot without the key file, reveals no secret.

Stored form: ``sealed:v1:`` + base64url(12-byte nonce + ciphertext + tag). Each value is sealed
for a *context* (its table, column and row key, as associated data), so a sealed value copied
into another row does not open there.

Contracts:

* :meth:`Sealer.seal` -> a sealed string; :meth:`Sealer.open` -> the plaintext. ``open`` of a
  string that is not sealed returns it unchanged (a legacy row an older version wrote, before
  the migration of :func:`seal_column` has run); of a sealed string it cannot open (another
  key, another context, altered bytes) it raises :class:`SealError`.
* :func:`seal_column` makes a migration step that seals every plaintext value of one column
  (an existing store is migrated once, on its first start with this version).
"""

from __future__ import annotations

import base64
import binascii
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dockyard.files import write_atomic

__all__ = ["KEY_FILE", "PREFIX", "SealError", "Sealer", "context", "is_sealed", "seal_column"]

KEY_FILE = "secrets.key"
PREFIX = "sealed:v1:"
_KEY_BYTES = 32
_NONCE = 12


class SealError(ValueError):
    """A sealed value cannot be opened: the key file is not the one it was sealed with, or the
    value was altered or moved to another row."""


def is_sealed(text: str) -> bool:
    return text.startswith(PREFIX)


class Sealer:
    """Seals and opens values under one 256-bit key (module docstring)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != _KEY_BYTES:
            raise ValueError("a sealing key is 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def load_or_create(cls, path: Path) -> Sealer:
        """The key in ``path`` (base64 of 32 bytes), created with mode 0600 if there is none."""
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            key = os.urandom(_KEY_BYTES)
            if write_atomic(path, base64.b64encode(key) + b"\n", 0o600, replace=False):
                return cls(key)
        try:
            key = base64.b64decode(path.read_bytes().strip(), validate=True)
        except binascii.Error:
            raise SealError(f"{path} is not a Dockyard secrets key") from None
        if len(key) != _KEY_BYTES:
            raise SealError(f"{path} is not a Dockyard secrets key")
        return cls(key)

    def seal(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, stored: str, context: str) -> str:
        if not is_sealed(stored):
            return stored
        try:
            raw = base64.urlsafe_b64decode(stored[len(PREFIX):])
            return self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], context.encode()).decode()
        except (binascii.Error, ValueError, InvalidTag):
            raise SealError(f"cannot open the sealed value of {context}: wrong secrets key?") from None


def seal_column(table: str, key_column: str, column: str) -> Callable[[sqlite3.Connection, Sealer], None]:
    """A migration step (``Migration.step``) that seals every plaintext ``column`` of ``table``,
    each for the context ``table.column:<key_column's value>`` (what the owner seals with)."""

    def step(conn: sqlite3.Connection, sealer: Sealer) -> None:
        rows = conn.execute(f"SELECT {key_column}, {column} FROM {table}").fetchall()
        for key, value in rows:
            if not is_sealed(value):
                conn.execute(
                    f"UPDATE {table} SET {column} = ? WHERE {key_column} = ?",
                    (sealer.seal(value, context(table, column, key)), key),
                )

    return step


def context(table: str, column: str, key: str) -> str:
    """The associated data a value of ``table.column`` in the row ``key`` is sealed for."""
    return f"{table}.{column}:{key}"
