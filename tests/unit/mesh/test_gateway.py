"""Virtual gateways, pure: gateway route → Envoy route (mesh.gateway), stored specs → gateways
(mesh.desired) and the spec checks (mesh.appmesh_gateways)."""

from __future__ import annotations

import pytest
import re2

from mesh.appmesh_errors import BadRequestException
from mesh.appmesh_gateways import check_gateway_route_spec, check_virtual_gateway_spec, parse_ranges
from mesh.desired import AppMeshSpecs, build
from mesh.gateway import (
    Gateway,
    GatewayRoute,
    combine,
    envoy_routes,
    gateway_node,
    gateway_snapshot,
    hostname_regex,
)
from mesh.model import Endpoint, HeaderMatch, Match, QueryMatch, Rule, Target
from mesh.snapshot import LISTENER, ROUTE
from tests.unit.mesh.desired_fakes import instance

ROOT = Match()
CANARY = Rule((Target("am/m/web-v1", 90), Target("am/m/web-v2", 10)))


def route(
    match: Match = ROOT, rewrite: str | None = None, rules: tuple[Rule, ...] = (CANARY,), **kw: object
) -> GatewayRoute:
    return GatewayRoute("r", "web.local", rules, match, rewrite=rewrite, **kw)  # type: ignore[arg-type]


def test_a_root_rule_takes_the_gateway_match_and_rewrite():
    got = combine(route(Match(prefix="/shop/"), "/"), CANARY)
    assert got == (Match(prefix="/shop/"), "/")


def test_a_rule_prefix_is_read_on_the_rewritten_path():
    rule = Rule(CANARY.targets, Match(prefix="/api/"))
    # /shop/ -> /: the rule's /api/ is /shop/api/ coming in, rewritten to /api/
    assert combine(route(Match(prefix="/shop/"), "/"), rule) == (Match(prefix="/shop/api/"), "/api/")
    # no rewrite: the rule's prefix under the gateway's
    assert combine(route(Match(prefix="/api/"), None), Rule(CANARY.targets, Match(prefix="/api/v1/"))) == (
        Match(prefix="/api/v1/"),
        None,
    )
    # rewritten to /api/v2/, which the rule's /api/ covers: everything
    assert combine(route(Match(prefix="/x/"), "/api/v2/"), rule) == (Match(prefix="/x/"), "/api/v2/")
    # rewritten to /other/: the rule never matches
    assert isinstance(combine(route(Match(prefix="/x/"), "/other/"), rule), str)


def test_an_exact_rule_path_under_a_prefix_and_rules_under_an_exact_path():
    exact = Rule(CANARY.targets, Match(prefix=None, path="/health"))
    assert combine(route(Match(prefix="/shop/"), "/"), exact) == (
        Match(prefix=None, path="/shop/health"),
        "/health",
    )
    gw = route(Match(prefix=None, path="/in"), "/health")
    assert combine(gw, exact) == (Match(prefix=None, path="/in"), "/health")
    assert isinstance(combine(gw, Rule(CANARY.targets, Match(prefix=None, path="/other"))), str)
    assert combine(gw, Rule(CANARY.targets, Match(prefix=None, regex="/h.*"))) == (
        Match(prefix=None, path="/in"),
        "/health",
    )


def test_unsupported_combinations_are_named():
    regex_rule = Rule(CANARY.targets, Match(prefix=None, regex="/a.*"))
    assert "regex" in combine(route(Match(prefix="/x/"), "/"), regex_rule)  # type: ignore[operator]
    gw_regex = route(Match(prefix=None, regex="/a.*"))
    assert "regex" in combine(gw_regex, Rule(CANARY.targets, Match(prefix="/b/")))  # type: ignore[operator]
    assert "method" in combine(route(Match(method="GET")), Rule(CANARY.targets, Match(method="POST")))  # type: ignore[operator]


def test_headers_method_query_and_hostname_all_hold():
    rule = Rule(
        CANARY.targets, Match(headers=(HeaderMatch("x-canary", exact="1"),), query=(QueryMatch("v"),))
    )
    gw = route(
        Match(headers=(HeaderMatch("x-team", prefix="a"),), method="GET"), hostname=("suffix", "example.com")
    )
    match, _ = combine(gw, rule)  # type: ignore[misc]
    assert [h.name for h in match.headers] == ["x-team", "x-canary", ":authority"]
    assert match.method == "GET" and match.query == (QueryMatch("v"),)


def test_hostname_regex_ignores_case_and_port():
    exact, suffix = hostname_regex("exact", "a.example.com"), hostname_regex("suffix", "example.com")
    assert re2.fullmatch(exact, "A.Example.COM:8080") and not re2.fullmatch(exact, "xa.example.com")
    assert not re2.fullmatch(exact, "a-example.com")  # the dot is a dot
    assert re2.fullmatch(suffix, "shop.example.com") and not re2.fullmatch(suffix, "example.org")


