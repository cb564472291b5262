"""App Mesh's virtual gateways and gateway routes (Create/Describe/List/Update/Delete of each),
with App Mesh's shapes, statuses and errors (:mod:`mesh.appmesh_resources`), and the checks of
their specs beyond the model (pure).

A virtual gateway (ARN ``mesh/<mesh>/virtualGateway/<name>``) is one ingress Envoy on this host
(:mod:`mesh.gateways`): exactly one listener (``http``, ``http2`` or ``grpc``) on a port of the
configured range (``edge_ports``), not taken by another gateway (ConflictException, checked in
the write by :mod:`mesh.data`); its ``healthCheck`` needs a ``path`` for HTTP and HTTP/2; TLS is
refused (not supported). A gateway with gateway routes cannot be deleted
(ResourceInUseException).

A gateway route (ARN ``mesh/<mesh>/virtualGateway/<gateway>/gatewayRoute/<name>``) has exactly
one of ``httpRoute``, ``http2Route``, ``grpcRoute``; its target virtual service must exist in
the mesh (NotFoundException, checked in the write; such a virtual service cannot be deleted
while the route names it). HTTP matches: at most one of ``prefix`` (starting with ``/``) and
``path`` (``exact`` starting with ``/``, or an RE2 ``regex``), and at least one of them or
``hostname`` (``exact`` or ``suffix``); ``headers``, ``queryParameters`` and ``method`` as for a
route. gRPC matches: ``serviceName``, ``metadata``, ``hostname``. Rewrites: ``prefix``
(``defaultPrefix`` or ``value`` starting with ``/``) only with a prefix match, ``path.exact``
only with an exact path match, ``hostname.defaultTargetHostname``.
"""

from __future__ import annotations

from typing import Any

from mesh.appmesh_checks import check_regex, not_blank, one_of
from mesh.appmesh_errors import BadRequestException
from mesh.appmesh_resources import Kind, Resources
from mesh.appmesh_routespec import check_header
from mesh.data import GATEWAY_ROUTE, GATEWAY_ROUTE_KINDS, VIRTUAL_GATEWAY, Data

__all__ = ["Gateways", "check_gateway_route_spec", "check_virtual_gateway_spec", "parse_ranges"]


