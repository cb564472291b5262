"""App Mesh's virtual routers and routes (Create/Describe/List/Update/Delete of each), with
App Mesh's shapes, statuses and errors (:mod:`mesh.appmesh_resources`).

A route's spec goes through :func:`mesh.appmesh_routespec.check_route_spec` (HTTP, HTTP/2, gRPC
and TCP routes, their matches, weighted targets, retry policies and timeouts); its targets'
virtual nodes must exist (NotFoundException, checked in the write). A virtual router's spec
(its listeners) is kept as given.
"""

from __future__ import annotations

from mesh.appmesh_resources import Kind, Resources
from mesh.appmesh_routespec import check_route_spec
from mesh.data import ROUTE, VIRTUAL_ROUTER, Data

__all__ = ["ROUTER_KINDS", "Routers", "check_route_spec"]

ROUTER_KINDS = (
    Kind(VIRTUAL_ROUTER, "VirtualRouter", "virtualRouterName", "virtualRouter", "virtualRouters",
         "virtualRouter"),
    Kind(ROUTE, "Route", "routeName", "route", "routes", "route", check_route_spec, "virtualRouterName",
         "virtualRouter"),
)


class Routers(Resources):
    """The virtual router and route operations of one platform."""

    def __init__(self, data: Data, region: str, account: str) -> None:
        super().__init__(data, region, account, ROUTER_KINDS)
