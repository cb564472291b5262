from __future__ import annotations

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm

from mesh.model import Client, Endpoint, MeshConfig, Node, Retry, Route, Service, Target
from mesh.snapshot import (
    CLUSTER,
    ENDPOINT,
    LISTENER,
    ORDER,
    ROUTE,
    Shared,
    Snapshot,
    compute,
    name_of,
    version_of,
)
from tests.unit.mesh.fixtures import sample_config, sample_endpoints

A = Node("task-a")


def snap(config=None, endpoints=None, node=A) -> Snapshot:
    return compute(config or sample_config(), sample_endpoints() if endpoints is None else endpoints, node)


def routes_of(s: Snapshot, name: str):
    rc = {r.name: r for r in s.resources[ROUTE]}
    for r in rc.values():
        for vh in r.virtual_hosts:
            if vh.name == name:
                return vh
    raise KeyError(name)


def test_the_sample_snapshot_is_consistent_and_has_every_type():
    s = snap()
    assert s.problems() == [] and s.consistent()
    assert set(s.resources) == set(ORDER) == set(s.versions)
    assert s.names(CLUSTER) == {"web-v1", "web-v2", "db"} == s.names(ENDPOINT)
    assert s.names(LISTENER) == {"egress_8080", "egress_8081"} == s.names(ROUTE)


def test_clusters_are_eds_over_ads_with_their_connect_timeout():
    clusters = {c.name: c for c in snap().resources[CLUSTER]}
    db = clusters["db"]
    assert db.type == cluster_pb2.Cluster.EDS
    assert db.eds_cluster_config.eds_config.HasField("ads")
    assert db.connect_timeout.ToNanoseconds() == 250_000_000


def test_load_assignments_carry_only_healthy_endpoints():
    cla = {c.cluster_name: c for c in snap().resources[ENDPOINT]}
    addrs = [e.endpoint.address.socket_address.address for loc in cla["web-v1"].endpoints
             for e in loc.lb_endpoints]
    assert addrs == ["10.0.0.1", "10.0.0.2"]
    assert cla["db"].endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value == 5432


def test_a_service_without_healthy_endpoints_still_gets_an_empty_load_assignment():
    eps = sample_endpoints()
    eps["web-v2"] = [Endpoint("10.0.1.1", 80, healthy=False)]
    del eps["db"]
    s = snap(endpoints=eps)
    cla = {c.cluster_name: c for c in s.resources[ENDPOINT]}
    assert list(cla["web-v2"].endpoints) == [] and list(cla["db"].endpoints) == []
    assert s.consistent()


def test_listeners_bind_the_node_address_and_use_rds_over_ads():
    s = snap(node=Node("task-a", listen_address="127.0.0.7"))
    lst = {x.name: x for x in s.resources[LISTENER]}["egress_8080"]
    assert lst.address.socket_address.address == "127.0.0.7"
    assert lst.address.socket_address.port_value == 8080
    manager = hcm.HttpConnectionManager()
    lst.filter_chains[0].filters[0].typed_config.Unpack(manager)
    assert manager.rds.route_config_name == "egress_8080"
    assert manager.rds.config_source.HasField("ads")
    assert [f.name for f in manager.http_filters] == ["envoy.filters.http.router"]


def test_routes_split_by_weight_with_timeout_and_retries():
    vh = routes_of(snap(), "web.shop.local")
    assert list(vh.domains) == ["web.shop.local", "web.shop.local:8080"]
    action = vh.routes[0].route
    split = [(c.name, c.weight.value) for c in action.weighted_clusters.clusters]
    assert split == [("web-v1", 90), ("web-v2", 10)]
    assert action.timeout.ToNanoseconds() == 2_500_000_000
    assert action.retry_policy.num_retries.value == 3
    assert action.retry_policy.retry_on == "5xx,reset,connect-failure"
    assert action.retry_policy.per_try_timeout.ToNanoseconds() == 500_000_000
    assert vh.routes[0].match.prefix == "/"


