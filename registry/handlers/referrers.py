"""``GET /v2/<name>/referrers/<digest>``: an OCI index of the manifests whose subject it is."""

from __future__ import annotations

import json

from aiohttp import web

from registry.handlers.base import Registry, require_digest
from registry.manifest import OCI_INDEX
from registry.routes import Route

__all__ = ["list_referrers"]


async def list_referrers(request: web.Request, registry: Registry, target: Route) -> web.Response:
    digest = require_digest(target.reference)
    artifact_type = request.query.get("artifactType")
    manifests = registry.meta.referrers(target.name, str(digest), artifact_type)
    headers = {"Content-Type": OCI_INDEX}
    if artifact_type is not None:
        headers["OCI-Filters-Applied"] = "artifactType"
    body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
    return web.Response(body=json.dumps(body).encode(), headers=headers)
