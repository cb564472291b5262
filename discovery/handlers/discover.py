"""DiscoverInstances and DiscoverInstancesRevision, answered from the index.

The benchmarked path (bench/discovery.py): no SQL, and when the answer is not a random sample
its serialised body is cached until the service's revision changes.
"""

from __future__ import annotations

import json
from typing import Any

from discovery import model
from discovery.errors import InvalidInput, NamespaceNotFound, ServiceNotFound
from discovery.handlers.base import Context
from discovery.model import Service, integer, text
from dockyard.aws.protocol import Call

DISCOVER_CACHE_SIZE = 4096
_STATUSES = ("HEALTHY", "UNHEALTHY", "ALL", "HEALTHY_OR_ELSE_ALL")


def _target(ctx: Context, params: dict[str, Any]) -> Service:
    ns_name = text(params, "NamespaceName", required=True)
    srv_name = text(params, "ServiceName", required=True, maximum=127)
    index = ctx.catalog.index
    if index.namespace_named(ns_name) is None:  # type: ignore[arg-type]
        raise NamespaceNotFound(f"Namespace not found: {ns_name}")
    srv = index.service_named(ns_name, srv_name)  # type: ignore[arg-type]
    if srv is None:
        raise ServiceNotFound(f"Service not found: {srv_name}")
    return srv


def _parameters(params: dict[str, Any], key: str) -> dict[str, str] | None:
    value = params.get(key)
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidInput(f"{key} must be a map of strings.")
    return value


async def discover(ctx: Context, call: Call, params: dict[str, Any]) -> dict[str, Any] | bytes:
    """DiscoverInstances. When the answer is not a random sample (every match fits in
    MaxResults), its serialised JSON is cached until the service's revision changes:
    serialising 100 instances costs more than the rest of the request."""
    srv = _target(ctx, params)
    status = params.get("HealthStatus", "HEALTHY")
    if status not in _STATUSES:
        raise InvalidInput("HealthStatus must be HEALTHY, UNHEALTHY, ALL or HEALTHY_OR_ELSE_ALL.")
    query = _parameters(params, "QueryParameters")
    optional = _parameters(params, "OptionalParameters")
    limit = integer(params, "MaxResults", 100, 1, 1000)
    filters = json.dumps([query, optional], sort_keys=True) if query or optional else ""
    key = (srv.id, srv.revision, status, limit, filters)
    cache = ctx.discover_cache
    cached = cache.get(key)
    if cached is not None:
        return cached
    index = ctx.catalog.index
    instances = index.instances_of(srv.id)
    chosen = model.select_instances(instances, srv, status, query, optional, limit)
    ns = index.namespaces[srv.namespace_id]
    out = {
        "Instances": [
            {"InstanceId": i.id, "NamespaceName": ns.name, "ServiceName": srv.name,
             "HealthStatus": i.health, "Attributes": i.attributes}
            for i in chosen
        ],
        "InstancesRevision": srv.revision,
    }
    if len(instances) > limit:
        return out  # possibly sampled: never cached
    if len(cache) >= DISCOVER_CACHE_SIZE:
        cache.clear()
    body = json.dumps(out, separators=(",", ":")).encode()
    cache[key] = body
    return body


async def revision(ctx: Context, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    return {"InstancesRevision": _target(ctx, params).revision}