def test_a_route_without_timeout_or_retry_sets_neither():
    action = routes_of(snap(), "db.shop.local").routes[0].route
    assert not action.HasField("timeout") and not action.HasField("retry_policy")


def test_a_zero_weight_target_keeps_its_cluster_but_gets_no_traffic():
    s = snap(sample_config(100, 0))
    vh = routes_of(s, "web.shop.local")
    assert [c.name for c in vh.routes[0].route.weighted_clusters.clusters] == ["web-v1"]
    assert "web-v2" in s.names(CLUSTER) and s.consistent()


def test_each_node_receives_only_the_clusters_of_the_routes_it_calls():
    b = snap(node=Node("task-b"))
    assert b.names(CLUSTER) == {"db"} == b.names(ENDPOINT)
    assert b.names(LISTENER) == {"egress_8081"}
    assert b.consistent()


def test_an_unknown_node_gets_an_empty_consistent_snapshot():
    s = snap(node=Node("stranger"))
    assert all(s.resources[t] == () for t in ORDER) and s.consistent()


def test_two_routes_on_one_port_share_a_listener_with_two_virtual_hosts():
    cfg = MeshConfig(services=(Service("a"), Service("b")),
                     routes=(Route("a.local", 80, (Target("a", 1),)),
                             Route("b.local", 80, (Target("b", 1),))),
                     clients=(Client("n", ("a.local", "b.local")),))
    s = compute(cfg, {}, Node("n"))
    assert s.names(LISTENER) == {"egress_80"}
    assert [vh.name for vh in s.resources[ROUTE][0].virtual_hosts] == ["a.local", "b.local"]


def test_equal_inputs_give_equal_versions_whatever_the_order():
    eps = sample_endpoints()
    shuffled = {k: list(reversed(v)) for k, v in reversed(list(eps.items()))}
    cfg = sample_config()
    reordered = MeshConfig(tuple(reversed(cfg.services)), tuple(reversed(cfg.routes)), cfg.clients)
    assert snap().versions == snap(reordered, shuffled).versions


def test_a_weight_change_changes_only_the_route_version():
    before, after = snap(), snap(sample_config(50, 50))
    changed = {t for t in ORDER if before.versions[t] != after.versions[t]}
    assert changed == {ROUTE}


def test_an_endpoint_change_changes_only_the_endpoint_version():
    eps = sample_endpoints()
    eps["db"].append(Endpoint("10.0.2.2", 5432))
    changed = {t for t in ORDER if snap().versions[t] != snap(endpoints=eps).versions[t]}
    assert changed == {ENDPOINT}


def test_an_endpoint_of_another_nodes_service_does_not_change_this_nodes_versions():
    eps = sample_endpoints()
    eps["web-v1"].append(Endpoint("10.0.0.9", 80))
    assert snap(node=Node("task-b")).versions == snap(endpoints=eps, node=Node("task-b")).versions


def test_versions_differ_between_types_and_hash_the_resources():
    s = snap()
    assert s.versions[CLUSTER] == version_of(s.resources[CLUSTER])
    assert len({s.versions[t] for t in (CLUSTER, ENDPOINT, LISTENER, ROUTE)}) == 4


def test_a_route_to_an_undefined_service_is_inconsistent():
    cfg = sample_config()
    cfg = MeshConfig(tuple(s for s in cfg.services if s.name != "web-v2"), cfg.routes, cfg.clients)
    s = snap(cfg)
    assert not s.consistent()
    assert s.problems() == ["route egress_8080/web.shop.local names missing cluster web-v2"]


def test_a_cluster_without_load_assignment_is_inconsistent():
    s = snap()
    broken = Snapshot.of(s.resources[CLUSTER], [c for c in s.resources[ENDPOINT] if c.cluster_name != "db"],
                         s.resources[LISTENER], s.resources[ROUTE])
    assert broken.problems() == ["cluster db has no load assignment"]


