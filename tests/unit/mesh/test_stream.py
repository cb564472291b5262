from __future__ import annotations

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.rpc import status_pb2

from mesh.model import Client, MeshConfig, Node, Outlier, Route, Service, Target
from mesh.snapshot import CLUSTER, ENDPOINT, LISTENER, ROUTE, compute, name_of
from mesh.snapshot import ORDER as EVERY_TYPE
from mesh.stream import AdsStream, Nack, ProtocolError
from tests.unit.mesh.fixtures import sample_config, sample_endpoints

ORDER = tuple(t for t in EVERY_TYPE if t != EVERY_TYPE[0])  # a plaintext snapshot's types (no SDS)


def snap(v1: int = 90, v2: int = 10):
    return compute(sample_config(v1, v2), sample_endpoints(), Node("task-a"))


def req(type_url: str, version: str = "", nonce: str = "", names=(), error: str | None = None, node="task-a"):
    r = discovery_pb2.DiscoveryRequest(type_url=type_url, version_info=version, response_nonce=nonce,
                                       resource_names=list(names), node=base_pb2.Node(id=node))
    if error is not None:
        r.error_detail.CopyFrom(status_pb2.Status(code=3, message=error))
    return r


def unpack_cluster(a):
    c = cluster_pb2.Cluster()
    a.Unpack(c)
    return c


def subscribed(*types: str) -> AdsStream:
    s = AdsStream()
    for t in types:
        s.on_request(req(t))
    return s


def test_first_requests_are_answered_in_make_before_break_order():
    s = subscribed(ROUTE, LISTENER, ENDPOINT, CLUSTER)
    out = s.responses(snap())
    assert [r.type_url for r in out] == list(ORDER)
    assert [r.version_info for r in out] == [snap().versions[t] for t in ORDER]
    assert len({r.nonce for r in out}) == 4


def test_nothing_is_sent_without_a_snapshot_or_a_subscription():
    assert subscribed(CLUSTER).responses(None) == []
    assert AdsStream().responses(snap()) == []


def test_an_unchanged_version_is_not_sent_twice():
    s = subscribed(CLUSTER)
    first = s.responses(snap())
    s.on_request(req(CLUSTER, first[0].version_info, first[0].nonce))
    assert s.responses(snap()) == []
    assert s.types[CLUSTER].acked_version == first[0].version_info


def test_a_new_version_is_sent_with_a_new_nonce():
    s = subscribed(ROUTE)
    first = s.responses(snap())[0]
    s.on_request(req(ROUTE, first.version_info, first.nonce))
    second = s.responses(snap(50, 50))
    assert len(second) == 1 and second[0].nonce != first.nonce
    assert second[0].version_info == snap(50, 50).versions[ROUTE]


def test_a_nack_is_recorded_and_that_version_never_resent():
    nacks: list[Nack] = []
    s = AdsStream(nacks.append)
    s.on_request(req(ROUTE))
    good = s.responses(snap())[0]
    s.on_request(req(ROUTE, good.version_info, good.nonce))
    bad = s.responses(snap(50, 50))[0]
    s.on_request(req(ROUTE, good.version_info, bad.nonce, error="weights do not add up"))
    assert nacks == [Nack("task-a", ROUTE, bad.version_info, "weights do not add up")]
    assert s.types[ROUTE].acked_version == good.version_info
    assert s.responses(snap(50, 50)) == []
    s.types[ROUTE].pending = True  # even a re-subscription does not bring it back
    assert s.responses(snap(50, 50)) == []
    third = s.responses(snap(0, 100))
    assert [r.version_info for r in third] == [snap(0, 100).versions[ROUTE]]


def test_a_stale_nonce_is_ignored():
    nacks: list[Nack] = []
    s = AdsStream(nacks.append)
    s.on_request(req(ROUTE))
    first = s.responses(snap())[0]
    s.responses(snap(50, 50))
    s.on_request(req(ROUTE, "", first.nonce, error="old news"))
    assert nacks == [] and s.types[ROUTE].acked_version == ""


