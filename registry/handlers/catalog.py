"""``GET /v2/_catalog``: repositories, with the same pagination as ``tags/list``."""

from __future__ import annotations

from aiohttp import web

from registry.handlers.base import Registry
from registry.handlers.tags import page_args, paged
from registry.routes import Route

__all__ = ["list_repositories"]


async def list_repositories(request: web.Request, registry: Registry, target: Route) -> web.Response:
    n, last = page_args(request)
    names = registry.meta.repositories(last, None if n is None else n + 1)
    return paged(request, "repositories", names, n, {})
