"""What every Cloud Map handler shares: the part's layers, lookups by id, paging and filters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from discovery import model
from discovery.data import Data
from discovery.errors import InstanceNotFound, InvalidInput, NamespaceNotFound
from discovery.index import Catalog
from discovery.model import Instance, Namespace, Service
from discovery.registrar import Registrar, find_service, ident
from dockyard.aws.paging import page
from dockyard.config import Config

__all__ = ["Context", "Filter", "filters", "ident", "instance", "namespace", "paged", "passes", "service"]

Filter = tuple[str, str, list[str]]


@dataclass
class Context:
    """The layers a handler works with: reads from ``catalog.index``, writes through ``data``
    (instances through ``registrar``), then a catalog reload; ``on_instances(service_id)``
    resyncs the health checker after a service's instances or checks changed."""

    data: Data
    catalog: Catalog
    config: Config
    registrar: Registrar
    on_instances: Callable[[str], None] = lambda service_id: None
    discover_cache: dict[tuple, bytes] = field(default_factory=dict)

    @property
    def account(self) -> str:
        return self.config.account_id

    def arn(self, kind: str, ident: str) -> str:
        return model.arn(self.config.region, self.account, kind, ident)


def namespace(ctx: Context, value: Any) -> Namespace:
    """The namespace with this id or ARN (InvalidInput if missing, NamespaceNotFound)."""
    if not isinstance(value, str) or not value:
        raise InvalidInput("Id is required.")
    ns = ctx.catalog.index.namespaces.get(ident(value))
    if ns is None:
        raise NamespaceNotFound(f"Namespace not found: {value}")
    return ns


def service(ctx: Context, value: Any, key: str = "Id") -> Service:
    """The service with this id or ARN (InvalidInput naming ``key`` if missing, ServiceNotFound)."""
    return find_service(ctx.catalog, value, key)


def instance(ctx: Context, srv: Service, value: Any) -> Instance:
    if not isinstance(value, str) or not value:
        raise InvalidInput("InstanceId is required.")
    inst = ctx.catalog.index.instances.get(srv.id, {}).get(value)
    if inst is None:
        raise InstanceNotFound(f"Instance not found: {value}")
    return inst


def paged(items: list[Any], params: dict[str, Any], key: str, shape: Callable[[Any], Any]) -> dict[str, Any]:
    """``{key: [shape(item) ...], "NextToken"?}`` for one page (MaxResults 1 to 100, default 100)."""
    chunk, token = page(items, params, InvalidInput, default=100, maximum=100,
                        token_key="NextToken", max_key="MaxResults")
    out: dict[str, Any] = {key: [shape(i) for i in chunk]}
    if token:
        out["NextToken"] = token
    return out


def filters(params: dict[str, Any], allowed: dict[str, tuple[str, ...]]) -> list[Filter]:
    """ListNamespaces/ListServices/ListOperations filters as (name, condition, values)."""
    raw = params.get("Filters") or []
    if not isinstance(raw, list):
        raise InvalidInput("Filters must be a list.")
    out = []
    for f in raw:
        if not isinstance(f, dict) or f.get("Name") not in allowed:
            raise InvalidInput(f"Filter Name must be one of {', '.join(allowed)}.")
        values = f.get("Values")
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
            raise InvalidInput("Filter Values must be a non-empty list of strings.")
        cond = f.get("Condition", "EQ")
        if cond not in allowed[f["Name"]]:
            raise InvalidInput(f"Condition {cond!r} is not supported for filter {f['Name']}.")
        if cond == "EQ" and len(values) != 1:
            raise InvalidInput("The EQ condition takes exactly one value.")
        if cond == "BETWEEN" and len(values) != 2:
            raise InvalidInput("The BETWEEN condition takes two values.")
        out.append((f["Name"], cond, values))
    return out


def passes(value: str, cond: str, values: list[str]) -> bool:
    if cond == "EQ":
        return value == values[0]
    if cond == "IN":
        return value in values
    if cond == "BEGINS_WITH":
        return value.startswith(values[0])
    return False
