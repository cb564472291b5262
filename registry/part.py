"""The registry part: the OCI Distribution API on the registry port."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from dockyard.store import Migration
from registry import users

if TYPE_CHECKING:
    from dockyard.platform import Platform

MIGRATIONS: list[Migration] = [*users.MIGRATIONS]


async def base(request: web.Request) -> web.Response:
    return web.json_response({}, headers={"Docker-Distribution-API-Version": "registry/2.0"})


def install(platform: Platform) -> None:
    platform.registry.router.add_get("/v2/", base)
