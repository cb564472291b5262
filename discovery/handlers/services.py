"""CreateService, GetService, ListServices, UpdateService and DeleteService."""

from __future__ import annotations

import logging
import time
from typing import Any

from discovery import model
from discovery.errors import InvalidInput
from discovery.handlers.base import Context, filters, ident, namespace, paged, passes, service
from discovery.model import Service, text
from dockyard.aws.protocol import Call

log = logging.getLogger("dockyard.discovery")


def shape(ctx: Context, srv: Service, full: bool = True) -> dict[str, Any]:
    """A service as GetService (``full``) or ListServices answers it."""
    out: dict[str, Any] = {
        "Id": srv.id, "Arn": srv.arn, "ResourceOwner": ctx.account, "Name": srv.name,
        "NamespaceId": srv.namespace_id, "Type": srv.type,
        "InstanceCount": len(ctx.catalog.index.instances.get(srv.id, {})),
        "CreateDate": srv.created_at, "CreatedByAccount": ctx.account,
    }
    if srv.description:
        out["Description"] = srv.description
    if srv.dns_config:
        out["DnsConfig"] = srv.dns_config
    if srv.health_check:
        out["HealthCheckConfig"] = srv.health_check
    if srv.custom_health is not None:
        out["HealthCheckCustomConfig"] = srv.custom_health
    if full and srv.creator_request_id:
        out["CreatorRequestId"] = srv.creator_request_id
    return out


async def create(ctx: Context, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    name = model.check_service_name(params.get("Name"))
    dns_config = params.get("DnsConfig")
    ns_ident = params.get("NamespaceId")
    if ns_ident is None and isinstance(dns_config, dict):
        ns_ident = dns_config.get("NamespaceId")
    if ns_ident is None:
        raise InvalidInput("NamespaceId is required.")
    ns = namespace(ctx, ns_ident)
    request_id = text(params, "CreatorRequestId", maximum=64) or ""
    description = text(params, "Description") or ""
    tags = model.check_tags(params.get("Tags"))
    interval = model.health_interval(tags)
    kind = params.get("Type")
    if kind not in (None, "HTTP"):
        raise InvalidInput("Type must be HTTP when given.")
    if dns_config is not None:
        if not ns.is_dns:
            raise InvalidInput("DnsConfig is only allowed in a DNS namespace.")
        if kind == "HTTP":
            raise InvalidInput("A service of Type HTTP cannot have a DnsConfig.")
        dns_config = model.check_dns_config(dns_config)
        dns_config.pop("NamespaceId", None)
        kind = "DNS_HTTP"
    else:
        kind = "HTTP"
    if "HealthCheckConfig" in params and "HealthCheckCustomConfig" in params:
        raise InvalidInput("HealthCheckConfig and HealthCheckCustomConfig are mutually exclusive.")
    health = params.get("HealthCheckConfig")
    health = model.check_health_check_config(health) if health is not None else None
    custom = params.get("HealthCheckCustomConfig")
    custom = model.check_custom_health_config(custom) if custom is not None else None
    srv_id = model.new_id("srv")
    new = Service(srv_id, ctx.arn("service", srv_id), name, ns.id, kind, description, dns_config or None,
                  health or None, custom, request_id, time.time(), 0, interval)
    srv_id = await ctx.data.create_service(new, tags, ns.name)
    ctx.catalog.reload()
    log.info("service created", extra={"service": name, "id": srv_id, "interval": interval})
    return {"Service": shape(ctx, ctx.catalog.index.services[srv_id])}


async def get(ctx: Context, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    return {"Service": shape(ctx, service(ctx, params.get("Id")))}


async def list_all(ctx: Context, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    wanted = filters(params, {"NAMESPACE_ID": ("EQ", "IN"), "RESOURCE_OWNER": ("EQ",)})
    items = sorted(ctx.catalog.index.services.values(), key=lambda s: (s.created_at, s.id))
    for name, cond, values in wanted:
        if name == "NAMESPACE_ID":
            values = [ident(v) for v in values]
            items = [s for s in items if passes(s.namespace_id, cond, values)]
        else:
            items = [s for s in items if passes(ctx.account, cond, values)]
    return paged(items, params, "Services", lambda s: shape(ctx, s, full=False))


async def update(ctx: Context, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    srv = service(ctx, params.get("Id"))
    body = params.get("Service")
    if not isinstance(body, dict):
        raise InvalidInput("Service is required.")
    description = text(body, "Description") or ""
    dns_config = srv.dns_config
    if body.get("DnsConfig") is not None:
        if not srv.dns_config:
            raise InvalidInput("This service has no DnsConfig to update.")
        records = model.check_dns_config(body["DnsConfig"], update=True)["DnsRecords"]
        if {r["Type"] for r in records} != {r["Type"] for r in srv.dns_config["DnsRecords"]}:
            raise InvalidInput("UpdateService can change record TTLs but not record types.")
        dns_config = {**srv.dns_config, "DnsRecords": records}
    health = body.get("HealthCheckConfig")
    if health is not None:
        if srv.custom_health is not None:
            raise InvalidInput("A service with HealthCheckCustomConfig cannot get a HealthCheckConfig.")
        health = model.check_health_check_config(health)
    op = await ctx.data.update_service(srv, description, dns_config, health)
    ctx.catalog.reload()
    ctx.on_instances(srv.id)
    return {"OperationId": op}


async def delete(ctx: Context, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    srv = service(ctx, params.get("Id"))
    await ctx.data.delete_service(srv.id)
    ctx.catalog.reload()
    ctx.on_instances(srv.id)
    return {}