def test_envoy_routes_rewrite_prefix_and_host_and_keep_the_weights():
    gw = Gateway(
        gateway_node("m", "gw"),
        "127.0.0.1",
        8080,
        "http",
        (
            route(Match(prefix="/shop/"), "/", hostname=("exact", "a.example.com")),
            GatewayRoute("keep", "web.local", (CANARY,), Match(prefix="/raw/"), host_rewrite=False),
        ),
    )
    routes, left = envoy_routes(gw)
    assert not left and len(routes) == 2
    first, second = routes
    assert first.match.prefix == "/shop/" and first.route.prefix_rewrite == "/"
    assert first.route.host_rewrite_literal == "web.local"
    assert [h.name for h in first.match.headers] == [":authority"]
    assert [(c.name, c.weight.value) for c in first.route.weighted_clusters.clusters] == [
        ("am/m/web-v1", 90),
        ("am/m/web-v2", 10),
    ]
    assert second.route.prefix_rewrite == "" and second.route.host_rewrite_literal == ""


def test_the_gateway_snapshot_is_consistent_and_reaches_only_its_services():
    from mesh.model import Service

    gw = Gateway(gateway_node("m", "gw"), "0.0.0.0", 8080, "http", (route(Match(prefix="/"), "/"),))
    services = {n: Service(n) for n in ("am/m/web-v1", "am/m/web-v2", "am/m/other")}
    snap = gateway_snapshot(gw, services, {"am/m/web-v1": [Endpoint("10.0.0.2", 8080, instance="t1")]})
    assert snap.consistent(), snap.problems()
    assert snap.names(LISTENER) == {"gateway_8080"} and snap.names(ROUTE) == {"gateway_8080"}
    [listener] = snap.resources[LISTENER]
    assert listener.address.socket_address.port_value == 8080
    assert snap.members == {"t1"}
    assert len(snap.resources["type.googleapis.com/envoy.config.cluster.v3.Cluster"]) == 2


def test_build_reads_gateways_with_app_mesh_defaults():
    mesh = "m"
    node = {
        "listeners": [{"portMapping": {"port": 8080, "protocol": "http"}}],
        "serviceDiscovery": {"awsCloudMap": {"namespaceName": "ns", "serviceName": "web"}},
    }
    target = {"target": {"virtualService": {"virtualServiceName": "web.ns"}}}
    specs = AppMeshSpecs(
        meshes=(mesh,),
        virtual_nodes={mesh: {"web-v1": node}},
        virtual_services={mesh: {"web.ns": {"provider": {"virtualNode": {"virtualNodeName": "web-v1"}}}}},
        virtual_gateways={mesh: {"gw": {"listeners": [{"portMapping": {"port": 8100, "protocol": "http"}}]}}},
        gateway_routes={
            mesh: {
                "gw": {
                    "b": {
                        "priority": 2,
                        "httpRoute": {
                            "match": {"prefix": "/b/"},
                            "action": {
                                **target,
                                "rewrite": {
                                    "prefix": {"defaultPrefix": "DISABLED"},
                                    "hostname": {"defaultTargetHostname": "DISABLED"},
                                },
                            },
                        },
                    },
                    "a": {"priority": 1, "httpRoute": {"match": {"prefix": "/a/"}, "action": target}},
                    "host": {
                        "httpRoute": {"match": {"hostname": {"suffix": "example.com"}}, "action": target}
                    },
                    "exact": {
                        "httpRoute": {
                            "match": {"path": {"exact": "/x"}},
                            "action": {**target, "rewrite": {"path": {"exact": "/y"}}},
                        }
                    },
                    "grpc": {
                        "grpcRoute": {"match": {"serviceName": "S"}, "action": target}
                    },  # not for an http listener
                    "lost": {
                        "httpRoute": {
                            "match": {"prefix": "/"},
                            "action": {"target": {"virtualService": {"virtualServiceName": "gone.ns"}}},
                        }
                    },
                }
            }
        },
    )
    instances = [instance("t1", "10.0.0.2")]
    desired = build(
        [],
        {},
        specs,
        lambda ns, svc: instances if (ns, svc) == ("ns", "web") else None,
        gateway_host="127.0.0.1",
    )
    [gw] = desired.gateways
    assert (gw.node, gw.host, gw.port) == ("mesh/m/virtualGateway/gw", "127.0.0.1", 8100)
    assert [r.name for r in gw.routes] == ["a", "b", "exact", "host"]
    a, b, exact, host = gw.routes
    assert (a.rewrite, a.host_rewrite) == ("/", True)
    assert (b.rewrite, b.host_rewrite) == (None, False)
    assert (exact.match.path, exact.rewrite) == ("/x", "/y")
    assert host.hostname == ("suffix", "example.com") and host.match.prefix == "/" and host.rewrite is None
    assert desired.endpoints["am/m/web-v1"] == (Endpoint("10.0.0.2", 8080, instance="t1"),)
    assert any("gw/grpc: not a httpRoute" in p for p in desired.problems)
    assert any("gone.ns" in p for p in desired.problems)


