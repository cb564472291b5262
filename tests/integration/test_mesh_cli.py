"""``dockyard mesh route`` and ``dockyard mesh show --json`` against the session server, checked
with the real ``aws appmesh`` CLI."""

from __future__ import annotations

import json

from tests.support.discovery import unique
from tests.support.server import Dockyard

LISTENER = {"portMapping": {"port": 8080, "protocol": "http"}}


def node_spec(version: str) -> dict:
    return {"listeners": [LISTENER], "serviceDiscovery": {"awsCloudMap": {
        "namespaceName": "shop.local", "serviceName": "web",
        "attributes": [{"key": "VERSION", "value": version}]}}}


def test_mesh_route_creates_the_router_route_and_service_then_shifts_weights(dockyard: Dockyard):
    mesh = unique("cli")
    d = ("--data-dir", str(dockyard.data_dir))
    dockyard.aws("appmesh", "create-mesh", "--mesh-name", mesh)
    for version in ("v1", "v2"):
        dockyard.aws("appmesh", "create-virtual-node", "--mesh-name", mesh, "--virtual-node-name",
                     f"web-{version}", "--spec", json.dumps(node_spec(version)))
    dockyard.aws("appmesh", "create-virtual-service", "--mesh-name", mesh, "--virtual-service-name",
                 "web.shop.local", "--spec", "provider={virtualNode={virtualNodeName=web-v1}}")

    proc = dockyard.cli("mesh", "route", "web.shop.local", "v1=90", "v2=10", "--mesh", mesh, *d)
    assert proc.returncode == 0, proc.stderr
    assert "web-v1 90, web-v2 10" in proc.stdout
    router = dockyard.aws("appmesh", "describe-virtual-router", "--mesh-name", mesh, "--virtual-router-name",
                          "web.shop.local-router")["virtualRouter"]
    assert router["spec"]["listeners"] == [LISTENER]
    route = dockyard.aws("appmesh", "describe-route", "--mesh-name", mesh, "--virtual-router-name",
                         "web.shop.local-router", "--route-name", "web.shop.local-route")["route"]
    assert route["spec"]["httpRoute"]["action"]["weightedTargets"] == [
        {"virtualNode": "web-v1", "weight": 90}, {"virtualNode": "web-v2", "weight": 10}]
    service = dockyard.aws("appmesh", "describe-virtual-service", "--mesh-name", mesh,
                           "--virtual-service-name", "web.shop.local")["virtualService"]
    assert service["spec"]["provider"] == {"virtualRouter": {"virtualRouterName": "web.shop.local-router"}}

    proc = dockyard.cli("mesh", "route", "web.shop.local", "v1=0", "v2=100", "--mesh", mesh, "--json", *d)
    assert proc.returncode == 0, proc.stderr
    shifted = json.loads(proc.stdout)
    assert shifted["metadata"]["version"] == 2
    assert [t["weight"] for t in shifted["spec"]["httpRoute"]["action"]["weightedTargets"]] == [0, 100]

    shown = dockyard.cli("mesh", "show", "--mesh", mesh, "--json", *d)
    assert shown.returncode == 0, shown.stderr
    (got,) = json.loads(shown.stdout)["meshes"]
    assert got["meshName"] == mesh
    assert got["virtualServices"] == [
        {"name": "web.shop.local", "provider": "virtualRouter/web.shop.local-router"}]
    targets = [{"virtualNode": "web-v1", "weight": 0}, {"virtualNode": "web-v2", "weight": 100}]
    assert got["virtualRouters"] == [{
        "name": "web.shop.local-router", "listeners": [LISTENER["portMapping"]],
        "routes": [{"name": "web.shop.local-route", "kind": "httpRoute", "targets": targets}]}]
    assert [(n["name"], n["serviceDiscovery"]["attributes"]) for n in got["virtualNodes"]] == [
        ("web-v1", {"VERSION": "v1"}), ("web-v2", {"VERSION": "v2"})]
    table = dockyard.cli("mesh", "show", "--mesh", mesh, *d)
    assert table.returncode == 0 and "httpRoute web-v1=0 web-v2=100" in table.stdout

    moved = dockyard.cli("mesh", "route", "web.shop.local", "v1=50", "v2=50", "--mesh", mesh,
                         "--port", "9090", *d)
    assert moved.returncode == 0, moved.stderr
    router = dockyard.aws("appmesh", "describe-virtual-router", "--mesh-name", mesh, "--virtual-router-name",
                          "web.shop.local-router")["virtualRouter"]
    assert router["spec"]["listeners"] == [{"portMapping": {"port": 9090, "protocol": "http"}}]


def test_mesh_route_bad_input_is_one_line_and_writes_nothing(dockyard: Dockyard):
    mesh = unique("clibad")
    d = ("--data-dir", str(dockyard.data_dir))
    proc = dockyard.cli("mesh", "route", "api.shop.local", "v1=100", "--mesh", mesh, *d)
    assert proc.returncode == 1 and f"no mesh {mesh}" in proc.stderr
    dockyard.aws("appmesh", "create-mesh", "--mesh-name", mesh)
    dockyard.aws("appmesh", "create-virtual-node", "--mesh-name", mesh, "--virtual-node-name", "api-v1",
                 "--spec", json.dumps(node_spec("v1")))
    proc = dockyard.cli("mesh", "route", "api.shop.local", "v1=50", "v7=25", "v8=25", "--mesh", mesh, *d)
    assert proc.returncode == 1 and "no virtual node for v7, v8" in proc.stderr
    proc = dockyard.cli("mesh", "route", "api.shop.local", "v1=0", "--mesh", mesh, *d)
    assert proc.returncode == 1 and "BadRequestException" in proc.stderr
    proc = dockyard.cli("mesh", "route", "api.shop.local", "v1=ninety", "--mesh", mesh, *d)
    assert proc.returncode == 1 and "LABEL=WEIGHT" in proc.stderr
    assert dockyard.aws("appmesh", "list-virtual-services", "--mesh-name", mesh)["virtualServices"] == []
    assert dockyard.aws("appmesh", "list-virtual-routers", "--mesh-name", mesh)["virtualRouters"] == []
