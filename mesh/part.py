"""The mesh part: the xDS (gRPC ADS, state of the world) control plane on the xDS port.

The port serves ``mesh.server.AdsServer`` over an empty ``SnapshotCache``: nothing yet
computes snapshots from the platform's state (Service Connect and App Mesh come later), so an
Envoy that connects is answered nothing until its node gets a snapshot.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc

from dockyard.store import Migration
from mesh.cache import SnapshotCache
from mesh.server import AdsServer, add_to_server

if TYPE_CHECKING:
    from dockyard.platform import Platform

MIGRATIONS: list[Migration] = []


async def _serve(platform: Platform) -> AsyncIterator[None]:
    server = grpc.aio.server()
    add_to_server(server, AdsServer(SnapshotCache()))
    addr = platform.config.address(platform.config.xds_port)
    port = server.add_insecure_port(addr)
    await server.start()
    platform.endpoints.append(("xds", f"grpc://{platform.config.address(port)}"))
    try:
        yield
    finally:
        await server.stop(grace=1)


def install(platform: Platform) -> None:
    platform.contexts.append(_serve)
