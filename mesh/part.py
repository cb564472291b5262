"""The mesh part: the xDS (gRPC ADS) control plane on the xDS port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc

from dockyard.store import Migration

if TYPE_CHECKING:
    from dockyard.platform import Platform

MIGRATIONS: list[Migration] = []


async def _serve(platform: Platform) -> AsyncIterator[None]:
    server = grpc.aio.server()
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
