"""The mesh part: the xDS (gRPC ADS, state of the world) control plane on the xDS port.

The port serves ``mesh.server.AdsServer`` over an empty ``SnapshotCache``: nothing yet
computes snapshots from the platform's state (Service Connect and App Mesh come later), so an
Envoy that connects is answered nothing until its node gets a snapshot.

App Mesh's API (:mod:`mesh.appmesh`: meshes, virtual nodes and services, virtual routers,
routes, tags) is served on the control port, its state in
the part's ``am_*`` tables (:mod:`mesh.data`), each write published as a ``mesh/...`` change.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc

from mesh import appmesh
from mesh.cache import SnapshotCache
from mesh.data import MIGRATIONS
from mesh.server import AdsServer, add_to_server

if TYPE_CHECKING:
    from dockyard.platform import Platform

__all__ = ["MIGRATIONS", "install"]


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


def install_appmesh(platform: Platform) -> None:
    """App Mesh's operations (a seam the protocol tests' stubs replace)."""
    appmesh.install(platform)


def install(platform: Platform) -> None:
    install_appmesh(platform)
    platform.contexts.append(_serve)