def test_changed_resource_names_are_answered_at_once_and_filtered():
    s = AdsStream()
    s.on_request(req(ENDPOINT, names=["db"]))
    first = s.responses(snap())[0]
    assert len(first.resources) == 1
    s.on_request(req(ENDPOINT, first.version_info, first.nonce, names=["db", "web-v1"]))
    again = s.responses(snap())
    assert len(again) == 1 and again[0].version_info == first.version_info
    assert len(again[0].resources) == 2


def test_cds_and_lds_are_always_whole():
    s = AdsStream()
    s.on_request(req(CLUSTER, names=["db"]))
    assert len(s.responses(snap())[0].resources) == 3


def test_a_reconnect_holding_the_current_version_gets_nothing_resent():
    s = AdsStream()
    s.on_request(req(CLUSTER, version=snap().versions[CLUSTER]))
    assert s.responses(snap()) == []
    s.on_request(req(LISTENER, version="older"))
    assert [r.type_url for r in s.responses(snap())] == [LISTENER]


def test_known_versions_follow_the_snapshot_for_subscribed_types():
    s = subscribed(CLUSTER, ROUTE)
    assert s.known(snap()) == {CLUSTER: snap().versions[CLUSTER], ROUTE: snap().versions[ROUTE]}
    assert s.known(None) == {CLUSTER: "", ROUTE: ""}


def test_a_first_request_without_node_id_is_a_protocol_error():
    with pytest.raises(ProtocolError):
        AdsStream().on_request(req(CLUSTER, node=""))


def test_an_unknown_type_url_is_a_protocol_error():
    with pytest.raises(ProtocolError):
        AdsStream().on_request(req("type.googleapis.com/envoy.nothing"))


def test_responses_unpack_to_the_snapshot_resources():
    s = subscribed(CLUSTER)
    out = s.responses(snap())[0]
    assert [a.type_url for a in out.resources] == [CLUSTER] * 3


def test_a_dropped_cluster_is_removed_only_after_the_routes_moved_off_it():
    from mesh.model import MeshConfig, Route, Service, Target

    s = subscribed(CLUSTER, ENDPOINT, LISTENER, ROUTE)
    for r in s.responses(snap()):
        s.on_request(req(r.type_url, r.version_info, r.nonce))
    cfg = sample_config()
    web = Route("web.shop.local", 8080, (Target("web-v1", 1), Target("web-v3", 1)))
    services = (*(x for x in cfg.services if x.name != "web-v2"), Service("web-v3"))
    v2_to_v3 = compute(MeshConfig(services, (web, cfg.routes[1]), cfg.clients), sample_endpoints(),
                       Node("task-a"))
    push = {r.type_url: r for r in s.responses(v2_to_v3)}
    assert list(push) == [CLUSTER, ENDPOINT, ROUTE]
    names = sorted(name_of(unpack_cluster(a)) for a in push[CLUSTER].resources)
    assert names == ["db", "web-v1", "web-v2", "web-v3"]  # web-v2 kept while old routes may name it
    assert push[CLUSTER].version_info not in (snap().versions[CLUSTER], v2_to_v3.versions[CLUSTER])
    s.on_request(req(CLUSTER, push[CLUSTER].version_info, push[CLUSTER].nonce))
    assert s.responses(v2_to_v3) == []  # still waiting for the route ACK
    s.on_request(req(ROUTE, push[ROUTE].version_info, push[ROUTE].nonce))
    final = s.responses(v2_to_v3)
    assert [r.type_url for r in final] == [CLUSTER]
    assert final[0].version_info == v2_to_v3.versions[CLUSTER] and len(final[0].resources) == 3


