"""compute() over the whole model: the virtual outbound listener and original-destination
listeners, tcp routes, ingress, rules with their matches, timeouts and retries, HTTP/2
upstreams, outlier detection and circuit breakers."""

from __future__ import annotations

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2

from mesh import resources
from mesh.model import (
    Client,
    Endpoint,
    HeaderMatch,
    Ingress,
    Match,
    MeshConfig,
    Node,
    Outlier,
    Pool,
    QueryMatch,
    Retry,
    Route,
    Rule,
    Service,
    Target,
)
from mesh.snapshot import CLUSTER, ENDPOINT, LISTENER, ROUTE, Snapshot, compute

N = Node("n", listen_address="127.0.0.9")


def by_name(s: Snapshot, type_url: str) -> dict:
    return {r.cluster_name if type_url == ENDPOINT else r.name: r for r in s.resources[type_url]}


def manager(listener) -> hcm.HttpConnectionManager:
    out = hcm.HttpConnectionManager()
    assert listener.filter_chains[0].filters[0].typed_config.Unpack(out)
    return out


def proxy(listener) -> tcp_proxy_pb2.TcpProxy:
    out = tcp_proxy_pb2.TcpProxy()
    assert listener.filter_chains[0].filters[0].typed_config.Unpack(out)
    return out


def egress_config(egress_port: int | None = 15001) -> MeshConfig:
    return MeshConfig(
        services=(Service("web"), Service("api"), Service("db")),
        routes=(Route("web.shop.local", 80, (Target("web", 1),), address="127.255.0.3"),
                Route("api.shop.local", 80, (Target("api", 1),), address="127.255.0.4"),
                Route("plain.local", 8080, (Target("web", 1),)),
                Route("db.shop.local", 5432, (Target("db", 3), Target("web", 1), Target("api", 0)),
                      protocol="tcp", address="127.255.0.5")),
        clients=(Client("n", ("web.shop.local", "api.shop.local", "plain.local", "db.shop.local"),
                        egress_port=egress_port),))


def test_an_egress_port_gives_a_virtual_outbound_listener_and_unbound_listeners_by_address():
    s = compute(egress_config(), {}, N)
    assert s.consistent(), s.problems()
    lst = by_name(s, LISTENER)
    assert set(lst) == {"egress_outbound", "egress_127.255.0.3_80", "egress_127.255.0.4_80",
                        "egress_8080", "egress_127.255.0.5_5432"}
    out = lst["egress_outbound"]
    assert (out.address.socket_address.address, out.address.socket_address.port_value) == ("127.0.0.1", 15001)
    assert out.use_original_dst.value and not out.HasField("bind_to_port")
    assert proxy(out).cluster == "egress_blackhole"
    hole = by_name(s, CLUSTER)["egress_blackhole"]
    assert hole.type == cluster_pb2.Cluster.STATIC and not hole.load_assignment.endpoints
    web = lst["egress_127.255.0.3_80"]
    assert web.HasField("bind_to_port") and not web.bind_to_port.value
    assert (web.address.socket_address.address, web.address.socket_address.port_value) == ("127.255.0.3", 80)
    assert manager(web).rds.route_config_name == "egress_127.255.0.3_80"
    assert lst["egress_8080"].address.socket_address.address == "127.0.0.9"  # no address: the node's
    routes = by_name(s, ROUTE)
    assert set(routes) == {"egress_127.255.0.3_80", "egress_127.255.0.4_80", "egress_8080"}
    assert [vh.name for vh in routes["egress_127.255.0.4_80"].virtual_hosts] == ["api.shop.local"]
    assert list(routes["egress_127.255.0.4_80"].virtual_hosts[0].domains) == ["api.shop.local",
                                                                             "api.shop.local:80"]


def test_without_an_egress_port_the_listeners_bind_their_address():
    s = compute(egress_config(None), {}, N)
    lst = by_name(s, LISTENER)
    assert "egress_outbound" not in lst and "egress_blackhole" not in s.names(CLUSTER)
    assert all(not x.HasField("bind_to_port") for x in lst.values())
    assert lst["egress_127.255.0.3_80"].address.socket_address.address == "127.255.0.3"
    assert s.consistent()


def test_a_tcp_route_is_a_tcp_proxy_over_its_non_zero_targets_without_route_configuration():
    s = compute(egress_config(), {}, N)
    p = proxy(by_name(s, LISTENER)["egress_127.255.0.5_5432"])
    assert [(c.name, c.weight) for c in p.weighted_clusters.clusters] == [("db", 3), ("web", 1)]
    assert "egress_127.255.0.5_5432" not in s.names(ROUTE)
    assert {"db", "web", "api"} <= s.names(CLUSTER) and {"db", "web", "api"} <= s.names(ENDPOINT)


