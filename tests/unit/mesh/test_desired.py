from __future__ import annotations

from mesh.desired import AppMeshSpecs, build
from mesh.model import HeaderMatch, Ingress, Match, Node, Target
from mesh.snapshot import CLUSTER, compute
from tests.unit.mesh.desired_fakes import Alias, ConnectService, Split, Task, TaskIngress, Weight, instance

NS = "shop.local"
WEB = ConnectService(NS, "web", aliases=(Alias("web.shop.local", 80),), per_request_timeout=5.0)
DB = ConnectService(NS, "db", port_name="pg", app_protocol="", aliases=(Alias("db.shop.local", 5432),))
FRONT = Task(
    "arn:task/front-1",
    alias_addresses={"web.shop.local": "127.255.0.1", "db.shop.local": "127.255.0.2"},
    ingress=(TaskIngress("http", 15080, 8080),),
)
INSTANCES = {
    (NS, "web"): [
        instance("t1", "10.0.0.1", ECS_TASK_DEFINITION_REVISION="1"),
        instance("t2", "10.0.0.2", ECS_TASK_DEFINITION_REVISION="2"),
        instance("t3", "10.0.0.3", healthy=False, ECS_TASK_DEFINITION_REVISION="2"),
    ],
    (NS, "db"): [instance("d1", "10.0.1.1", 5432)],
}


def _where(endpoints) -> tuple[tuple[str, int], ...]:
    return tuple((e.address, e.port) for e in endpoints)


def of(found: dict):
    return lambda ns, svc: found.get((ns, svc))


def canary(weights: tuple[int, int] = (90, 10), **route_extra) -> AppMeshSpecs:
    def node(revision: str) -> dict:
        return {
            "serviceDiscovery": {
                "awsCloudMap": {
                    "namespaceName": NS,
                    "serviceName": "web",
                    "attributes": [{"key": "ECS_TASK_DEFINITION_REVISION", "value": revision}],
                }
            },
            "listeners": [
                {
                    "portMapping": {"port": 8080, "protocol": "http"},
                    "outlierDetection": {
                        "maxServerErrors": 3,
                        "interval": {"unit": "s", "value": 10},
                        "baseEjectionDuration": {"unit": "ms", "value": 500},
                        "maxEjectionPercent": 50,
                    },
                    "connectionPool": {"http": {"maxConnections": 7, "maxPendingRequests": 3}},
                }
            ],
        }

    route = {
        "httpRoute": {
            "match": {"prefix": "/"},
            "action": {
                "weightedTargets": [
                    {"virtualNode": "web-v1", "weight": weights[0]},
                    {"virtualNode": "web-v2", "weight": weights[1]},
                ]
            },
            **route_extra,
        }
    }
    return AppMeshSpecs(
        meshes=("m",),
        virtual_nodes={"m": {"web-v1": node("1"), "web-v2": node("2")}},
        virtual_services={
            "m": {"web.shop.local": {"provider": {"virtualRouter": {"virtualRouterName": "r"}}}}
        },
        virtual_routers={"m": {"r": {"listeners": [{"portMapping": {"port": 80, "protocol": "http"}}]}}},
        routes={"m": {"r": {"split": route}}},
    )


def test_service_connect_alone_routes_each_alias_to_its_discovery_service():
    d = build([FRONT], {NS: [WEB, DB]}, AppMeshSpecs(), of(INSTANCES))
    routes = {r.name: r for r in d.config.routes}
    web = routes["web.shop.local"]
    assert (web.port, web.address, web.protocol, web.targets, web.timeout) == (
        80,
        "127.255.0.1",
        "http",
        (Target("sc/shop.local/web", 1),),
        5.0,
    )
    assert routes["db.shop.local"].protocol == "tcp"
    assert _where(d.endpoints["sc/shop.local/web"]) == (("10.0.0.1", 8080), ("10.0.0.2", 8080))
    assert _where(d.endpoints["sc/shop.local/db"]) == (("10.0.1.1", 5432),)
    (client,) = d.config.clients
    assert client.node == FRONT.task_arn and client.routes == ("db.shop.local", "web.shop.local")
    assert client.ingress == (Ingress("http", 15080, 8080, "http"),) and client.egress_port == 15001
    assert d.problems == ()


