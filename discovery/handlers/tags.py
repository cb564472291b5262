"""TagResource, UntagResource and ListTagsForResource (namespaces and services)."""

from __future__ import annotations

from typing import Any

from discovery import model
from discovery.data import Tagged
from discovery.errors import InvalidInput, ResourceNotFoundException, TooManyTagsException, with_fields
from discovery.handlers.base import Context
from discovery.model import text
from dockyard.aws.protocol import Call


def _target(ctx: Context, params: dict[str, Any]) -> Tagged:
    resource = text(params, "ResourceARN", required=True, maximum=1011) or ""
    found = ctx.data.tagged(resource)
    if found is None:
        raise ResourceNotFoundException(f"Resource not found: {resource}")
    return found


async def _write(ctx: Context, target: Tagged, tags: list[dict[str, str]]) -> None:
    if target.kind == "service":
        model.health_interval(tags)
    await ctx.data.write_tags(target, tags)
    ctx.catalog.reload()
    if target.kind == "service":
        ctx.on_instances(target.id)


async def tag(ctx: Context, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    target = _target(ctx, params)
    if not params.get("Tags"):
        raise InvalidInput("Tags is required.")
    new = model.check_tags(params.get("Tags"))
    try:
        merged = model.merge_tags(target.tags, new)
    except TooManyTagsException as e:
        raise with_fields(e, ResourceName=params.get("ResourceARN")) from None  # type: ignore[arg-type]
    await _write(ctx, target, merged)
    return {}


async def untag(ctx: Context, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    target = _target(ctx, params)
    keys = params.get("TagKeys")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise InvalidInput("TagKeys must be a list of strings.")
    await _write(ctx, target, [t for t in target.tags if t["Key"] not in keys])
    return {}


async def list_all(ctx: Context, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    return {"Tags": _target(ctx, params).tags}
