"""RegisterInstance, DeregisterInstance, GetInstance, ListInstances, GetInstancesHealthStatus
and UpdateInstanceCustomHealthStatus."""

from __future__ import annotations

from typing import Any

from discovery import model
from discovery.errors import CustomHealthNotFound, InstanceNotFound, InvalidInput
from discovery.handlers.base import Context, instance, paged, service
from discovery.health import change_health
from discovery.model import Instance, text
from dockyard.aws.protocol import Call


def shape(ctx: Context, inst: Instance, full: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"Id": inst.id, "Attributes": inst.attributes, "CreatedByAccount": ctx.account}
    if full and inst.creator_request_id:
        out["CreatorRequestId"] = inst.creator_request_id
    return out


async def register(ctx: Context, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    srv = service(ctx, params.get("ServiceId"), "ServiceId")
    inst_id = model.check_instance_id(params.get("InstanceId"))
    request_id = text(params, "CreatorRequestId", maximum=64) or ""
    attributes = params.get("Attributes")
    if not isinstance(attributes, dict):
        raise InvalidInput("Attributes is required and must be a map of strings.")
    return {"OperationId": await ctx.registrar.put(srv, inst_id, attributes, request_id)}


async def deregister(ctx: Context, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    srv = service(ctx, params.get("ServiceId"), "ServiceId")
    inst = instance(ctx, srv, params.get("InstanceId"))
    op = await ctx.registrar.remove(srv, inst.id)
    if op is None:  # deregistered meanwhile
        raise InstanceNotFound(f"Instance not found: {inst.id}")
    return {"OperationId": op}


async def get(ctx: Context, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    srv = service(ctx, params.get("ServiceId"), "ServiceId")
    inst = instance(ctx, srv, params.get("InstanceId"))
    return {"ResourceOwner": ctx.account, "Instance": shape(ctx, inst, True)}


async def list_all(ctx: Context, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    srv = service(ctx, params.get("ServiceId"), "ServiceId")
    out = paged(ctx.catalog.index.instances_of(srv.id), params, "Instances", lambda i: shape(ctx, i, False))
    return {"ResourceOwner": ctx.account, **out}


async def health_status(ctx: Context, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    srv = service(ctx, params.get("ServiceId"), "ServiceId")
    instances = ctx.catalog.index.instances_of(srv.id)
    wanted = params.get("Instances")
    if wanted is not None:
        if not isinstance(wanted, list) or not all(isinstance(w, str) for w in wanted):
            raise InvalidInput("Instances must be a list of instance ids.")
        by_id = {i.id: i for i in instances}
        missing = [w for w in wanted if w not in by_id]
        if missing:
            raise InstanceNotFound(f"Instance not found: {missing[0]}")
        instances = [by_id[w] for w in wanted]
    out = paged(instances, params, "Status", lambda i: i)
    out["Status"] = {i.id: i.health for i in out["Status"]}
    return out


async def update_custom_health(ctx: Context, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    srv = service(ctx, params.get("ServiceId"), "ServiceId")
    inst = instance(ctx, srv, params.get("InstanceId"))
    status = params.get("Status")
    if status not in ("HEALTHY", "UNHEALTHY"):
        raise InvalidInput("Status must be HEALTHY or UNHEALTHY.")
    if srv.custom_health is None:
        raise CustomHealthNotFound(f"Service {srv.id} has no HealthCheckCustomConfig.")
    await change_health(ctx.data, ctx.catalog, srv, inst.id, status, "custom")
    return {}
