"""HTTP handlers of the OCI Distribution API, one module per resource.

:func:`dispatch` is the registry app's only route: it reads the path with
:func:`registry.routes.route`, checks the repository name, and calls the handler registered for
(resource, method) in the app's table (:func:`handlers`; a read-only registry's table has no
write methods, so a push or delete answers 405 ``UNSUPPORTED`` as Distribution's read-only mode
does). Handlers raise :class:`registry.errors.RegistryError`; the error middleware writes the body.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from registry import routes
from registry.errors import NAME_INVALID, NOT_FOUND, UNSUPPORTED, error_middleware
from registry.handlers import blobs, catalog, manifests, referrers, tags, uploads
from registry.handlers.base import API_VERSION, REGISTRY, Registry, base
from registry.reference import is_valid_name

__all__ = [
    "HANDLERS", "REGISTRY", "ROUTES", "Registry", "add_version_header", "dispatch", "handlers", "mount",
]

Handler = Callable[[web.Request, Registry, routes.Route], Awaitable[web.StreamResponse]]

READ_METHODS = frozenset({"GET", "HEAD"})

HANDLERS: dict[tuple[str, str], Handler] = {
    (routes.BASE, "GET"): base,
    (routes.BASE, "HEAD"): base,
    (routes.CATALOG, "GET"): catalog.list_repositories,
    (routes.TAGS, "GET"): tags.list_tags,
    (routes.MANIFEST, "GET"): manifests.get_manifest,
    (routes.MANIFEST, "HEAD"): manifests.get_manifest,
    (routes.MANIFEST, "PUT"): manifests.put_manifest,
    (routes.MANIFEST, "DELETE"): manifests.delete_manifest,
    (routes.BLOB, "GET"): blobs.get_blob,
    (routes.BLOB, "HEAD"): blobs.get_blob,
    (routes.BLOB, "DELETE"): blobs.delete_blob,
    (routes.UPLOADS, "POST"): uploads.start_upload,
    (routes.UPLOAD, "GET"): uploads.upload_status,
    (routes.UPLOAD, "PATCH"): uploads.patch_upload,
    (routes.UPLOAD, "PUT"): uploads.finish_upload,
    (routes.UPLOAD, "DELETE"): uploads.cancel_upload,
    (routes.REFERRERS, "GET"): referrers.list_referrers,
}


def handlers(read_only: bool = False) -> dict[tuple[str, str], Handler]:
    """The (resource, method) table a registry serves: all of it, or only reads."""
    return {key: h for key, h in HANDLERS.items() if not read_only or key[1] in READ_METHODS}


ROUTES = web.AppKey("registry_routes", dict)


async def dispatch(request: web.Request) -> web.StreamResponse:
    target = routes.route(request.path)
    if target is None:
        raise NOT_FOUND(detail=request.path)
    table = request.app.get(ROUTES, HANDLERS)
    handler = table.get((target.kind, request.method))
    if handler is None:
        if (target.kind, request.method) in HANDLERS:
            raise UNSUPPORTED(detail=f"{request.method} {target.kind}: the registry is read-only")
        raise UNSUPPORTED(detail=f"{request.method} {target.kind}")
    if target.kind not in (routes.BASE, routes.CATALOG) and not is_valid_name(target.name):
        raise NAME_INVALID(detail=target.name)
    return await handler(request, request.app[REGISTRY], target)


async def add_version_header(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare`` hook: every answer names the API version, errors included."""
    response.headers["Docker-Distribution-API-Version"] = API_VERSION


def mount(app: web.Application, registry: Registry) -> None:
    """Serve the OCI API of ``registry`` on ``app``: its layers under ``REGISTRY``, its table
    (read-only or not) under ``ROUTES``, the OCI error middleware (a middleware appended after
    it, such as auth, runs inside it), the version header and every ``/v2`` path."""
    app[REGISTRY] = registry
    app[ROUTES] = handlers(registry.read_only)
    app.middlewares.append(error_middleware)
    app.on_response_prepare.append(add_version_header)
    app.router.add_route("*", "/v2", dispatch)
    app.router.add_route("*", "/v2/{tail:.*}", dispatch)
