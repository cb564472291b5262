"""The discovery part: Cloud Map API, health checks, DNS and the watch."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from discovery.dns import DnsServer, refuse_all
from dockyard.store import Migration

if TYPE_CHECKING:
    from dockyard.platform import Platform

MIGRATIONS: list[Migration] = []


async def _dns(platform: Platform) -> AsyncIterator[None]:
    server = DnsServer(refuse_all, platform.config.host, platform.config.dns_port)
    await server.start()
    platform.endpoints.append(("dns", f"udp+tcp://{platform.config.address(server.port)}"))
    try:
        yield
    finally:
        await server.stop()


def install(platform: Platform) -> None:
    platform.contexts.append(_dns)