def test_a_load_assignment_without_cluster_is_inconsistent():
    s = snap()
    extra = endpoint_pb2.ClusterLoadAssignment(cluster_name="ghost")
    broken = Snapshot.of(s.resources[CLUSTER], [*s.resources[ENDPOINT], extra],
                         s.resources[LISTENER], s.resources[ROUTE])
    assert broken.problems() == ["load assignment ghost names no cluster"]


def test_a_listener_without_its_route_configuration_is_inconsistent():
    s = snap()
    broken = Snapshot.of(s.resources[CLUSTER], s.resources[ENDPOINT], s.resources[LISTENER],
                         [r for r in s.resources[ROUTE] if r.name != "egress_8081"])
    assert broken.problems() == ["listener egress_8081 names missing route configuration egress_8081"]


def test_a_route_to_a_cluster_not_in_the_snapshot_is_inconsistent():
    s = snap()
    broken = Snapshot.of([c for c in s.resources[CLUSTER] if c.name != "db"],
                         [c for c in s.resources[ENDPOINT] if c.cluster_name != "db"],
                         s.resources[LISTENER], s.resources[ROUTE])
    assert broken.problems() == ["route egress_8081/db.shop.local names missing cluster db"]


@pytest.mark.parametrize("make", [
    lambda: Route("r", 80, (Target("a", 0), Target("b", 0))),
    lambda: Route("r", 80, ()),
    lambda: Route("r", 0, (Target("a", 1),)),
    lambda: Route("r", 80, (Target("a", 1), Target("a", 2))),
    lambda: Route("r", 80, (Target("a", 1),), prefix="x"),
    lambda: Target("a", 10001),
    lambda: Target("a", -1),
    lambda: Endpoint("10.0.0.1", 70000),
    lambda: Retry(-1),
    lambda: Service(""),
    lambda: MeshConfig(services=(Service("a"), Service("a"))),
])
def test_bad_model_values_are_refused_at_construction(make):
    with pytest.raises(ValueError):
        make()


def test_the_snapshot_is_frozen():
    s = snap()
    with pytest.raises(AttributeError):
        s.versions = {}  # type: ignore[misc]
    with pytest.raises(TypeError):
        s.resources[CLUSTER] = ()  # type: ignore[index]


def test_nodes_sharing_one_state_get_the_same_snapshots_with_what_they_have_in_common_built_once():
    nodes = [Node(f"task-{i}", listen_address=f"127.0.1.{i + 1}") for i in range(3)]
    config = MeshConfig(services=(Service("web-v1"), Service("web-v2")),
                        routes=(Route("web.shop.local", 8080, (Target("web-v1", 90), Target("web-v2", 10))),),
                        clients=tuple(Client(n.id, ("web.shop.local",)) for n in nodes))
    shared = Shared()
    alone = [compute(config, sample_endpoints(), n) for n in nodes]
    together = [compute(config, sample_endpoints(), n, shared) for n in nodes]
    for a, b in zip(alone, together, strict=True):
        assert dict(a.versions) == dict(b.versions) and a.members == b.members
        for t in ORDER:
            assert [r.SerializeToString(deterministic=True) for r in a.resources[t]] == \
                   [r.SerializeToString(deterministic=True) for r in b.resources[t]]
    first, second, _ = together
    # the clusters, endpoints and routes are one set of messages; the listeners (own address) are not
    for t in (CLUSTER, ENDPOINT, ROUTE):
        assert all(x is y for x, y in zip(first.resources[t], second.resources[t], strict=True))
    assert first.versions[ROUTE] == second.versions[ROUTE]
    assert first.versions[LISTENER] != second.versions[LISTENER]
    assert compute(config, sample_endpoints(), Node("nobody"), shared) == Snapshot.of()
    # each resource's own version (delta xDS) comes with it, as version_of would make it
    for t in ORDER:
        assert dict(first.resource_versions[t]) == {name_of(r): version_of((r,)) for r in first.resources[t]}
