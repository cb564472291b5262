"""App Mesh's API on the control port (botocore's ``appmesh`` REST-JSON model, SigV4 scope
``appmesh``): meshes here, virtual routers and routes in :mod:`mesh.appmesh_routers`, with App
Mesh's shapes, statuses and errors; virtual nodes and services in :mod:`mesh.appmesh_nodes`.

Parameters are checked against the model first (``BadRequestException``); the handlers add what
the model cannot say (a mesh that exists, a name still free) and keep the state in the mesh
part's own tables (:mod:`mesh.data`). Reads are read-only, so a control worker answers them from
the store as committed.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from dockyard.aws.paging import page
from dockyard.aws.protocol import Call, Handler
from mesh.appmesh_errors import BadRequestException, NotFoundException
from mesh.appmesh_gateways import Gateways, parse_ranges
from mesh.appmesh_nodes import Nodes
from mesh.appmesh_routers import Routers
from mesh.appmesh_tags import Tags
from mesh.data import Data, Mesh

if TYPE_CHECKING:
    from dockyard.platform import Platform

__all__ = ["SERVICE", "AppMesh", "install"]

SERVICE = "appmesh"
DEFAULT_EGRESS = {"type": "DROP_ALL"}  # what App Mesh gives a mesh created without a spec

log = logging.getLogger("dockyard.mesh")


def mesh_spec(given: dict[str, Any] | None) -> dict[str, Any]:
    """A mesh's spec as App Mesh keeps it: the request's, with the default egress filter."""
    spec = dict(given or {})
    spec.setdefault("egressFilter", dict(DEFAULT_EGRESS))
    return spec


def mesh_data(mesh: Mesh, account: str, status: str = "ACTIVE") -> dict[str, Any]:
    """``MeshData``: what Create/Describe/Update/DeleteMesh answer."""
    return {
        "meshName": mesh.name,
        "metadata": {
            "arn": mesh.arn, "createdAt": mesh.created_at, "lastUpdatedAt": mesh.updated_at,
            "meshOwner": account, "resourceOwner": account, "uid": mesh.uid, "version": mesh.version,
        },
        "spec": mesh.spec,
        "status": {"status": status},
    }


def mesh_ref(mesh: Mesh, account: str) -> dict[str, Any]:
    """``MeshRef``: one entry of ListMeshes."""
    return {
        "arn": mesh.arn, "createdAt": mesh.created_at, "lastUpdatedAt": mesh.updated_at,
        "meshName": mesh.name, "meshOwner": account, "resourceOwner": account, "version": mesh.version,
    }


class AppMesh:
    """The App Mesh operations of one platform."""

    def __init__(self, data: Data, region: str, account: str) -> None:
        self.data = data
        self.region = region
        self.account = account

    def arn(self, path: str) -> str:
        return f"arn:aws:appmesh:{self.region}:{self.account}:{path}"

    def _mesh(self, params: dict[str, Any]) -> Mesh:
        name = params.get("meshName", "")
        mesh = self.data.mesh(name)
        if mesh is None:
            raise NotFoundException(f"Mesh {name} not found.")
        return mesh

    async def create_mesh(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        name = params["meshName"]
        now = time.time()
        mesh = Mesh(name, self.arn(f"mesh/{name}"), str(uuid.uuid4()), mesh_spec(params.get("spec")),
                    list(params.get("tags") or []), 1, now, now)
        await self.data.create_mesh(mesh)
        log.info("mesh created", extra={"mesh": name})
        return {"mesh": mesh_data(mesh, self.account)}

    async def describe_mesh(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        return {"mesh": mesh_data(self._mesh(params), self.account)}

    async def list_meshes(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        chunk, token = page(self.data.meshes(), params, BadRequestException, max_key="limit")
        out: dict[str, Any] = {"meshes": [mesh_ref(m, self.account) for m in chunk]}
        if token:
            out["nextToken"] = token
        return out

    async def update_mesh(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        mesh = await self.data.update_mesh(params["meshName"], mesh_spec(params.get("spec")))
        log.info("mesh updated", extra={"mesh": mesh.name, "version": mesh.version})
        return {"mesh": mesh_data(mesh, self.account)}

    async def delete_mesh(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        mesh = await self.data.delete_mesh(params["meshName"])
        log.info("mesh deleted", extra={"mesh": mesh.name})
        return {"mesh": mesh_data(mesh, self.account, status="DELETED")}

    def operations(self) -> dict[str, tuple[Handler, bool]]:
        """Each operation's handler and whether it only reads."""
        return {
            "CreateMesh": (self.create_mesh, False), "DescribeMesh": (self.describe_mesh, True),
            "ListMeshes": (self.list_meshes, True), "UpdateMesh": (self.update_mesh, False),
            "DeleteMesh": (self.delete_mesh, False),
        }


def install(platform: Platform) -> AppMesh:
    """Register App Mesh's operations on the platform's control API, checked against the model."""
    api = AppMesh(Data(platform.store), platform.config.region, platform.config.account_id)
    platform.ops.validate(SERVICE, BadRequestException)
    routers = Routers(api.data, api.region, api.account)
    nodes = Nodes(api.data, api.region, api.account)
    gateways = Gateways(api.data, api.region, api.account, parse_ranges(platform.config.edge_ports))
    operations = {**api.operations(), **routers.operations(), **nodes.operations(),
                  **gateways.operations(), **Tags(api.data).operations()}
    for name, (handler, readonly) in operations.items():
        platform.ops.add(SERVICE, name, handler, readonly=readonly)
    return api