def test_a_dropped_cluster_stays_while_the_new_routes_are_nacked():
    s = subscribed(CLUSTER, ROUTE)
    for r in s.responses(snap()):
        s.on_request(req(r.type_url, r.version_info, r.nonce))
    from mesh.model import MeshConfig

    cfg = sample_config()
    only_db = compute(MeshConfig(cfg.services, cfg.routes[1:], cfg.clients), sample_endpoints(),
                      Node("task-a"))
    push = {r.type_url: r for r in s.responses(only_db)}
    assert list(push) == [ROUTE]  # the union of clusters is what Envoy already has
    s.on_request(req(ROUTE, snap().versions[ROUTE], push[ROUTE].nonce, error="no"))
    assert s.responses(only_db) == []
    assert s.types[CLUSTER].sent_version == snap().versions[CLUSTER]


def settle(s: AdsStream, snapshot, names: dict) -> dict:
    """Send what ``s`` says for ``snapshot`` and ACK it all; the responses by type."""
    out = {r.type_url: r for r in s.responses(snapshot)}
    for t, r in out.items():
        s.on_request(req(t, r.version_info, r.nonce, names=names.get(t, ())))
    return out


def test_after_a_cds_response_the_unchanged_eds_is_answered_again_for_warming():
    names = {ENDPOINT: ["web-v1", "web-v2", "db"], ROUTE: ["egress_8080", "egress_8081"]}
    s = AdsStream()
    for t in ORDER:
        s.on_request(req(t, names=names.get(t, ())))
    settle(s, snap(), names)
    assert s.responses(snap()) == []
    cfg = sample_config()
    changed = MeshConfig(tuple(Service(x.name, outlier=Outlier(3, 1, 30)) if x.name == "db" else x
                               for x in cfg.services), cfg.routes, cfg.clients)
    changed_snap = compute(changed, sample_endpoints(), Node("task-a"))
    (cds,) = s.responses(changed_snap)  # only CDS changed
    assert cds.type_url == CLUSTER
    eds_nonce = s.types[ENDPOINT].nonce
    # Envoy rebuilds cluster db and asks for its endpoints again, with the same names
    s.on_request(req(ENDPOINT, s.types[ENDPOINT].acked_version, eds_nonce, names=names[ENDPOINT]))
    (eds,) = s.responses(changed_snap)
    assert eds.type_url == ENDPOINT and eds.version_info == changed_snap.versions[ENDPOINT]
    assert eds.nonce != eds_nonce and len(eds.resources) == 3
    s.on_request(req(CLUSTER, cds.version_info, cds.nonce))
    s.on_request(req(ENDPOINT, eds.version_info, eds.nonce, names=names[ENDPOINT]))
    assert s.responses(changed_snap) == []  # once only


def tcp_snap(target: str):
    cfg = MeshConfig(services=(Service(target),),
                     routes=(Route("db.local", 5432, (Target(target, 1),), protocol="tcp"),),
                     clients=(Client("task-a", ("db.local",)),))
    return compute(cfg, {}, Node("task-a"))


def test_a_cluster_a_tcp_proxy_names_is_removed_only_after_the_listeners_moved_off_it():
    s = AdsStream()
    for t in (CLUSTER, ENDPOINT, LISTENER):
        s.on_request(req(t, names=["db-v1"] if t == ENDPOINT else ()))
    first = {r.type_url: r for r in s.responses(tcp_snap("db-v1"))}
    for t, r in first.items():
        s.on_request(req(t, r.version_info, r.nonce, names=["db-v1"] if t == ENDPOINT else ()))
    out = {r.type_url: r for r in s.responses(tcp_snap("db-v2"))}
    assert sorted(unpack_cluster(a).name for a in out[CLUSTER].resources) == ["db-v1", "db-v2"]
    s.on_request(req(CLUSTER, out[CLUSTER].version_info, out[CLUSTER].nonce))
    assert s.responses(tcp_snap("db-v2")) == []  # the listener is not ACKed yet
    s.on_request(req(LISTENER, out[LISTENER].version_info, out[LISTENER].nonce))
    (cds,) = [r for r in s.responses(tcp_snap("db-v2")) if r.type_url == CLUSTER]
    assert [unpack_cluster(a).name for a in cds.resources] == ["db-v2"]
