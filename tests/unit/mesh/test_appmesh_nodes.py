"""Virtual nodes and virtual services over a real store: specs, shapes, references between
resources, the change published per write, and bad input."""

from __future__ import annotations

import copy
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
from mesh.appmesh_nodespec import check_virtual_node_spec, check_virtual_service_spec
from mesh.appmesh_routers import Routers
from mesh.data import MIGRATIONS, TOPICS, VIRTUAL_NODE, VIRTUAL_SERVICE, Data, references

# the data module's SQL on both state backends (tests/conftest.py: state_backend)
pytestmark = pytest.mark.usefixtures("state_backend")

CALL = Call({}, "appmesh", "x", None, "test")
MS = {"unit": "ms", "value": 500}
NODE = {
    "serviceDiscovery": {"awsCloudMap": {
        "namespaceName": "shop.local", "serviceName": "web", "ipPreference": "IPv4_ONLY",
        "attributes": [{"key": "ECS_TASK_DEFINITION_FAMILY", "value": "web"},
                       {"key": "VERSION", "value": "v1"}]}},
    "listeners": [{
        "portMapping": {"port": 8080, "protocol": "http"},
        "healthCheck": {"protocol": "http", "path": "/health", "healthyThreshold": 2, "unhealthyThreshold": 3,
                        "intervalMillis": 5000, "timeoutMillis": 2000},
        "outlierDetection": {"maxServerErrors": 5, "interval": {"unit": "s", "value": 10},
                             "baseEjectionDuration": {"unit": "s", "value": 30}, "maxEjectionPercent": 50},
        "connectionPool": {"http": {"maxConnections": 100, "maxPendingRequests": 10}},
        "timeout": {"http": {"perRequest": MS, "idle": {"unit": "s", "value": 60}}}}],
    "backends": [{"virtualService": {"virtualServiceName": "db.shop.local"}}],
    "backendDefaults": {},
}


