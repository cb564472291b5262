"""CreateHttpNamespace, CreatePrivateDnsNamespace, CreatePublicDnsNamespace, GetNamespace,
ListNamespaces, Update*Namespace and DeleteNamespace."""

from __future__ import annotations

import logging
import time
from typing import Any

from discovery import model
from discovery.errors import InvalidInput
from discovery.handlers.base import Context, filters, namespace, paged, passes
from discovery.model import Namespace, text
from dockyard.aws.protocol import Call

log = logging.getLogger("dockyard.discovery")

DEFAULT_SOA_TTL = 15
_UPDATE_TYPES = {"UpdateHttpNamespace": "HTTP", "UpdatePrivateDnsNamespace": "DNS_PRIVATE",
                 "UpdatePublicDnsNamespace": "DNS_PUBLIC"}


def shape(ctx: Context, ns: Namespace, full: bool = True) -> dict[str, Any]:
    """A namespace as GetNamespace (``full``) or ListNamespaces answers it."""
    props: dict[str, Any] = {"HttpProperties": {"HttpName": ns.name}}
    if ns.is_dns:
        zone_id = "Z" + ns.id[3:].upper()
        props["DnsProperties"] = {"HostedZoneId": zone_id, "SOA": {"TTL": ns.soa_ttl or DEFAULT_SOA_TTL}}
    else:
        props["DnsProperties"] = {}
    out: dict[str, Any] = {
        "Id": ns.id, "Arn": ns.arn, "ResourceOwner": ctx.account, "Name": ns.name, "Type": ns.type,
        "ServiceCount": ns.service_count, "Properties": props, "CreateDate": ns.created_at,
    }
    if ns.description:
        out["Description"] = ns.description
    if full and ns.creator_request_id:
        out["CreatorRequestId"] = ns.creator_request_id
    return out


async def _create(ctx: Context, params: dict[str, Any], kind: str) -> dict[str, Any]:
    name = model.check_namespace_name(params.get("Name"), "HTTP" if kind == "HTTP" else "DNS")
    request_id = text(params, "CreatorRequestId", maximum=64) or ""
    description = text(params, "Description") or ""
    tags = model.check_tags(params.get("Tags"))
    soa_ttl = model.check_soa_ttl(params.get("Properties")) if kind != "HTTP" else None
    if kind == "DNS_PRIVATE":
        text(params, "Vpc", required=True, maximum=64)
    if soa_ttl is None and kind != "HTTP":
        soa_ttl = DEFAULT_SOA_TTL
    ns_id = model.new_id("ns")
    ns = Namespace(ns_id, ctx.arn("namespace", ns_id), name, kind, description, soa_ttl, request_id,
                   time.time())
    op = await ctx.data.create_namespace(ns, tags)
    ctx.catalog.reload()
    log.info("namespace created", extra={"namespace": name, "id": ns_id, "type": kind})
    return {"OperationId": op}


async def create_http(ctx: Context, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    return await _create(ctx, params, "HTTP")


async def create_private_dns(ctx: Context, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    return await _create(ctx, params, "DNS_PRIVATE")


async def create_public_dns(ctx: Context, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    return await _create(ctx, params, "DNS_PUBLIC")


async def get(ctx: Context, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    return {"Namespace": shape(ctx, namespace(ctx, params.get("Id")))}


async def list_all(ctx: Context, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    wanted = filters(params, {
        "TYPE": ("EQ", "IN"), "NAME": ("EQ", "BEGINS_WITH"), "HTTP_NAME": ("EQ", "BEGINS_WITH"),
        "RESOURCE_OWNER": ("EQ",),
    })
    items = sorted(ctx.catalog.index.namespaces.values(), key=lambda n: (n.created_at, n.id))
    for name, cond, values in wanted:
        field = {"TYPE": "type", "NAME": "name", "HTTP_NAME": "name"}.get(name)
        if field is None:
            items = [n for n in items if passes(ctx.account, cond, values)]
        else:
            items = [n for n in items if passes(getattr(n, field), cond, values)]
    return paged(items, params, "Namespaces", lambda n: shape(ctx, n, full=False))


async def update(ctx: Context, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """UpdateHttpNamespace, UpdatePrivateDnsNamespace and UpdatePublicDnsNamespace (each only
    for its own namespace type)."""
    ns = namespace(ctx, params.get("Id"))
    expected = _UPDATE_TYPES[call.operation]
    if ns.type != expected:
        raise InvalidInput(f"Namespace {ns.id} is of type {ns.type}; {call.operation} does not apply.")
    body = params.get("Namespace")
    if not isinstance(body, dict):
        raise InvalidInput("Namespace is required.")
    text(params, "UpdaterRequestId", maximum=64)
    description = text(body, "Description", required=expected == "HTTP")
    soa_ttl = model.check_soa_ttl(body.get("Properties")) if expected != "HTTP" else None
    op = await ctx.data.update_namespace(ns.id, description, soa_ttl)
    ctx.catalog.reload()
    return {"OperationId": op}


async def delete(ctx: Context, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    ns = namespace(ctx, params.get("Id"))
    op = await ctx.data.delete_namespace(ns.id)
    ctx.catalog.reload()
    log.info("namespace deleted", extra={"namespace": ns.name, "id": ns.id})
    return {"OperationId": op}