def _web_instances(family: str = "web") -> dict:
    return {(NS, "web"): [
        instance("t1", "10.0.0.1", ECS_TASK_DEFINITION_FAMILY=family, ECS_TASK_DEFINITION_REVISION="1"),
        instance("t2", "10.0.0.2", ECS_TASK_DEFINITION_FAMILY=family, ECS_TASK_DEFINITION_REVISION="2"),
        instance("t3", "10.0.0.3", ECS_TASK_DEFINITION_FAMILY="other", ECS_TASK_DEFINITION_REVISION="2"),
    ]}


def test_a_deployment_splits_a_service_connect_service_over_revisions_by_weight():
    split = Split((Weight("web", 1, 9000), Weight("web", 2, 1000)))
    web = ConnectService(NS, "web", aliases=(Alias("web.shop.local", 80),), per_request_timeout=5.0,
                         traffic=split)
    d = build([FRONT], {NS: [web]}, AppMeshSpecs(), of(_web_instances()))
    route = next(r for r in d.config.routes if r.name == "web.shop.local")
    assert route.targets == (Target("sc/shop.local/web", 0), Target("sc/shop.local/web@web:1", 9000),
                             Target("sc/shop.local/web@web:2", 1000))
    assert route.timeout == 5.0
    assert _where(d.endpoints["sc/shop.local/web@web:1"]) == (("10.0.0.1", 8080),)
    assert _where(d.endpoints["sc/shop.local/web@web:2"]) == (("10.0.0.2", 8080),)  # not family other's


def test_test_traffic_goes_to_the_test_revision_by_header_first():
    split = Split((Weight("web", 1, 10000), Weight("web", 2, 0)), "web", 2, (("x-stage", "green"),))
    web = ConnectService(NS, "web", aliases=(Alias("web.shop.local", 80),), traffic=split)
    d = build([FRONT], {NS: [web]}, AppMeshSpecs(), of(_web_instances()))
    route = next(r for r in d.config.routes if r.name == "web.shop.local")
    test, production = route.rules
    assert test.match.headers == (HeaderMatch("x-stage", exact="green"),)
    assert test.targets == (Target("sc/shop.local/web@web:2", 1),)
    assert production.match == Match() and [t.weight for t in production.targets] == [0, 10000, 0]
    clusters = compute(d.config, d.endpoints, Node(FRONT.task_arn)).resources[CLUSTER]
    assert {"sc/shop.local/web@web:1", "sc/shop.local/web@web:2"} <= {c.name for c in clusters}


def test_a_split_at_zero_weights_serves_every_instance_and_names_the_revisions_clusters():
    web = ConnectService(NS, "web", aliases=(Alias("web.shop.local", 80),),
                         traffic=Split((Weight("web", 1, 0), Weight("web", 2, 0))))
    d = build([FRONT], {NS: [web]}, AppMeshSpecs(), of(_web_instances()))
    assert next(r for r in d.config.routes if r.name == "web.shop.local").targets == (
        Target("sc/shop.local/web", 10000), Target("sc/shop.local/web@web:1", 0),
        Target("sc/shop.local/web@web:2", 0))
    clusters = compute(d.config, d.endpoints, Node(FRONT.task_arn)).resources[CLUSTER]
    assert {"sc/shop.local/web", "sc/shop.local/web@web:1", "sc/shop.local/web@web:2"} <= {
        c.name for c in clusters}


