"""The pure parts of ``dockyard mesh``: weights, the node naming rule, route specs, show's shapes."""

from __future__ import annotations

import pytest

from mesh.cli import Problem, parse_weights, resolve_nodes, route_spec, show_mesh, show_rows


def test_weights_parse_and_bad_ones_are_named():
    assert parse_weights(["v1=90", "v2=10"]) == [("v1", 90), ("v2", 10)]
    for bad in (["v1"], ["=3"], ["v1=x"], ["v1=-1"], ["v1=101"], ["v1=1", "v1=2"], []):
        with pytest.raises(Problem):
            parse_weights(bad)


def test_a_label_is_the_node_so_named_else_the_one_ending_in_it():
    nodes = ["v1", "web-v2", "api-v2", "web-v3", "db-v3", "x-v4", "y-v4"]
    got = resolve_nodes("web.shop.local", ["v1", "v2", "v3"], nodes)
    assert got == {"v1": "v1", "v2": "web-v2", "v3": "web-v3"}
    assert resolve_nodes("api.shop.local", ["v2"], nodes) == {"v2": "api-v2"}
    with pytest.raises(Problem) as e:
        resolve_nodes("web.shop.local", ["v4"], nodes)
    assert "x-v4, y-v4" in str(e.value)
    with pytest.raises(Problem) as e:
        resolve_nodes("web.shop.local", ["v1", "v8", "v9"], nodes)
    assert "v8, v9" in str(e.value)


def test_a_new_route_matches_everything_and_an_old_one_keeps_all_but_its_targets():
    assert route_spec(None, "http", [("web-v1", 90), ("web-v2", 10)]) == {"httpRoute": {
        "match": {"prefix": "/"}, "action": {"weightedTargets": [
            {"virtualNode": "web-v1", "weight": 90}, {"virtualNode": "web-v2", "weight": 10}]}}}
    assert route_spec(None, "grpc", [("a", 1)])["grpcRoute"]["match"] == {}
    assert route_spec(None, "tcp", [("a", 1)]) == {"tcpRoute": {"action": {"weightedTargets": [
        {"virtualNode": "a", "weight": 1}]}}}
    old = {"priority": 3, "http2Route": {"match": {"path": {"exact": "/x"}}, "retryPolicy": {"maxRetries": 2},
                                         "action": {"weightedTargets": [{"virtualNode": "a", "weight": 1}]}}}
    new = route_spec(old, "http", [("b", 100)])
    assert new["priority"] == 3 and new["http2Route"]["retryPolicy"] == {"maxRetries": 2}
    assert new["http2Route"]["action"]["weightedTargets"] == [{"virtualNode": "b", "weight": 100}]
    assert old["http2Route"]["action"]["weightedTargets"][0]["virtualNode"] == "a"  # not changed in place


def test_show_gives_providers_weights_and_cloud_map_discovery():
    service = {"virtualServiceName": "web.shop.local",
               "spec": {"provider": {"virtualRouter": {"virtualRouterName": "web-router"}}}}
    router = {"virtualRouterName": "web-router",
              "spec": {"listeners": [{"portMapping": {"port": 8080, "protocol": "http"}}]}}
    route = {"routeName": "web-route", "spec": route_spec(None, "http", [("web-v1", 90), ("web-v2", 10)])}
    node = {"virtualNodeName": "web-v1", "spec": {"serviceDiscovery": {"awsCloudMap": {
        "namespaceName": "shop.local", "serviceName": "web",
        "attributes": [{"key": "VERSION", "value": "v1"}]}}}}
    shown = show_mesh("default", [service], [(router, [route])], [node])
    assert shown["virtualServices"] == [{"name": "web.shop.local", "provider": "virtualRouter/web-router"}]
    assert shown["virtualRouters"][0]["routes"] == [{"name": "web-route", "kind": "httpRoute", "targets": [
        {"virtualNode": "web-v1", "weight": 90}, {"virtualNode": "web-v2", "weight": 10}]}]
    assert shown["virtualNodes"][0]["serviceDiscovery"] == {
        "type": "cloudMap", "namespace": "shop.local", "service": "web", "attributes": {"VERSION": "v1"}}
    details = [(r["kind"], r["detail"]) for r in show_rows([shown])]
    assert details == [("mesh", ""), ("service", "-> virtualRouter/web-router"), ("router", "8080/http"),
                       ("route", "httpRoute web-v1=90 web-v2=10"),
                       ("node", "cloudmap web.shop.local VERSION=v1")]


def test_the_command_module_loads_without_the_server_side():
    """Every ``dockyard`` command builds the parser, so ``mesh.cli`` must stay light."""
    import subprocess
    import sys

    code = ("import sys, mesh.cli; "
            "print(sorted(m for m in ('aiohttp', 'botocore', 'grpc') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
