"""Virtual routers and routes over a real store, and the route checks beyond App Mesh's model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dockyard.aws.protocol import Call
from dockyard.store import Store
from mesh.appmesh import AppMesh
from mesh.appmesh_errors import (
    BadRequestException,
    ConflictException,
    NotFoundException,
    ResourceInUseException,
)
from mesh.appmesh_nodes import Nodes
from mesh.appmesh_routers import Routers, check_route_spec
from mesh.data import MIGRATIONS, TOPICS, Data

# the data module's SQL on both state backends (tests/conftest.py: state_backend)
pytestmark = pytest.mark.usefixtures("state_backend")

CALL = Call({}, "appmesh", "x", None, "test")


def http_route(*weights: int, prefix: str = "/", kind: str = "httpRoute") -> dict[str, Any]:
    return {kind: {"match": {"prefix": prefix}, "action": {
        "weightedTargets": [{"virtualNode": f"v{i}", "weight": w} for i, w in enumerate(weights)]}}}


@pytest.fixture
def apis(tmp_path: Path) -> tuple[AppMesh, dict[str, Any]]:
    data = Data(Store.open(tmp_path / "state.db", MIGRATIONS))
    ops = {**Routers(data, "us-east-1", "0").operations(), **Nodes(data, "us-east-1", "0").operations()}
    return AppMesh(data, "us-east-1", "0"), {k: h for k, (h, _) in ops.items()}


def test_a_weighted_http_route_on_a_prefix_passes():
    assert check_route_spec(http_route(90, 10)) == http_route(90, 10)
    assert check_route_spec(http_route(0, 100, kind="http2Route"))["http2Route"]


@pytest.mark.parametrize("spec", [
    http_route(0, 0), http_route(101), http_route(-1), http_route(), http_route(5, prefix="api"), {},
    {**http_route(1), **http_route(1, kind="http2Route")}, {"tcpRoute": {"action": {}}},
])
def test_routes_dockyard_cannot_serve_are_bad_requests(spec: dict[str, Any]):
    with pytest.raises(BadRequestException):
        check_route_spec(spec)


async def test_routers_and_routes_publish_changes_and_guard_their_parents(apis):
    mesh_api, ops = apis
    with pytest.raises(NotFoundException):
        await ops["CreateVirtualRouter"](CALL, {"meshName": "m", "virtualRouterName": "web"})
    await mesh_api.create_mesh(CALL, {"meshName": "m"})
    for node in ("v0", "v1"):
        await ops["CreateVirtualNode"](CALL, {"meshName": "m", "virtualNodeName": node})
    store = mesh_api.data.store
    start = store.current_revision()
    await ops["CreateVirtualRouter"](CALL, {"meshName": "m", "virtualRouterName": "web"})
    with pytest.raises(ConflictException):
        await ops["CreateVirtualRouter"](CALL, {"meshName": "m", "virtualRouterName": "web"})
    route = {"meshName": "m", "virtualRouterName": "web", "routeName": "r", "spec": http_route(90, 10)}
    await ops["CreateRoute"](CALL, route)
    await ops["UpdateRoute"](CALL, {**route, "spec": http_route(50, 50)})
    assert [(c.topic, c.key) for c in store.changes_since(start)] == [
        (TOPICS["virtualRouter"], "m/web"), (TOPICS["route"], "m/web/r"), (TOPICS["route"], "m/web/r")]
    with pytest.raises(ResourceInUseException):
        await mesh_api.delete_mesh(CALL, {"meshName": "m"})
    with pytest.raises(ResourceInUseException):
        await ops["DeleteVirtualRouter"](CALL, {"meshName": "m", "virtualRouterName": "web"})
    listed = await ops["ListRoutes"](CALL, {"meshName": "m", "virtualRouterName": "web"})
    assert [(r["routeName"], r["version"]) for r in listed["routes"]] == [("r", 2)]
    await ops["DeleteRoute"](CALL, route)
    await ops["DeleteVirtualRouter"](CALL, {"meshName": "m", "virtualRouterName": "web"})
    for node in ("v0", "v1"):
        await ops["DeleteVirtualNode"](CALL, {"meshName": "m", "virtualNodeName": node})
    await mesh_api.delete_mesh(CALL, {"meshName": "m"})
    with pytest.raises(NotFoundException):
        await ops["ListVirtualRouters"](CALL, {"meshName": "m"})
