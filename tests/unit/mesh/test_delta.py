"""The pure delta xDS stream state: what is sent given what Envoy has and the snapshot."""

from __future__ import annotations

import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import discovery_pb2

from mesh.delta import DeltaStream, resource_versions
from mesh.model import Client, Endpoint, MeshConfig, Node, Outlier, Route, Service, Target
from mesh.snapshot import CLUSTER, ENDPOINT, LISTENER, ROUTE, compute
from mesh.snapshot import ORDER as EVERY_TYPE
from mesh.stream import ProtocolError
from tests.unit.mesh.fixtures import sample_config, sample_endpoints

ORDER = tuple(t for t in EVERY_TYPE if t != EVERY_TYPE[0])  # a plaintext snapshot's types (no SDS)


def snap(v1: int = 90, v2: int = 10, endpoints=None):
    return compute(sample_config(v1, v2), endpoints or sample_endpoints(), Node("task-a"))


def req(type_url, subscribe=(), unsubscribe=(), nonce="", initial=None, error="", node="task-a"):
    r = discovery_pb2.DeltaDiscoveryRequest(
        type_url=type_url, resource_names_subscribe=list(subscribe),
        resource_names_unsubscribe=list(unsubscribe), response_nonce=nonce,
        initial_resource_versions=initial or {}, node=base_pb2.Node(id=node))
    if error:
        r.error_detail.message = error
    return r


def names(resp) -> list[str]:
    return [r.name for r in resp.resources]


def subscribe_all(stream: DeltaStream, s) -> None:
    stream.on_request(req(CLUSTER))
    stream.on_request(req(ENDPOINT, s.names(ENDPOINT)))
    stream.on_request(req(LISTENER))
    stream.on_request(req(ROUTE, s.names(ROUTE)))


def ack_all(stream: DeltaStream, resps) -> None:
    for r in resps:
        stream.on_request(req(r.type_url, nonce=r.nonce))


def synced(s):
    stream = DeltaStream()
    subscribe_all(stream, s)
    ack_all(stream, stream.responses(s))
    return stream


def test_first_push_sends_everything_in_make_before_break_order_with_resource_versions():
    s, stream = snap(), DeltaStream()
    subscribe_all(stream, s)
    resps = stream.responses(s)
    assert [r.type_url for r in resps] == list(ORDER)
    for r in resps:
        assert sorted(names(r)) == sorted(s.names(r.type_url))
        assert r.system_version_info == s.versions[r.type_url]
        assert {x.name: x.version for x in r.resources} == resource_versions(s, r.type_url)
    assert len({r.nonce for r in resps}) == 4
    assert stream.responses(s) == []  # nothing more until something changes


def test_one_endpoint_change_sends_only_that_load_assignment():
    stream = synced(snap())
    eps = sample_endpoints()
    eps["db"] = [Endpoint("10.0.2.9", 5432)]
    changed = snap(endpoints=eps)
    before = dict(stream.resources_sent)
    resps = stream.responses(changed)
    assert [(r.type_url, names(r), list(r.removed_resources)) for r in resps] == [(ENDPOINT, ["db"], [])]
    assert resps[0].system_version_info == changed.versions[ENDPOINT]
    assert {t: stream.resources_sent[t] - before[t] for t in ORDER} == {CLUSTER: 0, ENDPOINT: 1,
                                                                      LISTENER: 0, ROUTE: 0}


def test_a_weight_change_sends_only_the_route_configuration():
    stream = synced(snap())
    resps = stream.responses(snap(50, 50))
    assert [(r.type_url, names(r)) for r in resps] == [(ROUTE, ["egress_8080"])]


def test_a_reconnect_with_the_current_versions_gets_nothing_resent():
    s = snap()
    stream = DeltaStream()
    for t in ORDER:
        subscribe = () if t in (CLUSTER, LISTENER) else s.names(t)
        stream.on_request(req(t, subscribe, initial=resource_versions(s, t)))
    assert stream.responses(s) == []
    assert sum(stream.resources_sent.values()) == 0
    assert {t: st.acked_version for t, st in stream.types.items()} == {t: s.versions[t] for t in ORDER}


def test_a_reconnect_with_one_stale_version_gets_only_that_one():
    s = snap()
    stream = DeltaStream()
    initial = resource_versions(s, CLUSTER)
    initial["db"] = "old"
    stream.on_request(req(CLUSTER, initial=initial))
    [resp] = stream.responses(s)
    assert names(resp) == ["db"] and list(resp.removed_resources) == []


