"""Create/Describe/List/Update/Delete of App Mesh's resources inside a mesh (virtual nodes,
virtual services, virtual routers, routes, virtual gateways, gateway routes), one generic set of
handlers over :mod:`mesh.data`.

Each kind is a :class:`Kind`: its API noun, the request member naming it, the ARN path and the
check its spec goes through before anything is stored (a pure function raising
BadRequestException). References between resources (a virtual service's provider, a route's
targets) are checked inside the write by :mod:`mesh.data`. Answers have App Mesh's shapes:
``<Noun>Data`` (``meshName``, ``metadata``, ``spec``, ``status``, the name members) and, in
List, ``<Noun>Ref`` (the name members and metadata without ``uid``).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dockyard.aws.paging import page
from dockyard.aws.protocol import Call, Handler
from mesh.appmesh_errors import BadRequestException
from mesh.data import Data, Resource, not_found

__all__ = ["Kind", "Resources", "plain_spec"]

log = logging.getLogger("dockyard.mesh")


def plain_spec(spec: dict[str, Any] | None) -> dict[str, Any]:
    """A spec kept as given (what a virtual router's spec needs beyond the model)."""
    return dict(spec or {})


@dataclass(frozen=True)
class Kind:
    """One kind of resource as the API names it: ``kind`` (:mod:`mesh.data`'s), ``noun``
    (``VirtualNode``), ``name_key`` (``virtualNodeName``), ``result_key`` (``virtualNode``),
    ``list_key`` (``virtualNodes``), ``path`` (the ARN's resource path after ``mesh/<mesh>/``,
    ``virtualNode``), ``check`` (spec in, spec to store out, or BadRequestException) and, for a
    resource inside another (a route in its router, a gateway route in its gateway),
    ``parent_key`` and ``parent_path`` (ARN ``mesh/<mesh>/<parent_path>/<parent>/<path>/<name>``)."""

    kind: str
    noun: str
    name_key: str
    result_key: str
    list_key: str
    path: str
    check: Callable[[dict[str, Any] | None], dict[str, Any]] = plain_spec
    parent_key: str = ""  # the request member naming its parent (``virtualRouterName``), if any
    parent_path: str = ""  # the parent's ARN path (``virtualRouter``)


class Resources:
    """The operations of some kinds of resource, for one platform."""

    def __init__(self, data: Data, region: str, account: str, kinds: tuple[Kind, ...]) -> None:
        self.data = data
        self.region = region
        self.account = account
        self.kinds = {k.kind: k for k in kinds}

    def arn(self, kind: str, mesh: str, parent: str, name: str) -> str:
        info = self.kinds[kind]
        up = f"{info.parent_path}/{parent}/" if info.parent_key else ""
        path = f"mesh/{mesh}/{up}{info.path}/{name}"
        return f"arn:aws:appmesh:{self.region}:{self.account}:{path}"

    def data_of(self, res: Resource, status: str = "ACTIVE") -> dict[str, Any]:
        """``<Noun>Data``: what Create/Describe/Update/Delete answer."""
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
        info = self.kinds[res.kind]
        out[info.name_key] = res.name
        if info.parent_key:
            out[info.parent_key] = res.parent
        return out

    def ref_of(self, res: Resource) -> dict[str, Any]:
        """``<Noun>Ref``: one entry of a List."""
        data = self.data_of(res)
        meta = data.pop("metadata")
        del data["spec"], data["status"], meta["uid"]
        return {**data, **meta}

    def _where(self, kind: str, params: dict[str, Any]) -> tuple[str, str]:
        key = self.kinds[kind].parent_key
        return params["meshName"], str(params.get(key, "")) if key else ""

    def _name(self, kind: str, params: dict[str, Any]) -> str:
        return str(params[self.kinds[kind].name_key])

    async def create(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        mesh, parent = self._where(kind, params)
        name = self._name(kind, params)
        spec = self.kinds[kind].check(params.get("spec"))
        now = time.time()
        res = Resource(kind, mesh, parent, name, self.arn(kind, mesh, parent, name), str(uuid.uuid4()),
                       spec, list(params.get("tags") or []), 1, now, now)
        await self.data.create_resource(res)
        log.info("mesh resource created", extra={"kind": kind, "key": res.key})
        return {self.kinds[kind].result_key: self.data_of(res)}

    async def describe(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        mesh, parent = self._where(kind, params)
        name = self._name(kind, params)
        res = self.data.resource(kind, mesh, parent, name)
        if res is None:  # name what is missing: the mesh, the router or the resource
            self.data.check_parents(kind, mesh, parent)
            raise not_found(kind, mesh, name)
        return {self.kinds[kind].result_key: self.data_of(res)}

    async def list(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        mesh, parent = self._where(kind, params)
        items = self.data.resources(kind, mesh, parent)
        if not items:
            self.data.check_parents(kind, mesh, parent)
        chunk, token = page(items, params, BadRequestException, max_key="limit")
        out: dict[str, Any] = {self.kinds[kind].list_key: [self.ref_of(r) for r in chunk]}
        if token:
            out["nextToken"] = token
        return out

    async def update(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        mesh, parent = self._where(kind, params)
        spec = self.kinds[kind].check(params.get("spec"))
        res = await self.data.update_resource(kind, mesh, parent, self._name(kind, params), spec)
        log.info("mesh resource updated", extra={"kind": kind, "key": res.key, "version": res.version})
        return {self.kinds[kind].result_key: self.data_of(res)}

    async def delete(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        mesh, parent = self._where(kind, params)
        res = await self.data.delete_resource(kind, mesh, parent, self._name(kind, params))
        log.info("mesh resource deleted", extra={"kind": kind, "key": res.key})
        return {self.kinds[kind].result_key: self.data_of(res, status="DELETED")}

    def operations(self) -> dict[str, tuple[Handler, bool]]:
        """Each operation's handler and whether it only reads."""
        out: dict[str, tuple[Handler, bool]] = {}
        for kind, info in self.kinds.items():
            for verb, method, readonly in (("Create", self.create, False), ("Describe", self.describe, True),
                                           ("List", self.list, True), ("Update", self.update, False),
                                           ("Delete", self.delete, False)):
                name = f"{verb}{info.noun}s" if verb == "List" else f"{verb}{info.noun}"
                out[name] = (_bound(method, kind), readonly)
        return out


def _bound(method: Any, kind: str) -> Handler:
    async def handle(call: Call, params: dict[str, Any]) -> dict[str, Any]:
        return await method(kind, params)

    return handle