def test_an_idle_timeout_makes_a_rule():
    web = ConnectService(NS, "web", aliases=(Alias("web.shop.local", 80),), idle_timeout=30.0)
    d = build([FRONT], {NS: [web]}, AppMeshSpecs(), of(INSTANCES))
    (route,) = d.config.routes
    assert route.rules[0].idle_timeout == 30.0 and route.targets == ()


def test_a_sidecar_gets_only_the_clusters_of_what_it_calls():
    other = Task("arn:task/other", alias_addresses={"db.shop.local": "127.255.0.2"})
    d = build([FRONT, other], {NS: [WEB, DB]}, AppMeshSpecs(), of(INSTANCES))
    snap = compute(d.config, d.endpoints, Node(other.task_arn))
    assert snap.names(CLUSTER) - {"egress_blackhole"} == {"sc/shop.local/db"}


def test_an_app_mesh_virtual_service_named_like_the_alias_splits_by_weight_over_revisions():
    d = build([FRONT], {NS: [WEB, DB]}, canary(), of(INSTANCES))
    routes = {r.name: r for r in d.config.routes}
    web = routes["web.shop.local"]
    assert web.targets == (Target("am/m/web-v1", 90), Target("am/m/web-v2", 10))
    assert web.address == "127.255.0.1" and web.port == 80
    # the attributes filter: revision 2's healthy instance only
    assert _where(d.endpoints["am/m/web-v1"]) == (("10.0.0.1", 8080),)
    assert _where(d.endpoints["am/m/web-v2"]) == (("10.0.0.2", 8080),)
    services = {s.name: s for s in d.config.services}
    v2 = services["am/m/web-v2"]
    assert (
        v2.outlier.max_server_errors,
        v2.outlier.interval,
        v2.outlier.base_ejection,
        v2.outlier.max_ejection_percent,
    ) == (3, 10.0, 0.5, 50)
    assert (v2.pool.max_connections, v2.pool.max_pending_requests) == (7, 3)
    assert "sc/shop.local/web" not in services  # nothing routes to it any more
    assert routes["db.shop.local"].targets == (Target("sc/shop.local/db", 1),)
    snap = compute(d.config, d.endpoints, Node(FRONT.task_arn))
    assert snap.consistent()


def test_a_weight_change_moves_only_the_route_version():
    a = build([FRONT], {NS: [WEB]}, canary((90, 10)), of(INSTANCES))
    b = build([FRONT], {NS: [WEB]}, canary((50, 50)), of(INSTANCES))
    sa = compute(a.config, a.endpoints, Node(FRONT.task_arn))
    sb = compute(b.config, b.endpoints, Node(FRONT.task_arn))
    changed = {t for t in sa.versions if sa.versions[t] != sb.versions[t]}
    assert changed == {"type.googleapis.com/envoy.config.route.v3.RouteConfiguration"}


def test_routes_in_priority_order_with_matches_retries_and_timeouts():
    specs = canary()
    routes = {
        "z-default": {
            "priority": 10,
            "httpRoute": {
                "match": {"prefix": "/"},
                "action": {"weightedTargets": [{"virtualNode": "web-v1", "weight": 1}]},
            },
        },
        "a-beta": {
            "priority": 1,
            "httpRoute": {
                "match": {
                    "prefix": "/",
                    "headers": [{"name": "x-beta", "match": {"exact": "1"}}],
                    "method": "GET",
                },
                "action": {"weightedTargets": [{"virtualNode": "web-v2", "weight": 1}]},
                "retryPolicy": {
                    "maxRetries": 2,
                    "perRetryTimeout": {"unit": "ms", "value": 250},
                    "httpRetryEvents": ["server-error"],
                    "tcpRetryEvents": ["connection-error"],
                },
                "timeout": {"perRequest": {"unit": "s", "value": 3}, "idle": {"unit": "s", "value": 60}},
            },
        },
        "no-priority": {
            "httpRoute": {
                "match": {"path": {"exact": "/health"}},
                "action": {"weightedTargets": [{"virtualNode": "web-v1", "weight": 1}]},
            }
        },
    }
    specs = AppMeshSpecs(
        specs.meshes, specs.virtual_nodes, specs.virtual_services, specs.virtual_routers, {"m": {"r": routes}}
    )
    d = build([FRONT], {NS: [WEB]}, specs, of(INSTANCES))
    (route,) = d.config.routes
    beta, default, health = route.rules
    assert beta.match.headers[0].name == "x-beta" and beta.match.headers[0].exact == "1"
    assert beta.match.method == "GET"
    assert (beta.retry.attempts, beta.retry.retry_on, beta.retry.per_try_timeout) == (
        2,
        "5xx,connect-failure",
        0.25,
    )
    assert (beta.timeout, beta.idle_timeout) == (3.0, 60.0)
    assert default.targets == (Target("am/m/web-v1", 1),)
    assert health.match == Match(prefix=None, path="/health")


