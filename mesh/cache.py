"""The snapshot cache: the newest snapshot of each node, and the watchers waiting on it.

The cache decides *what* a node should have; the transport (``mesh.server``) decides how to
ship it. ``set_snapshot(node, snapshot)`` replaces the node's snapshot and wakes every
watcher of that node (and only that node). ``watch(node, known)`` returns the node's
newest snapshot as soon as, for some type URL in ``known``, its version differs from the
version the watcher has; a watcher that is already behind returns at once. A snapshot that
is not consistent is refused (``ValueError``), so no dangling reference is ever shipped.

Like go-control-plane's ``SimpleCache``, it holds whole snapshots and keeps no history.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from mesh.snapshot import Snapshot


class SnapshotCache:
    def __init__(self) -> None:
        self._snapshots: dict[str, Snapshot] = {}
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}

    def set_snapshot(self, node: str, snapshot: Snapshot) -> None:
        """Store ``snapshot`` for ``node`` and wake its watchers; refuse an inconsistent one."""
        problems = snapshot.problems()
        if problems:
            raise ValueError(f"inconsistent snapshot for {node}: {'; '.join(problems)}")
        self._snapshots[node] = snapshot
        self._wake(node)

    def clear_snapshot(self, node: str) -> None:
        """Forget ``node``'s snapshot; its watchers keep waiting for a new one."""
        self._snapshots.pop(node, None)

    def get_snapshot(self, node: str) -> Snapshot | None:
        return self._snapshots.get(node)

    def nodes(self) -> list[str]:
        return sorted(self._snapshots)

    def _wake(self, node: str) -> None:
        for fut in self._waiters.pop(node, set()):
            if not fut.done():
                fut.set_result(None)

    @staticmethod
    def _differs(snapshot: Snapshot | None, known: Mapping[str, str]) -> bool:
        if snapshot is None:
            return False
        return any(snapshot.versions.get(t) != v for t, v in known.items())

    async def watch(self, node: str, known: Mapping[str, str]) -> Snapshot:
        """The newest snapshot of ``node`` once a type in ``known`` has another version.

        ``known`` maps type URL to the version the caller holds ("" for none). Cancelling the
        call removes the watcher.
        """
        while True:
            snapshot = self._snapshots.get(node)
            if self._differs(snapshot, known):
                return snapshot  # type: ignore[return-value]
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            waiters = self._waiters.setdefault(node, set())
            waiters.add(fut)
            try:
                await fut
            finally:
                waiters.discard(fut)

    def watcher_count(self, node: str) -> int:
        return len(self._waiters.get(node, ()))