def test_a_tcp_proxy_naming_a_missing_cluster_is_inconsistent():
    s = compute(egress_config(), {}, N)
    broken = Snapshot.of([c for c in s.resources[CLUSTER] if c.name != "db"],
                         [c for c in s.resources[ENDPOINT] if c.cluster_name != "db"],
                         s.resources[LISTENER], s.resources[ROUTE])
    assert broken.problems() == ["listener egress_127.255.0.5_5432 names missing cluster db"]
    no_hole = Snapshot.of([c for c in s.resources[CLUSTER] if c.name != "egress_blackhole"],
                          s.resources[ENDPOINT], s.resources[LISTENER], s.resources[ROUTE])
    assert no_hole.problems() == ["listener egress_outbound names missing cluster egress_blackhole"]


def ingress_config() -> MeshConfig:
    return MeshConfig(clients=(Client("n", (), ingress=(
        Ingress("http", 8000, 80, timeout=7, idle_timeout=30),
        Ingress("rpc", 8001, 50051, protocol="grpc"),
        Ingress("raw", 8002, 6379, protocol="tcp", idle_timeout=60))),))


def test_ingress_listens_on_every_address_and_goes_to_a_static_local_cluster():
    s = compute(ingress_config(), {}, N)
    assert s.consistent(), s.problems()
    assert s.names(CLUSTER) == {"local_http", "local_rpc", "local_raw"} and s.names(ENDPOINT) == set()
    local = by_name(s, CLUSTER)["local_http"]
    assert local.type == cluster_pb2.Cluster.STATIC
    addr = local.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address
    assert (addr.address, addr.port_value) == ("127.0.0.1", 80)
    lst = by_name(s, LISTENER)
    http = lst["ingress_http"]
    assert (http.address.socket_address.address, http.address.socket_address.port_value) == ("0.0.0.0", 8000)
    vh = manager(http).route_config.virtual_hosts[0]
    assert list(vh.domains) == ["*"] and vh.routes[0].match.prefix == "/"
    action = vh.routes[0].route
    assert action.cluster == "local_http"
    assert action.timeout.ToSeconds() == 7 and action.idle_timeout.ToSeconds() == 30
    assert not manager(lst["ingress_rpc"]).route_config.virtual_hosts[0].routes[0].route.HasField("timeout")
    assert resources.HTTP2_OPTIONS in by_name(s, CLUSTER)["local_rpc"].typed_extension_protocol_options
    raw = proxy(lst["ingress_raw"])
    assert raw.cluster == "local_raw" and raw.idle_timeout.ToSeconds() == 60


def test_an_inline_ingress_route_naming_a_missing_cluster_is_inconsistent():
    s = compute(ingress_config(), {}, N)
    broken = Snapshot.of([c for c in s.resources[CLUSTER] if c.name != "local_http"], (),
                         s.resources[LISTENER], ())
    assert broken.problems() == ["listener ingress_http/ingress_http names missing cluster local_http"]


def rules_config(*rules: Rule, service: Service | None = None) -> MeshConfig:
    services = (service or Service("v1"), Service("v2"))
    return MeshConfig(services=services, routes=(Route("web", 80, rules=rules),),
                      clients=(Client("n", ("web",)),))


def entries(s: Snapshot) -> list[rc.Route]:
    return list(s.resources[ROUTE][0].virtual_hosts[0].routes)


def test_rules_become_routes_in_order_with_their_matches():
    s = compute(rules_config(
        Rule((Target("v2", 1),), Match(path="/exact", method="POST")),
        Rule((Target("v2", 1),), Match(regex="/items/[0-9]+", headers=(
            HeaderMatch("x-exact", exact="a"), HeaderMatch("x-prefix", prefix="b"),
            HeaderMatch("x-suffix", suffix="c"), HeaderMatch("x-re", regex="d+"),
            HeaderMatch("x-range", range=(1, 10)), HeaderMatch("x-there"),
            HeaderMatch("x-absent", present=False), HeaderMatch("x-not", exact="e", invert=True)))),
        Rule((Target("v1", 1),), Match(prefix="/api", query=(QueryMatch("debug"), QueryMatch("v", "2")))),
        Rule((Target("v1", 9), Target("v2", 1)))), {}, N)
    assert s.consistent()
    first, second, third, last = entries(s)
    assert first.match.path == "/exact"
    assert [(h.name, h.string_match.exact) for h in first.match.headers] == [(":method", "POST")]
    assert second.match.safe_regex.regex == "/items/[0-9]+"
    h = {x.name: x for x in second.match.headers}
    assert h["x-exact"].string_match.exact == "a" and h["x-prefix"].string_match.prefix == "b"
    assert h["x-suffix"].string_match.suffix == "c" and h["x-re"].string_match.safe_regex.regex == "d+"
    assert (h["x-range"].range_match.start, h["x-range"].range_match.end) == (1, 10)
    assert h["x-there"].present_match is True
    assert h["x-absent"].HasField("present_match") and h["x-absent"].present_match is False
    assert h["x-not"].invert_match and h["x-not"].string_match.exact == "e"
    assert not h["x-exact"].invert_match
    assert third.match.prefix == "/api"
    q = {x.name: x for x in third.match.query_parameters}
    assert q["debug"].present_match and q["v"].string_match.exact == "2"
    assert last.match.prefix == "/"
    assert [(c.name, c.weight.value) for c in last.route.weighted_clusters.clusters] == [("v1", 9), ("v2", 1)]