def test_a_virtual_node_provider_is_one_rule_to_it():
    specs = canary()
    specs = AppMeshSpecs(
        specs.meshes,
        specs.virtual_nodes,
        {"m": {"web.shop.local": {"provider": {"virtualNode": {"virtualNodeName": "web-v2"}}}}},
    )
    d = build([FRONT], {NS: [WEB]}, specs, of(INSTANCES))
    (route,) = d.config.routes
    assert route.targets == (Target("am/m/web-v2", 1),)


def test_a_tcp_route_and_a_grpc_route():
    tcp_node = {
        "serviceDiscovery": {"awsCloudMap": {"namespaceName": NS, "serviceName": "db"}},
        "listeners": [{"portMapping": {"port": 5432, "protocol": "tcp"}}],
    }
    grpc_node = {
        "serviceDiscovery": {"awsCloudMap": {"namespaceName": NS, "serviceName": "web"}},
        "listeners": [{"portMapping": {"port": 8080, "protocol": "grpc"}}],
    }
    specs = AppMeshSpecs(
        meshes=("m",),
        virtual_nodes={"m": {"pg": tcp_node, "api": grpc_node}},
        virtual_services={
            "m": {
                "db.shop.local": {"provider": {"virtualRouter": {"virtualRouterName": "t"}}},
                "web.shop.local": {"provider": {"virtualRouter": {"virtualRouterName": "g"}}},
            }
        },
        virtual_routers={
            "m": {
                "t": {"listeners": [{"portMapping": {"port": 5432, "protocol": "tcp"}}]},
                "g": {"listeners": [{"portMapping": {"port": 80, "protocol": "grpc"}}]},
            }
        },
        routes={
            "m": {
                "t": {
                    "pg": {
                        "tcpRoute": {
                            "action": {"weightedTargets": [{"virtualNode": "pg", "weight": 1}]},
                            "timeout": {"idle": {"unit": "s", "value": 9}},
                        }
                    }
                },
                "g": {
                    "rpc": {
                        "grpcRoute": {
                            "match": {"serviceName": "shop.Cart", "methodName": "Add"},
                            "action": {"weightedTargets": [{"virtualNode": "api", "weight": 1}]},
                            "retryPolicy": {"maxRetries": 1, "grpcRetryEvents": ["unavailable"]},
                        }
                    }
                },
            }
        },
    )
    d = build([FRONT], {NS: [WEB, DB]}, specs, of(INSTANCES))
    routes = {r.name: r for r in d.config.routes}
    db = routes["db.shop.local"]
    assert db.protocol == "tcp" and db.rules[0].idle_timeout == 9.0
    assert db.rules[0].targets == (Target("am/m/pg", 1),)
    web = routes["web.shop.local"]
    assert web.protocol == "grpc" and web.rules[0].match.path == "/shop.Cart/Add"
    assert web.rules[0].retry.retry_on == "unavailable"
    assert {s.name: s.protocol for s in d.config.services} == {"am/m/pg": "tcp", "am/m/api": "grpc"}
    assert _where(d.endpoints["am/m/pg"]) == (("10.0.1.1", 5432),)


