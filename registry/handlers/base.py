"""What every handler shares: the registry's parts, the base route, and small checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from registry.errors import DIGEST_INVALID
from registry.metadata import Metadata
from registry.reference import Digest, parse_digest
from registry.routes import Route
from registry.storage.driver import FilesystemDriver
from registry.storage.uploads import Uploads

__all__ = ["API_VERSION", "MAY_READ", "REGISTRY", "Registry", "base", "may_read", "require_digest"]

API_VERSION = "registry/2.0"

# Set by an auth middleware on the request: ``request[MAY_READ](repository) -> bool`` says whether
# the caller may pull from another repository (cross-repository and automatic mounts). Without
# it every repository is readable.
MAY_READ = "registry.may_read"


@dataclass
class Registry:
    """The registry's layers, reachable from every handler as ``request.app[REGISTRY]``."""

    meta: Metadata
    driver: FilesystemDriver
    uploads: Uploads


REGISTRY = web.AppKey("registry", Registry)


def may_read(request: web.Request, repository: str) -> bool:
    check: Callable[[str], bool] | None = request.get(MAY_READ)
    return True if check is None else check(repository)


def require_digest(value: str | None) -> Digest:
    """The digest ``value`` names; raises 400 DIGEST_INVALID when missing or malformed."""
    digest = parse_digest(value) if value else None
    if digest is None:
        raise DIGEST_INVALID(detail=value, message="invalid digest")
    return digest


def location(*parts: str) -> str:
    return "/v2/" + "/".join(parts)


async def base(request: web.Request, registry: Registry, target: Route) -> web.Response:
    return web.json_response({})