def test_a_rule_has_its_timeouts_and_retry_policy_and_zero_disables_the_timeout():
    s = compute(rules_config(
        Rule((Target("v1", 1),), Match(prefix="/slow"), timeout=0),
        Rule((Target("v1", 1),), timeout=1.5, idle_timeout=20,
             retry=Retry(2, retry_on="5xx,gateway-error", per_try_timeout=0.25))), {}, N)
    slow, rest = entries(s)
    assert slow.route.HasField("timeout") and slow.route.timeout.ToNanoseconds() == 0
    assert not slow.route.HasField("retry_policy")
    assert rest.route.timeout.ToMilliseconds() == 1500 and rest.route.idle_timeout.ToSeconds() == 20
    policy = rest.route.retry_policy
    assert (policy.retry_on, policy.num_retries.value, policy.per_try_timeout.ToMilliseconds()) == (
        "5xx,gateway-error", 2, 250)


@pytest.mark.parametrize("protocol", ["http2", "grpc"])
def test_http2_and_grpc_services_speak_http2_upstream(protocol):
    both = Rule((Target("v1", 1), Target("v2", 0)))
    s = compute(rules_config(both, service=Service("v1", protocol=protocol)), {}, N)
    clusters = by_name(s, CLUSTER)
    assert resources.HTTP2_OPTIONS not in clusters["v2"].typed_extension_protocol_options
    options = http_protocol_options_pb2.HttpProtocolOptions()
    clusters["v1"].typed_extension_protocol_options[resources.HTTP2_OPTIONS].Unpack(options)
    assert options.explicit_http_config.HasField("http2_protocol_options")


def test_outlier_detection_and_circuit_breakers_come_from_the_service():
    svc = Service("v1", connect_timeout=0.5, outlier=Outlier(3, 2.0, 30.0, 50),
                  pool=Pool(max_connections=10, max_pending_requests=5))
    c = by_name(compute(rules_config(Rule((Target("v1", 1), Target("v2", 0))), service=svc), {}, N), CLUSTER)
    o = c["v1"].outlier_detection
    assert (o.consecutive_5xx.value, o.interval.ToSeconds(), o.base_ejection_time.ToSeconds(),
            o.max_ejection_percent.value) == (3, 2, 30, 50)
    (t,) = c["v1"].circuit_breakers.thresholds
    assert (t.max_connections.value, t.max_pending_requests.value) == (10, 5)
    assert not t.HasField("max_requests")
    assert c["v1"].connect_timeout.ToMilliseconds() == 500
    assert not c["v2"].HasField("outlier_detection") and not c["v2"].HasField("circuit_breakers")


def test_the_full_model_gives_equal_versions_for_equal_inputs():
    eps = {"web": [Endpoint("10.0.0.1", 80)], "db": [Endpoint("10.0.0.2", 5432)]}
    one = compute(egress_config(), eps, N)
    two = compute(egress_config(), {k: list(v) for k, v in reversed(eps.items())}, N)
    assert one.versions == two.versions
    assert compute(egress_config(15002), eps, N).versions[LISTENER] != one.versions[LISTENER]


def test_a_match_given_a_path_or_regex_drops_the_default_prefix():
    assert Match(path="/x").prefix is None and Match(regex=".*").prefix is None
    assert Match().prefix == "/"


@pytest.mark.parametrize("make", [
    lambda: Match(prefix="/a", path="/b"),
    lambda: Match(path="x"),
    lambda: HeaderMatch("h", exact="a", prefix="b"),
    lambda: Client("n", (), ingress=(Ingress("a", 80, 81), Ingress("a", 82, 83))),
    lambda: Client("n", (), ingress=(Ingress("a", 80, 81), Ingress("b", 80, 83))),
    lambda: Client("n", (), egress_port=0),
    lambda: Ingress("a", 80, 81, protocol="udp"),
    lambda: Route("r", 80, (Target("a", 1),), rules=(Rule((Target("a", 1),)),)),
    lambda: Route("r", 80, rules=(Rule((Target("a", 1),), timeout=-1),)),
    lambda: Outlier(0, 1, 1),
    lambda: Pool(max_connections=0),
    lambda: MeshConfig(routes=(Route("a", 80, (Target("x", 1),), protocol="tcp"),
                               Route("b", 80, (Target("x", 1),))),
                       clients=(Client("n", ("a", "b")),)),
])
def test_bad_values_of_the_full_model_are_refused(make):
    with pytest.raises(ValueError):
        make()


def test_a_tcp_route_may_share_a_port_at_another_address():
    cfg = MeshConfig(services=(Service("x"),),
                     routes=(Route("a", 80, (Target("x", 1),), protocol="tcp", address="127.255.0.1"),
                             Route("b", 80, (Target("x", 1),), address="127.255.0.2")),
                     clients=(Client("n", ("a", "b"), egress_port=15001),))
    assert compute(cfg, {}, N).consistent()
