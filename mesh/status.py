"""``DockyardMesh.GetMeshStatus`` and ``DockyardMesh.ListMeshNacks``: what each sidecar holds.

Dockyard's own JSON 1.1 target ``DockyardMesh`` (no AWS model; signed like every other
call, IAM actions ``dockyard:GetMeshStatus`` and ``dockyard:ListMeshNacks``). Both run in the
main process, which holds the xDS streams (they are registered as writes, so control workers
forward them)::

    GetMeshStatus {} -> {"Sidecars": [{"Node": "<task ARN>", "Meshed": true, "Connected": true,
        "Transport": "sotw" | "delta" | "", "Ready": true,
        "Snapshot": {"CDS": "<version>", "EDS": ..., "LDS": ..., "RDS": ...},
        "Acked": {"CDS": "<version>" | "", ...},
        "LastNack": null | {"Node", "TypeUrl", "Version", "ErrorDetail", "At"},
        "ResourcesSent": {"CDS": n, ...} (delta streams: resources sent on the newest stream) | {}}, ...]}
    ListMeshNacks {"Node": "<task ARN>" (optional), "MaxResults": 1..1000 (default 100)}
        -> {"Nacks": [{"Node", "TypeUrl", "Version", "ErrorDetail", "At"}, ...]}  (newest first)

A sidecar is every node that is meshed (a client of the desired mesh), connected now, or holds
a snapshot. ``LastNack`` comes from the store, so it survives a restart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from dockyard.aws.errors import InvalidParameterException
from dockyard.aws.protocol import Call
from mesh.data import NACKS_KEPT, Data, NackRecord
from mesh.delta import DeltaStream
from mesh.server import AdsServer, acked
from mesh.snapshot import CLUSTER, ENDPOINT, LISTENER, ROUTE, Snapshot
from mesh.stream import AdsStream

__all__ = ["SERVICE", "TYPE_NAMES", "Status", "sidecar_rows"]

SERVICE = "DockyardMesh"
TYPE_NAMES = {CLUSTER: "CDS", ENDPOINT: "EDS", LISTENER: "LDS", ROUTE: "RDS"}


def sidecar_rows(
    meshed: Iterable[str],
    streams: Iterable[AdsStream | DeltaStream],
    snapshots: Mapping[str, Snapshot],
    last_nacks: Mapping[str, NackRecord],
) -> list[dict[str, Any]]:
    """One row per sidecar, by node (pure): the meshed tasks' and every connected node's (a
    snapshot kept for a node that is neither, such as the edge's before its Envoy runs, is not
    a sidecar)."""
    meshed = set(meshed)
    by_node: dict[str, list[AdsStream | DeltaStream]] = {}
    for s in streams:
        if s.node:
            by_node.setdefault(s.node, []).append(s)
    rows = []
    for node in sorted(meshed | set(by_node)):
        snapshot = snapshots.get(node)
        mine = by_node.get(node, [])
        newest = mine[-1] if mine else None
        nack = last_nacks.get(node)
        rows.append(
            {
                "Node": node,
                "Meshed": node in meshed,
                "Connected": bool(mine),
                "Transport": "" if newest is None else "delta" if isinstance(newest, DeltaStream) else "sotw",
                "Ready": any(acked(s, snapshot) for s in mine),
                "Snapshot": {n: snapshot.versions[t] for t, n in TYPE_NAMES.items()} if snapshot else {},
                "Acked": {
                    n: (newest.types[t].acked_version if newest is not None and t in newest.types else "")
                    for t, n in TYPE_NAMES.items()
                },
                "LastNack": nack.as_json() if nack is not None else None,
                "ResourcesSent": (
                    {n: newest.resources_sent[t] for t, n in TYPE_NAMES.items()}
                    if isinstance(newest, DeltaStream) else {}
                ),
            }
        )
    return rows


class Status:
    """The two operations over one platform's xDS server, snapshot cache and NACK table."""

    def __init__(self, ads: AdsServer, data: Data, meshed: Callable[[], Iterable[str]]) -> None:
        self.ads = ads
        self.data = data
        self.meshed = meshed

    async def get_status(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        cache = self.ads.cache
        snapshots = {n: s for n in cache.nodes() if (s := cache.get_snapshot(n)) is not None}
        return {
            "Sidecars": sidecar_rows(self.meshed(), list(self.ads.streams), snapshots, self.data.last_nacks())
        }

    async def list_nacks(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        node = params.get("Node")
        if node is not None and not isinstance(node, str):
            raise InvalidParameterException("Node must be a string (a task ARN).")
        limit = params.get("MaxResults", 100)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= NACKS_KEPT:
            raise InvalidParameterException(f"MaxResults must be an integer from 1 to {NACKS_KEPT}.")
        return {"Nacks": [n.as_json() for n in self.data.nacks(node, limit)]}

    def operations(self) -> dict[str, Any]:
        return {"GetMeshStatus": self.get_status, "ListMeshNacks": self.list_nacks}
