"""App Mesh virtual routers and weighted routes through the real ``aws appmesh`` CLI and boto3."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from tests.integration.test_appmesh_meshes import unchecked_client
from tests.support.discovery import unique
from tests.support.server import Dockyard

LISTENERS = {"listeners": [{"portMapping": {"port": 8080, "protocol": "http"}}]}


def http_route(*targets: tuple[str, int], prefix: str = "/") -> dict:
    return {"httpRoute": {"match": {"prefix": prefix}, "action": {
        "weightedTargets": [{"virtualNode": n, "weight": w} for n, w in targets]}}}


def error(excinfo: pytest.ExceptionInfo) -> tuple[str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_router_and_weighted_route_lifecycle_through_the_aws_cli(dockyard: Dockyard):
    mesh = unique("rt")
    dockyard.aws("appmesh", "create-mesh", "--mesh-name", mesh)
    router = dockyard.aws("appmesh", "create-virtual-router", "--mesh-name", mesh, "--virtual-router-name",
                          "web", "--spec", json.dumps(LISTENERS))["virtualRouter"]
    assert router["status"] == {"status": "ACTIVE"} and router["spec"] == LISTENERS
    arn = router["metadata"]["arn"]
    assert arn == f"arn:aws:appmesh:us-east-1:000000000000:mesh/{mesh}/virtualRouter/web"
    for node in ("web-v1", "web-v2"):
        dockyard.aws("appmesh", "create-virtual-node", "--mesh-name", mesh, "--virtual-node-name", node,
                     "--spec", "{}")
    route = dockyard.aws("appmesh", "create-route", "--mesh-name", mesh, "--virtual-router-name", "web",
                         "--route-name", "canary",
                         "--spec", json.dumps(http_route(("web-v1", 90), ("web-v2", 10))))["route"]
    assert route["routeName"] == "canary" and route["virtualRouterName"] == "web"
    assert route["metadata"]["arn"].endswith(f"mesh/{mesh}/virtualRouter/web/route/canary")
    listed = dockyard.aws("appmesh", "list-routes", "--mesh-name", mesh, "--virtual-router-name", "web")
    assert [r["routeName"] for r in listed["routes"]] == ["canary"]
    shifted = dockyard.aws("appmesh", "update-route", "--mesh-name", mesh, "--virtual-router-name", "web",
                           "--route-name", "canary",
                           "--spec", json.dumps(http_route(("web-v1", 50), ("web-v2", 50))))["route"]
    assert shifted["metadata"]["version"] == 2
    got = dockyard.aws("appmesh", "describe-route", "--mesh-name", mesh, "--virtual-router-name", "web",
                       "--route-name", "canary")["route"]
    assert [t["weight"] for t in got["spec"]["httpRoute"]["action"]["weightedTargets"]] == [50, 50]
    routers = dockyard.aws("appmesh", "list-virtual-routers", "--mesh-name", mesh)["virtualRouters"]
    assert [r["virtualRouterName"] for r in routers] == ["web"]
    deleted = dockyard.aws("appmesh", "delete-route", "--mesh-name", mesh, "--virtual-router-name", "web",
                           "--route-name", "canary")["route"]
    assert deleted["status"] == {"status": "DELETED"}
    dockyard.aws("appmesh", "delete-virtual-router", "--mesh-name", mesh, "--virtual-router-name", "web")
    for node in ("web-v1", "web-v2"):
        dockyard.aws("appmesh", "delete-virtual-node", "--mesh-name", mesh, "--virtual-node-name", node)
    dockyard.aws("appmesh", "delete-mesh", "--mesh-name", mesh)


def test_bad_routes_and_deletes_in_use_get_app_mesh_errors(dockyard: Dockyard):
    am = dockyard.client("appmesh")
    mesh = unique("bad")
    with pytest.raises(ClientError) as e:
        am.create_virtual_router(meshName=mesh, virtualRouterName="web", spec=LISTENERS)
    assert error(e) == ("NotFoundException", 404)
    am.create_mesh(meshName=mesh)
    am.create_virtual_router(meshName=mesh, virtualRouterName="web", spec=LISTENERS)
    for node in ("a", "b"):
        am.create_virtual_node(meshName=mesh, virtualNodeName=node, spec={})
    with pytest.raises(ClientError) as e:
        am.create_virtual_router(meshName=mesh, virtualRouterName="web", spec=LISTENERS)
    assert error(e) == ("ConflictException", 409)
    with pytest.raises(ClientError) as e:
        am.create_route(meshName=mesh, virtualRouterName="nope", routeName="r", spec=http_route(("a", 1)))
    assert error(e) == ("NotFoundException", 404)
    unchecked = unchecked_client(dockyard)  # botocore would refuse some of these itself
    for spec in (http_route(("a", 0), ("b", 0)), http_route(("a", 101)), http_route(("a", -1)), http_route(),
                 http_route(("a", 1), prefix="no-slash"), {"tcpRoute": {"action": {"weightedTargets": []}}}):
        with pytest.raises(ClientError) as e:
            unchecked.create_route(meshName=mesh, virtualRouterName="web", routeName="r", spec=spec)
        assert error(e) == ("BadRequestException", 400), spec
    am.create_route(meshName=mesh, virtualRouterName="web", routeName="r", spec=http_route(("a", 1)))
    with pytest.raises(ClientError) as e:
        am.create_route(meshName=mesh, virtualRouterName="web", routeName="r", spec=http_route(("a", 1)))
    assert error(e) == ("ConflictException", 409)
    for delete in (lambda: am.delete_mesh(meshName=mesh),
                   lambda: am.delete_virtual_router(meshName=mesh, virtualRouterName="web")):
        with pytest.raises(ClientError) as e:
            delete()
        assert error(e) == ("ResourceInUseException", 409)
    with pytest.raises(ClientError) as e:
        am.describe_route(meshName=mesh, virtualRouterName="web", routeName="gone")
    assert error(e) == ("NotFoundException", 404)


HTTP_FULL = {"priority": 10, "httpRoute": {
    "match": {"path": {"regex": "^/api/v[0-9]+/.*$"}, "method": "POST", "scheme": "http",
              "headers": [{"name": "x-canary", "match": {"exact": "yes"}},
                          {"name": "x-user", "match": {"prefix": "beta-"}, "invert": True},
                          {"name": "x-host", "match": {"suffix": ".local"}},
                          {"name": "x-re", "match": {"regex": "a+b"}},
                          {"name": "x-n", "match": {"range": {"start": 1, "end": 10}}}],
              "queryParameters": [{"name": "debug", "match": {"exact": "1"}}]},
    "action": {"weightedTargets": [{"virtualNode": "a", "weight": 90}, {"virtualNode": "b", "weight": 10}]},
    "retryPolicy": {"maxRetries": 3, "perRetryTimeout": {"unit": "ms", "value": 500},
                    "httpRetryEvents": ["server-error", "gateway-error"],
                    "tcpRetryEvents": ["connection-error"]},
    "timeout": {"perRequest": {"unit": "s", "value": 2}, "idle": {"unit": "s", "value": 60}}}}
GRPC = {"grpcRoute": {
    "match": {"serviceName": "shop.Cart", "methodName": "Add", "metadata": [{"name": "tenant",
                                                                          "match": {"exact": "a"}}]},
    "action": {"weightedTargets": [{"virtualNode": "a", "weight": 100}]},
    "retryPolicy": {"maxRetries": 2, "perRetryTimeout": {"unit": "s", "value": 1},
                    "grpcRetryEvents": ["unavailable", "deadline-exceeded"]},
    "timeout": {"perRequest": {"unit": "s", "value": 5}}}}
TCP = {"tcpRoute": {"action": {"weightedTargets": [{"virtualNode": "a", "weight": 50},
                                                   {"virtualNode": "b", "weight": 50}]},
                    "timeout": {"idle": {"unit": "s", "value": 30}}}}


def test_every_match_and_action_feature_round_trips(dockyard: Dockyard):
    am = dockyard.client("appmesh")
    mesh = unique("match")
    am.create_mesh(meshName=mesh)
    for node in ("a", "b"):
        am.create_virtual_node(meshName=mesh, virtualNodeName=node, spec={})
    am.create_virtual_router(meshName=mesh, virtualRouterName="web", spec=LISTENERS)
    http2 = {"http2Route": {**HTTP_FULL["httpRoute"], "match": {"path": {"exact": "/checkout"}}}}
    for name, spec in (("http", HTTP_FULL), ("http2", http2), ("grpc", GRPC), ("tcp", TCP)):
        created = am.create_route(meshName=mesh, virtualRouterName="web", routeName=name, spec=spec)["route"]
        assert created["spec"] == spec, name
        got = am.describe_route(meshName=mesh, virtualRouterName="web", routeName=name)["route"]
        assert got["spec"] == spec, name
    listed = am.list_routes(meshName=mesh, virtualRouterName="web")["routes"]
    assert sorted(r["routeName"] for r in listed) == ["grpc", "http", "http2", "tcp"]


def test_bad_route_matches_and_targets_are_refused_before_anything_is_stored(dockyard: Dockyard):
    am = dockyard.client("appmesh")
    mesh = unique("badm")
    am.create_mesh(meshName=mesh)
    for node in ("a", "b"):
        am.create_virtual_node(meshName=mesh, virtualNodeName=node, spec={})
    am.create_virtual_router(meshName=mesh, virtualRouterName="web", spec=LISTENERS)
    with pytest.raises(ClientError) as e:
        am.create_route(meshName=mesh, virtualRouterName="web", routeName="r",
                        spec=http_route(("a", 50), ("ghost", 50)))
    assert error(e) == ("NotFoundException", 404)
    assert "ghost" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        am.create_route(meshName="no-such-mesh-x", virtualRouterName="web", routeName="r",
                        spec=http_route(("a", 1)))
    assert error(e) == ("NotFoundException", 404)
    unchecked = unchecked_client(dockyard)

    def http(match: dict) -> dict:
        targets = [{"virtualNode": "a", "weight": 1}]
        return {"httpRoute": {"match": match, "action": {"weightedTargets": targets}}}

    bad = [
        http({"path": {"regex": "(unclosed"}}), http({"path": {"regex": r"(a)\1"}}),
        http({"path": {"regex": "a(?=b)"}}), http({"prefix": "/", "headers": [{"name": "h", "match": {
            "regex": "(?<!x)y"}}]}),
        http({"prefix": "/", "headers": [{"name": "h", "match": {"range": {"start": 9, "end": 1}}}]}),
        http({"prefix": "/", "headers": [{"name": "h", "match": {"exact": "a", "suffix": "b"}}]}),
        http({"prefix": "/", "method": "FETCH"}), http({"path": {"exact": "no-slash"}}),
        http({"prefix": "/", "path": {"exact": "/a"}}),
        http_route(("a", 0), ("b", 0)), http_route(("a", 101)), http_route(("a", 60), ("b", 60)),
        {"httpRoute": {"match": {"prefix": "/"}, "action": {"weightedTargets": [
            {"virtualNode": f"n{i}", "weight": 1} for i in range(11)]}}},
        {"grpcRoute": {"match": {"methodName": "Add"}, "action": {"weightedTargets": [
            {"virtualNode": "a", "weight": 1}]}}},
        {**http_route(("a", 1)), "priority": 1001},
        {"httpRoute": {**http_route(("a", 1))["httpRoute"], "retryPolicy": {
            "maxRetries": 1, "perRetryTimeout": {"unit": "s", "value": 1}}}},
        {"httpRoute": {**http_route(("a", 1))["httpRoute"], "timeout": {"perRequest": {"unit": "min",
                                                                                        "value": 1}}}},
    ]
    for spec in bad:
        with pytest.raises(ClientError) as e:
            unchecked.create_route(meshName=mesh, virtualRouterName="web", routeName="r", spec=spec)
        assert error(e) == ("BadRequestException", 400), spec
    assert am.list_routes(meshName=mesh, virtualRouterName="web")["routes"] == []
