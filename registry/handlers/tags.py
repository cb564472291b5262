"""``GET /v2/<name>/tags/list`` with ``n``/``last`` pagination and a ``Link`` to the next page."""

from __future__ import annotations

from aiohttp import web

from registry.errors import NAME_UNKNOWN, PAGINATION_NUMBER_INVALID
from registry.handlers.base import Registry
from registry.pagination import PageError, next_link, parse_n
from registry.routes import Route

__all__ = ["list_tags", "page_args"]


def page_args(request: web.Request) -> tuple[int | None, str | None]:
    try:
        n = parse_n(request.query.get("n"))
    except PageError as exc:
        raise PAGINATION_NUMBER_INVALID(detail=str(exc)) from None
    return n, request.query.get("last") or None


def paged(request: web.Request, key: str, items: list[str], n: int | None, extra: dict) -> web.Response:
    """A JSON page of at most ``n`` of ``items`` (fetched n+1 to know if more follow)."""
    headers = {}
    if n is not None and len(items) > n:
        items = items[:n]
        if items:
            headers["Link"] = next_link(request.path, n, items[-1])
    return web.json_response({**extra, key: items}, headers=headers)


async def list_tags(request: web.Request, registry: Registry, target: Route) -> web.Response:
    n, last = page_args(request)
    if not registry.meta.repository_exists(target.name):
        raise NAME_UNKNOWN(detail=target.name)
    tags = registry.meta.tags(target.name, last, None if n is None else n + 1)
    return paged(request, "tags", tags, n, {"name": target.name})
