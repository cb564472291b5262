"""Where a running server listens, recorded in its data dir for the CLI to find.

``dockyard up`` writes ``<data-dir>/endpoints.json`` once its listeners are up and removes it
when it stops cleanly::

    {"pid": 1234,
     "endpoints": {"registry": "http://127.0.0.1:5000/v2/", "control": "http://127.0.0.1:8080/", ...}}

A server killed with SIGKILL leaves the file behind: :func:`read` ignores a file whose pid is
not a live process, so a stale file never points the CLI at a dead server's ports.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["FILE", "loopback", "read", "remove", "write"]

FILE = "endpoints.json"


def write(data_dir: str, endpoints: list[tuple[str, str]], pid: int | None = None) -> Path:
    """Record ``endpoints`` (name, URL) with this process's pid (atomically)."""
    path = Path(data_dir) / FILE
    tmp = path.with_suffix(".tmp")
    body = {"pid": pid or os.getpid(), "endpoints": dict(endpoints)}
    tmp.write_text(json.dumps(body, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def remove(data_dir: str, pid: int | None = None) -> None:
    """Remove the record if it is this process's (``pid``)."""
    path = Path(data_dir) / FILE
    found = _load(path)
    if found is not None and found.get("pid") == (pid or os.getpid()):
        path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _load(path: Path) -> dict[str, Any] | None:
    try:
        body = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(body, dict) or not isinstance(body.get("endpoints"), dict):
        return None
    return body


def read(data_dir: str) -> dict[str, Any] | None:
    """``{"pid": ..., "endpoints": {...}}`` of the live server of ``data_dir``, or None."""
    body = _load(Path(data_dir) / FILE)
    if body is None or not isinstance(body.get("pid"), int) or not _alive(body["pid"]):
        return None
    return body


def loopback(url: str) -> str:
    """A URL a local client can connect to: a wildcard listen address becomes loopback."""
    for wildcard, local in (("//0.0.0.0:", "//127.0.0.1:"), ("//[::]:", "//[::1]:")):
        url = url.replace(wildcard, local, 1)
    return url
