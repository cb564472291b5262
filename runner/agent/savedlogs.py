"""Container logs kept in the data dir once Docker no longer has them.

A task whose task-scoped Docker volumes are removed at its stop must lose its containers
first (Docker keeps a volume while any container uses it), and with them their logs. The
worker therefore saves each container's last :data:`MAX_LOG_LINES` lines here
before removing it; ``GetTaskLogs`` (``dockyard logs``) reads the saved copy, and the
supervisor deletes it with the task when the task expires (``runner.tasks.RETENTION``).

Layout: ``<data-dir>/runner/logs/<task id>/<container name>.log`` (container names are
``[A-Za-z0-9_-]``, task ids hex, so both are safe file names).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["MAX_LOG_LINES", "read", "remove", "save", "task_dir"]

MAX_LOG_LINES = 10_000  # the most lines GetTaskLogs returns, and what is saved per container


def task_dir(data_dir: str | Path, task_id: str) -> Path:
    return Path(data_dir) / "runner" / "logs" / task_id


def save(data_dir: str | Path, task_id: str, container: str, data: bytes) -> None:
    """Write ``data`` as the container's saved log (atomically: a reader sees all or none)."""
    d = task_dir(data_dir, task_id)
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f".{container}.log.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, d / f"{container}.log")


def read(data_dir: str | Path, task_id: str, container: str, tail: int) -> bytes | None:
    """The last ``tail`` lines of the saved log, or None when none was saved."""
    try:
        data = (task_dir(data_dir, task_id) / f"{container}.log").read_bytes()
    except FileNotFoundError:
        return None
    return b"".join(data.splitlines(keepends=True)[-tail:])


def remove(data_dir: str | Path, task_id: str) -> None:
    shutil.rmtree(task_dir(data_dir, task_id), ignore_errors=True)