def test_a_first_request_with_nothing_to_send_is_answered_empty_once():
    stream = DeltaStream()
    stream.on_request(req(CLUSTER))
    empty = compute(sample_config(), sample_endpoints(), Node("nobody"))
    [resp] = stream.responses(empty)
    assert list(resp.resources) == [] and resp.system_version_info == empty.versions[CLUSTER]
    assert stream.responses(empty) == []


def test_subscribe_and_unsubscribe_of_names():
    s, stream = snap(), DeltaStream()
    stream.on_request(req(ENDPOINT, ["db"]))
    [r] = stream.responses(s)
    assert names(r) == ["db"]
    stream.on_request(req(ENDPOINT, ["web-v1"], nonce=r.nonce))
    [r2] = stream.responses(s)
    assert names(r2) == ["web-v1"]
    stream.on_request(req(ENDPOINT, unsubscribe=["db"], nonce=r2.nonce))
    assert stream.responses(s) == []
    assert set(stream.types[ENDPOINT].has) == {"web-v1"}
    stream.on_request(req(ENDPOINT, ["db"]))  # subscribed again: sent again
    assert [names(r) for r in stream.responses(s)] == [["db"]]


def test_a_nack_is_recorded_never_resent_and_envoy_keeps_its_version():
    nacks = []
    stream = DeltaStream(nacks.append)
    first = snap()
    subscribe_all(stream, first)
    ack_all(stream, stream.responses(first))
    bad = snap(50, 50)
    [r] = stream.responses(bad)
    stream.on_request(req(ROUTE, nonce=r.nonce, error="weights rejected"))
    assert [(n.node, n.type_url, n.version, n.message) for n in nacks] == [
        ("task-a", ROUTE, bad.versions[ROUTE], "weights rejected")]
    assert stream.types[ROUTE].acked_version == first.versions[ROUTE]
    assert stream.types[ROUTE].has == resource_versions(first, ROUTE)
    assert stream.responses(bad) == []  # never re-sent
    [again] = stream.responses(snap(0, 100))  # a later version is
    assert again.type_url == ROUTE
    assert len(nacks) == 1


def test_removals_wait_for_the_routes_that_named_them_to_be_acked():
    first = compute(sample_config(), sample_endpoints(), Node("task-a"))
    stream = synced(first)
    # task-b's view: only db, so web-v1, web-v2 and the 8080 listener go
    only_db = compute(sample_config(), sample_endpoints(), Node("task-b"))
    resps = stream.responses(only_db)
    kinds = [(r.type_url, names(r), list(r.removed_resources)) for r in resps]
    assert kinds == [(LISTENER, [], ["egress_8080"])]  # clusters and routes kept for now
    ack_all(stream, resps)
    resps = stream.responses(only_db)
    assert [(r.type_url, list(r.removed_resources)) for r in resps] == [(ROUTE, ["egress_8080"])]
    assert stream.responses(only_db) == []  # the route removal is not ACKed yet: clusters stay
    ack_all(stream, resps)
    resps = stream.responses(only_db)
    assert [(r.type_url, list(r.removed_resources)) for r in resps] == [
        (CLUSTER, ["web-v1", "web-v2"]), (ENDPOINT, ["web-v1", "web-v2"])]
    assert resps[0].system_version_info == only_db.versions[CLUSTER]


def test_a_route_change_away_from_a_cluster_removes_it_only_after_the_route_ack():
    from mesh.model import Client, MeshConfig, Route, Service, Target
    def cfg(svc):
        return MeshConfig(services=(Service(svc),), routes=(Route("web", 8080, (Target(svc, 1),)),),
                          clients=(Client("task-a", ("web",)),))
    eps = {"web-v1": [Endpoint("10.0.0.1", 80)], "web-v2": [Endpoint("10.0.0.2", 80)]}
    one, two = compute(cfg("web-v1"), eps, Node("task-a")), compute(cfg("web-v2"), eps, Node("task-a"))
    stream = synced(one)
    stream.on_request(req(ENDPOINT, ["web-v2"]))  # Envoy asks for the new cluster's endpoints
    resps = stream.responses(two)
    got = [(r.type_url, names(r), list(r.removed_resources)) for r in resps]
    assert got == [(CLUSTER, ["web-v2"], []), (ENDPOINT, ["web-v2"], []), (ROUTE, ["egress_8080"], [])]
    assert resps[0].system_version_info != two.versions[CLUSTER]  # Envoy still holds web-v1 too
    ack_all(stream, resps)
    resps = stream.responses(two)
    assert [(r.type_url, list(r.removed_resources)) for r in resps] == [(CLUSTER, ["web-v1"]),
                                                                        (ENDPOINT, ["web-v1"])]
    ack_all(stream, resps)
    assert [st.acked_version for st in stream.types.values()] == [two.versions[t] for t in stream.types]