def test_virtual_gateway_spec_checks():
    ports = parse_ranges("8000-8999,443")
    ok = {"listeners": [{"portMapping": {"port": 8080, "protocol": "http"}}]}
    assert check_virtual_gateway_spec(ok, ports) == ok
    assert check_virtual_gateway_spec(
        {"listeners": [{"portMapping": {"port": 443, "protocol": "http2"}}]}, ports
    )
    bad = [
        {"listeners": []},
        {"listeners": [ok["listeners"][0], ok["listeners"][0]]},
        {"listeners": [{"portMapping": {"port": 80, "protocol": "http"}}]},
        {"listeners": [{"portMapping": {"port": 8080, "protocol": "http"}, "tls": {"mode": "STRICT"}}]},
        {
            "listeners": [
                {"portMapping": {"port": 8080, "protocol": "http"}, "healthCheck": {"protocol": "http"}}
            ]
        },
        {
            "listeners": [
                {
                    "portMapping": {"port": 8080, "protocol": "http"},
                    "healthCheck": {"protocol": "http", "path": "health"},
                }
            ]
        },
    ]
    for spec in bad:
        with pytest.raises(BadRequestException):
            check_virtual_gateway_spec(spec, ports)


def _http(match: dict, rewrite: dict | None = None) -> dict:
    action: dict = {"target": {"virtualService": {"virtualServiceName": "web.local"}}}
    if rewrite:
        action["rewrite"] = rewrite
    return {"httpRoute": {"match": match, "action": action}}


@pytest.mark.parametrize(
    "spec",
    [
        _http({"prefix": "/"}),
        _http({"path": {"exact": "/a"}}, {"path": {"exact": "/b"}}),
        _http({"path": {"regex": "/a/[0-9]+"}}),
        _http(
            {
                "hostname": {"exact": "a.example.com"},
                "headers": [{"name": "x", "match": {"prefix": "a"}}],
                "queryParameters": [{"name": "q", "match": {"exact": "1"}}],
                "method": "GET",
            }
        ),
        _http(
            {"prefix": "/a/"}, {"prefix": {"value": "/b/"}, "hostname": {"defaultTargetHostname": "DISABLED"}}
        ),
        {
            "grpcRoute": {
                "match": {"serviceName": "S", "metadata": [{"name": "m", "match": {"exact": "v"}}]},
                "action": {"target": {"virtualService": {"virtualServiceName": "web.local"}}},
            }
        },
    ],
)
def test_gateway_route_specs_accepted(spec: dict):
    assert check_gateway_route_spec(spec) == spec


@pytest.mark.parametrize(
    "spec,words",
    [
        ({}, "exactly one of"),
        (_http({"prefix": "a"}), "must start with '/'"),
        (_http({"prefix": "/", "path": {"exact": "/a"}}), "not both"),
        (_http({"method": "GET"}), "a prefix, a path or a hostname"),
        (_http({"path": {"exact": "a"}}), "must start with '/'"),
        (_http({"path": {"regex": "(a"}}), "RE2"),
        (_http({"hostname": {"exact": "a", "suffix": "b"}}), "exactly one of exact, suffix"),
        (_http({"hostname": {"exact": " "}}), "must not be empty"),
        (_http({"path": {"exact": "/a"}}, {"prefix": {"value": "/b/"}}), "needs a prefix match"),
        (_http({"prefix": "/a/"}, {"path": {"exact": "/b"}}), "needs an exact path match"),
        (_http({"prefix": "/a/"}, {"prefix": {"value": "b"}}), "must start with '/'"),
        (
            _http({"prefix": "/", "headers": [{"name": "x", "match": {"range": {"start": 5, "end": 1}}}]}),
            "range",
        ),
    ],
)
def test_gateway_route_specs_refused(spec: dict, words: str):
    with pytest.raises(BadRequestException, match=words):
        check_gateway_route_spec(spec)


def test_a_grpc_gateway_route_matches_the_service_and_metadata():
    target = {"target": {"virtualService": {"virtualServiceName": "web.ns"}}}
    spec = {
        "grpcRoute": {
            "match": {
                "serviceName": "shop.Cart",
                "metadata": [{"name": "x-tier", "match": {"exact": "gold"}}],
                "hostname": {"exact": "api.example.com"},
            },
            "action": target,
        }
    }
    specs = AppMeshSpecs(
        meshes=("m",),
        virtual_nodes={
            "m": {
                "cart": {
                    "listeners": [{"portMapping": {"port": 50051, "protocol": "grpc"}}],
                    "serviceDiscovery": {"awsCloudMap": {"namespaceName": "ns", "serviceName": "cart"}},
                }
            }
        },
        virtual_services={"m": {"web.ns": {"provider": {"virtualNode": {"virtualNodeName": "cart"}}}}},
        virtual_gateways={"m": {"gw": {"listeners": [{"portMapping": {"port": 8200, "protocol": "grpc"}}]}}},
        gateway_routes={"m": {"gw": {"cart": spec}}},
    )
    [gw] = build([], {}, specs, lambda ns, svc: None).gateways
    [entry], left = envoy_routes(gw)
    assert not left and gw.protocol == "grpc"
    assert entry.match.prefix == "/shop.Cart/" and entry.route.prefix_rewrite == ""
    assert [h.name for h in entry.match.headers] == ["x-tier", ":authority"]
    assert [c.name for c in entry.route.weighted_clusters.clusters] == ["am/m/cart"]
