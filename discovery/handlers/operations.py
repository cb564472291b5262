"""GetOperation and ListOperations."""

from __future__ import annotations

from typing import Any

from discovery.data import Operation
from discovery.errors import InvalidInput, OperationNotFound
from discovery.handlers.base import Context, filters, ident, paged, passes
from discovery.model import text
from dockyard.aws.protocol import Call


def shape(ctx: Context, op: Operation) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Id": op.id, "OwnerAccount": ctx.account, "Type": op.type, "Status": op.status,
        "CreateDate": op.created_at, "UpdateDate": op.updated_at, "Targets": op.targets,
    }
    if op.error_code:
        out["ErrorCode"], out["ErrorMessage"] = op.error_code, op.error_message
    return out


async def get(ctx: Context, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    op_id = text(params, "OperationId", required=True, maximum=255) or ""
    op = ctx.data.operation(op_id)
    if op is None:
        raise OperationNotFound(f"Operation not found: {op_id}")
    return {"Operation": shape(ctx, op)}


def _kept(op: Operation, name: str, cond: str, values: list[str]) -> bool:
    if name == "NAMESPACE_ID":
        return op.targets.get("NAMESPACE") == ident(values[0])
    if name == "SERVICE_ID":
        return op.targets.get("SERVICE") == ident(values[0])
    if name == "STATUS":
        return passes(op.status, cond, values)
    if name == "TYPE":
        return passes(op.type, cond, values)
    try:
        low, high = float(values[0]), float(values[1])
    except ValueError:
        raise InvalidInput("UPDATE_DATE values must be epoch seconds.") from None
    return low <= op.updated_at <= high


async def list_all(ctx: Context, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    wanted = filters(params, {
        "NAMESPACE_ID": ("EQ",), "SERVICE_ID": ("EQ",), "STATUS": ("EQ", "IN"), "TYPE": ("EQ", "IN"),
        "UPDATE_DATE": ("BETWEEN",),
    })
    ops = ctx.data.operations()
    for name, cond, values in wanted:
        ops = [o for o in ops if _kept(o, name, cond, values)]
    return paged(ops, params, "Operations", lambda o: {"Id": o.id, "Status": o.status})
