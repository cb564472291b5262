"""App Mesh's virtual routers and routes (Create/Describe/List/Update/Delete of each), with
App Mesh's shapes, statuses and errors.

Routes are checked beyond the model by :func:`check_route_spec`: an ``httpRoute`` or
``http2Route`` matching on a path ``prefix`` with ``weightedTargets`` (what Dockyard serves so
far); weights are 0 to 100 and not all zero. Virtual nodes do not exist yet, so a target's
``virtualNode`` is not looked up.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from dockyard.aws.paging import page
from dockyard.aws.protocol import Call, Handler
from mesh.appmesh_errors import BadRequestException
from mesh.data import ROUTE, VIRTUAL_ROUTER, Data, Resource, not_found

__all__ = ["Routers", "check_route_spec"]

log = logging.getLogger("dockyard.mesh")

_NAME_KEY = {VIRTUAL_ROUTER: "virtualRouterName", ROUTE: "routeName"}
_RESULT_KEY = {VIRTUAL_ROUTER: "virtualRouter", ROUTE: "route"}
_LIST_KEY = {VIRTUAL_ROUTER: "virtualRouters", ROUTE: "routes"}
_HTTP_KINDS = ("httpRoute", "http2Route")
_OTHER_KINDS = ("grpcRoute", "tcpRoute")


def check_route_spec(spec: dict[str, Any] | None) -> dict[str, Any]:
    """``spec`` if Dockyard can serve it, else BadRequestException naming what is wrong."""
    spec = spec or {}
    kinds = [k for k in (*_HTTP_KINDS, *_OTHER_KINDS) if spec.get(k) is not None]
    if len(kinds) != 1:
        raise BadRequestException("A route spec must have exactly one of httpRoute, http2Route, grpcRoute "
                                  "or tcpRoute.")
    if kinds[0] in _OTHER_KINDS:
        raise BadRequestException(f"{kinds[0]} is not supported by Dockyard yet; use httpRoute or "
                                  "http2Route.")
    route = spec[kinds[0]]
    match = route.get("match") or {}
    others = sorted(k for k in match if k != "prefix")
    if others:
        raise BadRequestException(f"Route match on {', '.join(others)} is not supported by Dockyard yet; "
                                  "match on prefix.")
    prefix = match.get("prefix")
    if not isinstance(prefix, str) or not prefix.startswith("/"):
        raise BadRequestException("A route's match prefix must start with '/'.")
    targets = (route.get("action") or {}).get("weightedTargets") or []
    if not targets:
        raise BadRequestException("A route's action must have at least one weighted target.")
    for t in targets:
        weight = t.get("weight")
        if not isinstance(weight, int) or isinstance(weight, bool) or not 0 <= weight <= 100:
            raise BadRequestException("A weighted target's weight must be an integer from 0 to 100.")
        if not t.get("virtualNode"):
            raise BadRequestException("A weighted target must name a virtualNode.")
    if not any(t["weight"] for t in targets):
        raise BadRequestException("At least one weighted target must have a weight above 0.")
    return spec


class Routers:
    """The virtual router and route operations of one platform."""

    def __init__(self, data: Data, region: str, account: str) -> None:
        self.data = data
        self.region = region
        self.account = account

    def arn(self, kind: str, mesh: str, parent: str, name: str) -> str:
        path = f"mesh/{mesh}/virtualRouter/{parent}/route/{name}" if kind == ROUTE \
            else f"mesh/{mesh}/virtualRouter/{name}"
        return f"arn:aws:appmesh:{self.region}:{self.account}:{path}"

    def data_of(self, res: Resource, status: str = "ACTIVE") -> dict[str, Any]:
        """``VirtualRouterData`` or ``RouteData``."""
        out: dict[str, Any] = {
            "meshName": res.mesh,
            "metadata": {
                "arn": res.arn, "createdAt": res.created_at, "lastUpdatedAt": res.updated_at,
                "meshOwner": self.account, "resourceOwner": self.account, "uid": res.uid,
                "version": res.version,
            },
            "spec": res.spec,
            "status": {"status": status},
        }
        if res.kind == ROUTE:
            out.update(routeName=res.name, virtualRouterName=res.parent)
        else:
            out["virtualRouterName"] = res.name
        return out

    def ref_of(self, res: Resource) -> dict[str, Any]:
        """``VirtualRouterRef`` or ``RouteRef``."""
        data = self.data_of(res)
        meta = data.pop("metadata")
        del data["spec"], data["status"], meta["uid"]
        return {**data, **meta}

    @staticmethod
    def _where(kind: str, params: dict[str, Any]) -> tuple[str, str]:
        return params["meshName"], params.get("virtualRouterName", "") if kind == ROUTE else ""

    def _spec(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        return check_route_spec(params.get("spec")) if kind == ROUTE else dict(params.get("spec") or {})

    async def create(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        mesh, parent = self._where(kind, params)
        name = params[_NAME_KEY[kind]]
        now = time.time()
        res = Resource(kind, mesh, parent, name, self.arn(kind, mesh, parent, name), str(uuid.uuid4()),
                       self._spec(kind, params), list(params.get("tags") or []), 1, now, now)
        await self.data.create_resource(res)
        log.info("mesh resource created", extra={"kind": kind, "key": res.key})
        return {_RESULT_KEY[kind]: self.data_of(res)}

    async def describe(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        mesh, parent = self._where(kind, params)
        res = self.data.resource(kind, mesh, parent, params[_NAME_KEY[kind]])
        if res is None:  # name what is missing: the mesh, the router or the resource
            self.data.check_parents(kind, mesh, parent)
            raise not_found(kind, mesh, params[_NAME_KEY[kind]])
        return {_RESULT_KEY[kind]: self.data_of(res)}

    async def list(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        mesh, parent = self._where(kind, params)
        items = self.data.resources(kind, mesh, parent)
        if not items:
            self.data.check_parents(kind, mesh, parent)
        chunk, token = page(items, params, BadRequestException, max_key="limit")
        out: dict[str, Any] = {_LIST_KEY[kind]: [self.ref_of(r) for r in chunk]}
        if token:
            out["nextToken"] = token
        return out

    async def update(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        mesh, parent = self._where(kind, params)
        res = await self.data.update_resource(kind, mesh, parent, params[_NAME_KEY[kind]],
                                              self._spec(kind, params))
        log.info("mesh resource updated", extra={"kind": kind, "key": res.key, "version": res.version})
        return {_RESULT_KEY[kind]: self.data_of(res)}

    async def delete(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        mesh, parent = self._where(kind, params)
        res = await self.data.delete_resource(kind, mesh, parent, params[_NAME_KEY[kind]])
        log.info("mesh resource deleted", extra={"kind": kind, "key": res.key})
        return {_RESULT_KEY[kind]: self.data_of(res, status="DELETED")}

    def operations(self) -> dict[str, tuple[Handler, bool]]:
        """Each operation's handler and whether it only reads."""
        out: dict[str, tuple[Handler, bool]] = {}
        for kind, noun in ((VIRTUAL_ROUTER, "VirtualRouter"), (ROUTE, "Route")):
            for verb, method, readonly in (("Create", self.create, False), ("Describe", self.describe, True),
                                           ("List", self.list, True), ("Update", self.update, False),
                                           ("Delete", self.delete, False)):
                name = f"{verb}{noun}s" if verb == "List" else f"{verb}{noun}"
                out[name] = (_bound(method, kind), readonly)
        return out


def _bound(method: Any, kind: str) -> Handler:
    async def handle(call: Call, params: dict[str, Any]) -> dict[str, Any]:
        return await method(kind, params)

    return handle