def parse_ranges(text: str) -> list[tuple[int, int]]:
    """``8000-8999,443`` → inclusive ranges (the ``edge_ports`` setting)."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        lo, _, hi = part.partition("-")
        out.append((int(lo), int(hi or lo)))
    return out


def check_virtual_gateway_spec(spec: dict[str, Any] | None, ports: list[tuple[int, int]]) -> dict[str, Any]:
    """``spec`` if it can be served by a gateway Envoy on this host (module docstring)."""
    spec = spec or {}
    listeners = spec.get("listeners") or []
    if len(listeners) != 1:
        raise BadRequestException("A virtual gateway must have exactly one listener.")
    listener = listeners[0]
    mapping = listener.get("portMapping") or {}
    port = mapping.get("port")
    if not any(lo <= port <= hi for lo, hi in ports):
        allowed = ",".join(f"{lo}-{hi}" if lo != hi else str(lo) for lo, hi in ports)
        raise BadRequestException(f"listeners[0].portMapping.port {port} is outside the ports this Dockyard "
                                  f"serves gateways on ({allowed}).")
    if listener.get("tls") is not None:
        raise BadRequestException("listeners[0].tls: TLS on a virtual gateway listener is not supported.")
    check = listener.get("healthCheck")
    if check is not None and check.get("protocol") in ("http", "http2"):
        path = not_blank(check.get("path"), "listeners[0].healthCheck.path")
        if not path.startswith("/"):
            raise BadRequestException("listeners[0].healthCheck.path must start with '/'.")
    return spec


def _check_hostname(hostname: Any, where: str) -> None:
    which = one_of(hostname, ("exact", "suffix"), where)
    not_blank(hostname[which], f"{where}.{which}")


def _check_http(route: dict[str, Any], where: str) -> None:
    match = route.get("match") or {}
    given = [k for k in ("prefix", "path") if match.get(k) is not None]
    if len(given) > 1:
        raise BadRequestException(f"{where}.match may have prefix or path, not both.")
    if not given and match.get("hostname") is None:
        raise BadRequestException(f"{where}.match must have a prefix, a path or a hostname.")
    if match.get("prefix") is not None and not str(match["prefix"]).startswith("/"):
        raise BadRequestException(f"{where}.match.prefix must start with '/'.")
    exact = None
    if match.get("path") is not None:
        path = match["path"]
        if one_of(path, ("exact", "regex"), f"{where}.match.path") == "exact":
            exact = path["exact"]
            if not exact.startswith("/"):
                raise BadRequestException(f"{where}.match.path.exact must start with '/'.")
        else:
            check_regex(path["regex"], f"{where}.match.path.regex")
    if match.get("hostname") is not None:
        _check_hostname(match["hostname"], f"{where}.match.hostname")
    for i, header in enumerate(match.get("headers") or []):
        check_header(header, f"{where}.match.headers[{i}]")
    for i, param in enumerate(match.get("queryParameters") or []):
        not_blank(param.get("name"), f"{where}.match.queryParameters[{i}].name")
        if param.get("match") is not None and not isinstance(param["match"].get("exact"), str):
            raise BadRequestException(f"{where}.match.queryParameters[{i}].match must have exact.")
    rewrite = (route.get("action") or {}).get("rewrite") or {}
    if rewrite.get("prefix") is not None:
        if match.get("prefix") is None:
            raise BadRequestException(f"{where}.action.rewrite.prefix needs a prefix match.")
        which = one_of(rewrite["prefix"], ("defaultPrefix", "value"), f"{where}.action.rewrite.prefix")
        if which == "value" and not rewrite["prefix"]["value"].startswith("/"):
            raise BadRequestException(f"{where}.action.rewrite.prefix.value must start with '/'.")
    if rewrite.get("path") is not None:
        if exact is None:
            raise BadRequestException(f"{where}.action.rewrite.path needs an exact path match.")
        if not str(rewrite["path"].get("exact", "")).startswith("/"):
            raise BadRequestException(f"{where}.action.rewrite.path.exact must start with '/'.")


def _check_grpc(route: dict[str, Any], where: str) -> None:
    match = route.get("match") or {}
    if match.get("serviceName") is not None:
        not_blank(match["serviceName"], f"{where}.match.serviceName")
    if match.get("hostname") is not None:
        _check_hostname(match["hostname"], f"{where}.match.hostname")
    for i, entry in enumerate(match.get("metadata") or []):
        check_header(entry, f"{where}.match.metadata[{i}]")


def check_gateway_route_spec(spec: dict[str, Any] | None) -> dict[str, Any]:
    """``spec`` if App Mesh (and Dockyard) accepts it, else BadRequestException naming what is wrong."""
    spec = spec or {}
    kinds = [k for k in GATEWAY_ROUTE_KINDS if spec.get(k) is not None]
    if len(kinds) != 1:
        raise BadRequestException("A gateway route spec must have exactly one of httpRoute, http2Route or "
                                  "grpcRoute.")
    kind = kinds[0]
    route = spec[kind]
    (_check_grpc if kind == "grpcRoute" else _check_http)(route, kind)
    target = ((route.get("action") or {}).get("target") or {}).get("virtualService") or {}
    not_blank(target.get("virtualServiceName"), f"{kind}.action.target.virtualService.virtualServiceName")
    return spec


class Gateways(Resources):
    """The virtual gateway and gateway route operations of one platform; gateway listeners
    must be on one of ``ports`` (inclusive ranges)."""

    def __init__(self, data: Data, region: str, account: str, ports: list[tuple[int, int]]) -> None:
        super().__init__(data, region, account, (
            Kind(VIRTUAL_GATEWAY, "VirtualGateway", "virtualGatewayName", "virtualGateway", "virtualGateways",
                 "virtualGateway", lambda spec: check_virtual_gateway_spec(spec, ports)),
            Kind(GATEWAY_ROUTE, "GatewayRoute", "gatewayRouteName", "gatewayRoute", "gatewayRoutes",
                 "gatewayRoute", check_gateway_route_spec, "virtualGatewayName", "virtualGateway"),
        ))
