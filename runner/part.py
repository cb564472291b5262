"""The runner part: ECS's API over the Docker Engine."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dockyard.aws.protocol import ECS, Call
from runner import clusters

if TYPE_CHECKING:
    from dockyard.platform import Platform

MIGRATIONS = [*clusters.MIGRATIONS]


def install(platform: Platform) -> None:
    store, config = platform.store, platform.config

    def bind(fn: Any) -> Any:
        async def handler(call: Call, params: dict[str, Any]) -> dict[str, Any]:
            return await fn(store, config, params)

        return handler

    for name, fn in (
        ("CreateCluster", clusters.create),
        ("DescribeClusters", clusters.describe),
        ("ListClusters", clusters.list_),
        ("DeleteCluster", clusters.delete),
    ):
        platform.ops.add(ECS, name, bind(fn))
