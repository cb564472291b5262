"""Files the platform and its parts write whole: atomically, synced, with a mode."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(path: Path, data: bytes, mode: int, *, replace: bool = True) -> bool:
    """Write ``data`` to ``path`` (created with ``mode``) through a synced temporary file, so
    that a crash leaves the old file or the new one, never a part. With ``replace=False`` an
    existing ``path`` is kept (and False returned): of processes racing to create it, one wins
    and all then read the same file."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        tmp.unlink(missing_ok=True)