def with_(spec: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(spec)
    node: Any = out
    *parents, last = path.split(".")
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return out


L0 = "listeners.0"
SDS = {"sds": {"secretName": "mesh"}}


@pytest.mark.parametrize("spec", [
    NODE, {}, {"serviceDiscovery": {"dns": {"hostname": "web.example"}}, "listeners": [
        {"portMapping": {"port": 9000, "protocol": "tcp"}, "connectionPool": {"tcp": {"maxConnections": 5}},
         "timeout": {"tcp": {"idle": MS}}}]},
    {"serviceDiscovery": {"awsCloudMap": {"namespaceName": "n", "serviceName": "s"}}, "listeners": [
        {"portMapping": {"port": 50051, "protocol": "grpc"}, "connectionPool": {"grpc": {"maxRequests": 9}},
         "timeout": {"grpc": {"perRequest": MS}}}]},
    {"backends": [{"virtualService": {"virtualServiceName": "a"}}]},
    with_(NODE, f"{L0}.tls", {"mode": "PERMISSIVE", "certificate": SDS, "validation": {
        "trust": SDS, "subjectAlternativeNames": {"match": {"exact": ["spiffe://d/ns/n/sa/front"]}}}}),
    with_(NODE, f"{L0}.tls", {"mode": "DISABLED", "certificate": SDS}),
    with_(NODE, "backendDefaults", {"clientPolicy": {"tls": {"enforce": True, "certificate": SDS,
                                                             "validation": {"trust": SDS}}}}),
])
def test_virtual_node_specs_app_mesh_accepts_pass_unchanged(spec: dict[str, Any]):
    assert check_virtual_node_spec(copy.deepcopy(spec)) == spec


@pytest.mark.parametrize("spec, words", [
    (with_(NODE, "listeners", NODE["listeners"] * 2), "at most one listener"),
    (with_(NODE, "serviceDiscovery", None), "must have serviceDiscovery"),
    (with_(NODE, "serviceDiscovery.dns", {"hostname": "x"}), "exactly one of awsCloudMap, dns"),
    (with_(NODE, "serviceDiscovery.awsCloudMap.namespaceName", " "), "namespaceName must not be empty"),
    (with_(NODE, "serviceDiscovery.awsCloudMap.serviceName", ""), "serviceName must not be empty"),
    (with_(NODE, "serviceDiscovery.awsCloudMap.attributes.1.key", "ECS_TASK_DEFINITION_FAMILY"), "twice"),
    (with_(NODE, "serviceDiscovery", {"dns": {"hostname": ""}}), "hostname must not be empty"),
    (with_(NODE, f"{L0}.connectionPool", {"tcp": {"maxConnections": 1}}), "does not match"),
    (with_(NODE, f"{L0}.connectionPool", {"http": {"maxConnections": 1}, "tcp": {"maxConnections": 1}}),
     "exactly one of"),
    (with_(NODE, f"{L0}.timeout", {"grpc": {"perRequest": MS}}), "does not match"),
    (with_(NODE, f"{L0}.timeout.http.perRequest", {"unit": "minutes", "value": 1}), "unit (s or ms)"),
    (with_(NODE, f"{L0}.timeout.http.idle", {"unit": "s"}), "unit (s or ms) and a value"),
    (with_(NODE, f"{L0}.outlierDetection.interval", {"unit": "s", "value": 0}), "above zero"),
    (with_(NODE, f"{L0}.outlierDetection.baseEjectionDuration", {"value": 3}), "unit (s or ms)"),
    (with_(NODE, f"{L0}.healthCheck.path", "health"), "start with '/'"),
    (with_(NODE, f"{L0}.tls", {"mode": "STRICT", "certificate": {"file": {"certificateChain": "/c",
                                                                         "privateKey": "/k"}}}), "give sds"),
    (with_(NODE, f"{L0}.tls", {"mode": "STRICT", "certificate": {"acm": {"certificateArn": "a"}}}),
     "give sds"),
    (with_(NODE, f"{L0}.tls", {"mode": "LOOSE", "certificate": SDS}), "mode must be one of"),
    (with_(NODE, f"{L0}.tls", {"mode": "STRICT", "certificate": SDS,
                               "validation": {"trust": {"file": {"certificateChain": "/c"}}}}), "give sds"),
    (with_(NODE, f"{L0}.tls", {"mode": "STRICT", "certificate": SDS, "validation": {
        "trust": SDS, "subjectAlternativeNames": {"match": {"exact": []}}}}), "at least one name"),
    (with_(NODE, "backends", NODE["backends"] * 2), "named twice"),
    (with_(NODE, "backends.0.virtualService.virtualServiceName", ""), "must not be empty"),
    (with_(NODE, "backendDefaults", {"clientPolicy": {"tls": {"validation": {}}}}), "exactly one of acm"),
    (with_(NODE, "backendDefaults", {"clientPolicy": {"tls": {"validation": {
        "trust": {"acm": {"certificateAuthorityArns": ["a"]}}}}}}), "give sds"),
])
def test_bad_virtual_nodes_are_refused_with_a_message_naming_the_fault(spec: dict[str, Any], words: str):
    with pytest.raises(BadRequestException) as e:
        check_virtual_node_spec(spec)
    assert words in str(e.value)


def test_a_virtual_service_has_at_most_one_provider():
    assert check_virtual_service_spec(None) == {}
    node = {"provider": {"virtualNode": {"virtualNodeName": "web-v1"}}}
    assert check_virtual_service_spec(node) == node
    assert references(VIRTUAL_SERVICE, node) == {(VIRTUAL_NODE, "web-v1")}
    for bad in ({"provider": {}}, {"provider": {**node["provider"],
                                                "virtualRouter": {"virtualRouterName": "r"}}}):
        with pytest.raises(BadRequestException):
            check_virtual_service_spec(bad)


@pytest.fixture
def apis(tmp_path: Path) -> tuple[AppMesh, dict[str, Any]]:
    data = Data(Store.open(tmp_path / "state.db", MIGRATIONS))
    ops = {**Routers(data, "us-east-1", "0").operations(), **Nodes(data, "us-east-1", "0").operations()}
    return AppMesh(data, "us-east-1", "0"), {k: h for k, (h, _) in ops.items()}


async def test_virtual_node_lifecycle_shapes_and_changes(apis):
    mesh_api, ops = apis
    await mesh_api.create_mesh(CALL, {"meshName": "m"})
    store = mesh_api.data.store
    start = store.current_revision()
    node = {"meshName": "m", "virtualNodeName": "web-v1", "spec": NODE}
    created = (await ops["CreateVirtualNode"](CALL, node))["virtualNode"]
    assert created["virtualNodeName"] == "web-v1" and created["spec"] == NODE
    assert created["metadata"]["arn"] == "arn:aws:appmesh:us-east-1:0:mesh/m/virtualNode/web-v1"
    assert created["status"] == {"status": "ACTIVE"}
    with pytest.raises(ConflictException):
        await ops["CreateVirtualNode"](CALL, node)
    spec2 = with_(NODE, "serviceDiscovery.awsCloudMap.attributes", [{"key": "VERSION", "value": "v2"}])
    updated = (await ops["UpdateVirtualNode"](CALL, {**node, "spec": spec2}))["virtualNode"]
    assert updated["metadata"]["version"] == 2
    got = (await ops["DescribeVirtualNode"](CALL, node))["virtualNode"]
    assert got["spec"] == spec2 and got["metadata"]["uid"] == created["metadata"]["uid"]
    listed = (await ops["ListVirtualNodes"](CALL, {"meshName": "m"}))["virtualNodes"]
    assert [(n["virtualNodeName"], n["version"], "uid" in n) for n in listed] == [("web-v1", 2, False)]
    assert mesh_api.data.all_resources(VIRTUAL_NODE)[0].spec == spec2
    deleted = (await ops["DeleteVirtualNode"](CALL, node))["virtualNode"]
    assert deleted["status"] == {"status": "DELETED"}
    assert [(c.topic, c.key) for c in store.changes_since(start)] == [(TOPICS[VIRTUAL_NODE], "m/web-v1")] * 3
    for op in ("DescribeVirtualNode", "UpdateVirtualNode", "DeleteVirtualNode"):
        with pytest.raises(NotFoundException):
            await ops[op](CALL, node)
    with pytest.raises(NotFoundException):
        await ops["ListVirtualNodes"](CALL, {"meshName": "other"})


async def test_providers_and_targets_must_exist_and_are_in_use_while_named(apis):
    mesh_api, ops = apis
    await mesh_api.create_mesh(CALL, {"meshName": "m"})
    vs = {"meshName": "m", "virtualServiceName": "web.shop.local",
          "spec": {"provider": {"virtualNode": {"virtualNodeName": "web-v1"}}}}
    with pytest.raises(NotFoundException) as e:
        await ops["CreateVirtualService"](CALL, vs)
    assert "Virtual node web-v1 not found" in str(e.value)
    assert (await ops["ListVirtualServices"](CALL, {"meshName": "m"}))["virtualServices"] == []
    await ops["CreateVirtualNode"](CALL, {"meshName": "m", "virtualNodeName": "web-v1"})
    created = (await ops["CreateVirtualService"](CALL, vs))["virtualService"]
    assert created["metadata"]["arn"].endswith(":mesh/m/virtualService/web.shop.local")
    node = {"meshName": "m", "virtualNodeName": "web-v1"}
    with pytest.raises(ResourceInUseException) as e:
        await ops["DeleteVirtualNode"](CALL, node)
    assert "virtual service m/web.shop.local" in str(e.value)
    router = {"meshName": "m", "virtualRouterName": "web"}
    by_router = {**vs, "spec": {"provider": {"virtualRouter": {"virtualRouterName": "web"}}}}
    with pytest.raises(NotFoundException):
        await ops["UpdateVirtualService"](CALL, by_router)
    await ops["CreateVirtualRouter"](CALL, router)
    assert (await ops["UpdateVirtualService"](CALL, by_router))["virtualService"]["metadata"]["version"] == 2
    with pytest.raises(ResourceInUseException):
        await ops["DeleteVirtualRouter"](CALL, router)
    route = {**router, "routeName": "r", "spec": {"tcpRoute": {"action": {"weightedTargets": [
        {"virtualNode": "web-v1", "weight": 50}, {"virtualNode": "web-v2", "weight": 50}]}}}}
    with pytest.raises(NotFoundException) as e:
        await ops["CreateRoute"](CALL, route)
    assert "web-v2" in str(e.value)
    await ops["CreateVirtualNode"](CALL, {"meshName": "m", "virtualNodeName": "web-v2"})
    await ops["CreateRoute"](CALL, route)
    await ops["UpdateVirtualService"](CALL, {**vs, "spec": {}})  # no provider: the node is named by the route
    with pytest.raises(ResourceInUseException) as e:
        await ops["DeleteVirtualNode"](CALL, {"meshName": "m", "virtualNodeName": "web-v2"})
    assert "route m/web/r" in str(e.value)
    await ops["DeleteRoute"](CALL, route)
    for name in ("web-v1", "web-v2"):
        await ops["DeleteVirtualNode"](CALL, {"meshName": "m", "virtualNodeName": name})
    await ops["DeleteVirtualRouter"](CALL, router)
    with pytest.raises(ResourceInUseException):
        await mesh_api.delete_mesh(CALL, {"meshName": "m"})  # the virtual service is left
    await ops["DeleteVirtualService"](CALL, vs)
    await mesh_api.delete_mesh(CALL, {"meshName": "m"})


async def test_bad_specs_store_nothing(apis):
    mesh_api, ops = apis
    await mesh_api.create_mesh(CALL, {"meshName": "m"})
    start = mesh_api.data.store.current_revision()
    with pytest.raises(BadRequestException):
        await ops["CreateVirtualNode"](CALL, {"meshName": "m", "virtualNodeName": "n",
                                              "spec": with_(NODE, "serviceDiscovery", None)})
    with pytest.raises(NotFoundException):
        await ops["CreateVirtualNode"](CALL, {"meshName": "nope", "virtualNodeName": "n"})
    assert mesh_api.data.store.changes_since(start) == []
    assert (await ops["ListVirtualNodes"](CALL, {"meshName": "m"}))["virtualNodes"] == []
