"""Short-lived credentials for task roles, kept nowhere (pure but for the key file).

A session is minted for a role and a task (:func:`mint`) and checked on every request
(:func:`secret` when the signature is verified, :func:`verify` when the call is authorized),
all from one server key (``<data-dir>/session.key``, 32 random bytes, mode 0600, apart from the
database), so no session secret is ever stored:

* the access key id is ``ASIA`` + base32(expiry, 4 bytes big-endian | 11 random bytes): it
  says when the session ends, and cannot be changed without changing its secret;
* the secret is HMAC-SHA256(key, ``secret|`` + key id), unknown without the server key;
* the session token is base64url(JSON ``{k: key id, r: role name, t: task ARN}``) + ``.`` +
  base64url(HMAC-SHA256(key, ``token|`` + that JSON)): it names the role whose policy applies.

A session is refused once its expiry has passed (the key id is then unknown, as for a
deleted key) or when its role is deleted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PREFIX", "Credentials", "Session", "load_key", "mint", "secret", "verify", "with_sessions"]

PREFIX = "ASIA"
KEY_FILE = "session.key"


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    token: str
    expires_at: float


@dataclass(frozen=True)
class Session:
    access_key_id: str
    role: str
    task_arn: str
    expires_at: float


def load_key(data_dir: str | Path) -> bytes:
    """The server's session key, made on first use (every process of one data dir shares it)."""
    path = Path(data_dir) / KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another process may be writing it right now
            data = path.read_bytes()
            if len(data) == 32:
                return data
            time.sleep(0.01)
        raise ValueError(f"{path}: not a session key") from None
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
        f.flush()
        os.fsync(f.fileno())
    return key


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode().rstrip("=")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def expiry(key_id: str) -> float | None:
    """When the session of ``key_id`` ends (None: not a session key id)."""
    if not key_id.startswith(PREFIX) or len(key_id) != len(PREFIX) + 24:
        return None
    try:
        raw = base64.b32decode(key_id[len(PREFIX):])
    except ValueError:
        return None
    return float(struct.unpack(">I", raw[:4])[0])


def secret(key: bytes, key_id: str, now: float | None = None) -> str | None:
    """The secret of a session key id, None when it is not one or has expired."""
    ends = expiry(key_id)
    if ends is None or (time.time() if now is None else now) >= ends:
        return None
    return _b64(_mac(key, "secret|" + key_id))


def mint(key: bytes, role: str, task_arn: str, seconds: float, now: float | None = None) -> Credentials:
    """New credentials for ``role`` on behalf of ``task_arn``, valid ``seconds``."""
    ends = int((time.time() if now is None else now) + seconds)
    key_id = PREFIX + _b32(struct.pack(">I", ends) + secrets.token_bytes(11))
    payload = json.dumps({"k": key_id, "r": role, "t": task_arn}, separators=(",", ":"))
    token = _b64(payload.encode()) + "." + _b64(_mac(key, "token|" + payload))
    sec = secret(key, key_id, now=ends - 1)
    assert sec is not None
    return Credentials(key_id, sec, token, float(ends))


def verify(key: bytes, key_id: str, token: str, now: float | None = None) -> Session | None:
    """The session ``token`` names, if it is the server's, belongs to ``key_id`` and has not
    expired; else None."""
    ends = expiry(key_id)
    if ends is None or (time.time() if now is None else now) >= ends:
        return None
    head, _, mac = token.partition(".")
    try:
        payload = _unb64(head).decode()
        ok = hmac.compare_digest(_unb64(mac), _mac(key, "token|" + payload))
        fields = json.loads(payload) if ok else None
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(fields, dict) or fields.get("k") != key_id:
        return None
    role, task = fields.get("r"), fields.get("t")
    if not isinstance(role, str) or not isinstance(task, str):
        return None
    return Session(key_id, role, task, ends)


def with_sessions(secret_for: Callable[[str], str | None], key: bytes) -> Callable[[str], str | None]:
    """``secret_for`` of access keys, answering session key ids (``ASIA...``) from ``key``."""

    def lookup(key_id: str) -> str | None:
        if key_id.startswith(PREFIX):
            return secret(key, key_id)
        return secret_for(key_id)

    return lookup