def test_wildcard_forms():
    s = snap()
    explicit = DeltaStream()
    explicit.on_request(req(CLUSTER, ["*"]))
    assert sorted(names(explicit.responses(s)[0])) == sorted(s.names(CLUSTER))
    ended = DeltaStream()
    ended.on_request(req(CLUSTER))
    ended.on_request(req(CLUSTER, ["db"]))  # names after a legacy wildcard end it
    assert [names(r) for r in ended.responses(s)] == [["db"]]


def test_an_unknown_nonce_acknowledges_nothing():
    s, stream = snap(), DeltaStream()
    stream.on_request(req(ROUTE, s.names(ROUTE)))
    [r] = stream.responses(s)
    stream.on_request(req(ROUTE, nonce="999"))
    assert stream.types[ROUTE].acked == {} and r.nonce in stream.types[ROUTE].in_flight
    stream.on_request(req(ROUTE, nonce=r.nonce))
    assert stream.types[ROUTE].acked_version == s.versions[ROUTE]


def test_protocol_errors():
    with pytest.raises(ProtocolError):
        DeltaStream().on_request(req(CLUSTER, node=""))
    with pytest.raises(ProtocolError):
        DeltaStream().on_request(req("type.googleapis.com/nothing"))


def test_a_peer_that_never_acks_keeps_a_bounded_state():
    from mesh.delta import MAX_IN_FLIGHT
    stream = DeltaStream()
    stream.on_request(req(ROUTE, ["egress_8080"]))
    for w in range(MAX_IN_FLIGHT + 20):
        assert len(stream.responses(snap(100 - w % 100, w % 100 + 1))) == 1
    assert len(stream.types[ROUTE].in_flight) == MAX_IN_FLIGHT


def test_a_changed_cluster_gets_its_unchanged_load_assignment_again_for_warming():
    stream = synced(snap())
    cfg = sample_config()
    changed = MeshConfig(tuple(Service(x.name, outlier=Outlier(3, 1, 30)) if x.name == "db" else x
                               for x in cfg.services), cfg.routes, cfg.clients)
    s = compute(changed, sample_endpoints(), Node("task-a"))
    resps = stream.responses(s)
    assert [(r.type_url, names(r)) for r in resps] == [(CLUSTER, ["db"]), (ENDPOINT, ["db"])]
    ack_all(stream, resps)
    assert stream.responses(s) == []  # once only
    assert stream.types[ENDPOINT].acked_version == s.versions[ENDPOINT]


def tcp_snap(target: str):
    cfg = MeshConfig(services=(Service(target),),
                     routes=(Route("db.local", 5432, (Target(target, 1),), protocol="tcp"),),
                     clients=(Client("task-a", ("db.local",)),))
    return compute(cfg, {}, Node("task-a"))


def test_a_cluster_a_tcp_proxy_names_is_removed_only_after_the_listeners_moved_off_it():
    stream = DeltaStream()
    stream.on_request(req(CLUSTER))
    stream.on_request(req(ENDPOINT, ["db-v1", "db-v2"]))
    stream.on_request(req(LISTENER))
    ack_all(stream, stream.responses(tcp_snap("db-v1")))
    resps = stream.responses(tcp_snap("db-v2"))
    assert [(r.type_url, names(r), list(r.removed_resources)) for r in resps] == [
        (CLUSTER, ["db-v2"], []), (ENDPOINT, ["db-v2"], []), (LISTENER, ["egress_5432"], [])]
    cds, eds, lds = resps
    ack_all(stream, [cds, eds])
    assert stream.responses(tcp_snap("db-v2")) == []  # the listener is not ACKed yet
    ack_all(stream, [lds])
    got = [(r.type_url, list(r.removed_resources)) for r in stream.responses(tcp_snap("db-v2"))]
    assert got == [(CLUSTER, ["db-v1"]), (ENDPOINT, ["db-v1"])]