def test_an_unknown_node_gets_an_empty_snapshot():
    d = build([FRONT], {NS: [WEB, DB]}, canary(), of(INSTANCES))
    snap = compute(d.config, d.endpoints, Node("not-a-task"))
    assert all(not rs for rs in snap.resources.values())


def test_dangling_targets_fall_back_to_service_connect_and_are_named():
    specs = canary()
    specs = AppMeshSpecs(specs.meshes, {}, specs.virtual_services, specs.virtual_routers, specs.routes)
    d = build([FRONT], {NS: [WEB]}, specs, of(INSTANCES))
    (route,) = d.config.routes
    assert route.targets == (Target("sc/shop.local/web", 1),)
    assert any("no virtual node web-v1" in p for p in d.problems)
    assert any("no usable route" in p for p in d.problems)


def test_the_oldest_mesh_with_the_virtual_service_wins():
    a, b = canary((100, 0)), canary((0, 100))
    specs = AppMeshSpecs(
        ("old", "new"),
        {"old": a.virtual_nodes["m"], "new": b.virtual_nodes["m"]},
        {"old": a.virtual_services["m"], "new": b.virtual_services["m"]},
        {"old": a.virtual_routers["m"], "new": b.virtual_routers["m"]},
        {"old": a.routes["m"], "new": b.routes["m"]},
    )
    (route,) = build([FRONT], {NS: [WEB]}, specs, of(INSTANCES)).config.routes
    assert route.targets == (Target("am/old/web-v1", 100), Target("am/old/web-v2", 0))


def test_a_task_with_another_alias_address_gets_its_own_route():
    late = Task("arn:task/late", alias_addresses={"web.shop.local": "127.255.0.9"})
    d = build(
        [FRONT, late, Task("arn:task/x", alias_addresses={"web.shop.local": "127.255.0.1"})],
        {NS: [WEB]},
        AppMeshSpecs(),
        of(INSTANCES),
    )
    routes = {r.name: r.address for r in d.config.routes}
    assert routes == {"web.shop.local": "127.255.0.1", "web.shop.local@127.255.0.9": "127.255.0.9"}
    assert d.config.client("arn:task/late").routes == ("web.shop.local@127.255.0.9",)


def test_no_tasks_no_config():
    d = build([], {NS: [WEB]}, canary(), of(INSTANCES))
    assert d.config.routes == () and d.config.clients == () and d.endpoints == {}


def test_garbage_specs_are_named_never_raised():
    specs = canary()
    bad_node = {
        "listeners": [
            {
                "portMapping": {"port": 8080, "protocol": "http"},
                "outlierDetection": {
                    "maxServerErrors": None,
                    "interval": {"unit": "s", "value": 1},
                    "baseEjectionDuration": {"unit": "s", "value": 1},
                },
            }
        ]
    }
    routes = {
        "w": {
            "httpRoute": {
                "match": {"prefix": "/", "headers": [{}]},
                "action": {"weightedTargets": [{"virtualNode": "web-v1", "weight": "lots"}]},
            }
        },
        "x": {
            "httpRoute": {
                "match": {"prefix": "nope"},
                "action": {"weightedTargets": [{"virtualNode": "web-v1", "weight": 1}]},
            }
        },
    }
    specs = AppMeshSpecs(
        specs.meshes,
        {"m": {"web-v1": bad_node}},
        specs.virtual_services,
        specs.virtual_routers,
        {"m": {"r": routes}},
    )
    d = build([FRONT], {NS: [WEB]}, specs, of(INSTANCES))
    (route,) = d.config.routes
    assert route.targets == (Target("sc/shop.local/web", 1),)  # fell back to Service Connect
    assert len(d.problems) >= 3
