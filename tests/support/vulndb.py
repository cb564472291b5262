"""Where the real advisory data is: the ``vulndb`` folder beside the repository (``../shared/vulndb``),
else ``/work/shared/vulndb`` (a clone elsewhere on the same machine), else ``$DOCKYARD_VULNDB_DIR``.

The tests that read it need it (a skip fails the suite anyway): :func:`shared_vulndb` says where
it looked when it is missing."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["shared_vulndb"]

_REPO = Path(__file__).resolve().parents[2]


def shared_vulndb() -> Path:
    candidates = [Path(p) for p in (os.environ.get("DOCKYARD_VULNDB_DIR"),) if p]
    candidates += [_REPO.parent / "shared" / "vulndb", Path("/work/shared/vulndb")]
    for path in candidates:
        if path.is_dir():
            return path
    raise FileNotFoundError(f"no advisory data: looked in {', '.join(map(str, candidates))}")
